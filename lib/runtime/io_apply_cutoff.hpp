// runtime/io_apply_cutoff.hpp — when a batch applied inline on a cluster
// member's I/O thread counts as too slow, turning inline apply there off
// (inline_policy.hpp, kIoInlineApplyLimitNs), and for how long.
//
// Only time the batch itself spent counts: its thread's CPU time, or, if the
// thread waited during it (blocked: a voluntary context switch, e.g. a state
// machine's fsync or lock), the whole.  Time the thread was preempted does
// not: on a machine with more runnable threads than cores the I/O thread
// loses its core for a scheduler slice (milliseconds) whatever it runs, and
// handing applies to the apply thread would not give it back.
//
// An overrun turns it off for a number of committed batches that doubles
// with each overrun, and for good at the kIoInlineApplyMaxOverruns-th: a
// state machine that hiccups once (a cold page, a lock) gets inline apply
// back, one that keeps overrunning stalls its I/O thread a few times at
// most.  Counted in batches, not time: how long a stall's cost is spread
// over is the work done meanwhile, and tests stay free of clocks.
//
// Threads: pure functions, and ThreadTimes::now() reads the calling thread's;
// IoApplyCutoff is changed by its replica's I/O thread only; on() may be
// read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>

namespace keel::runtime {

// The calling thread's CPU time and voluntary context switches so far.
struct ThreadTimes {
    std::uint64_t cpu_ns = 0;
    std::uint64_t voluntary_switches = 0;
    static ThreadTimes now();  // getrusage(RUSAGE_THREAD): one system call
};

// Whether a batch that took `wall_ns` from start to end, during which its
// thread used `cpu_ns` of CPU and blocked (`blocked`) or not, overran
// `limit_ns`.
inline bool io_apply_overran(std::uint64_t wall_ns, std::uint64_t cpu_ns, bool blocked,
                             std::uint64_t limit_ns) {
    if (wall_ns <= limit_ns) return false;
    return blocked || cpu_ns > limit_ns;
}

inline constexpr std::uint64_t kIoInlineApplyOffForGood = std::numeric_limits<std::uint64_t>::max();
// Off for this many committed batches after the first overrun, twice as
// many after the second, ...; for good at the kIoInlineApplyMaxOverruns-th.
inline constexpr std::uint64_t kIoInlineApplyFirstOffBatches = 10'000;
inline constexpr int kIoInlineApplyMaxOverruns = 4;

// How many batches inline apply stays off after the n-th overrun (n >= 1).
inline std::uint64_t io_apply_off_batches(int overruns) {
    if (overruns >= kIoInlineApplyMaxOverruns) return kIoInlineApplyOffForGood;
    return kIoInlineApplyFirstOffBatches << (overruns - 1);
}

// Whether the I/O thread may apply inline: on until a batch overruns, then
// off for io_apply_off_batches(overruns) batches committed on that thread.
class IoApplyCutoff {
public:
    bool on() const { return off_for_.load(std::memory_order_relaxed) == 0; }
    // A batch committed on the I/O thread while off: one fewer to wait for.
    void skipped_batch() {
        const std::uint64_t left = off_for_.load(std::memory_order_relaxed);
        if (left != 0 && left != kIoInlineApplyOffForGood)
            off_for_.store(left - 1, std::memory_order_relaxed);
    }
    // A batch applied inline overran its limit: returns how many batches
    // inline apply is now off for (kIoInlineApplyOffForGood: for good).
    std::uint64_t overran() {
        const std::uint64_t off = io_apply_off_batches(++overruns_);
        off_for_.store(off, std::memory_order_relaxed);
        return off;
    }
    int overruns() const { return overruns_; }

private:
    std::atomic<std::uint64_t> off_for_{0};
    int overruns_ = 0;
};

}  // namespace keel::runtime
