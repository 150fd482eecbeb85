// runtime/io_apply_cutoff.hpp — when a batch applied inline on a cluster
// member's I/O thread counts as too slow, turning inline apply there off
// (inline_policy.hpp, kIoInlineApplyLimitNs).
//
// Only time the batch itself spent counts: its thread's CPU time, or, if the
// thread waited during it (blocked: a voluntary context switch, e.g. a state
// machine's fsync or lock), the whole.  Time the thread was preempted does
// not: on a machine with more runnable threads than cores the I/O thread
// loses its core for a scheduler slice (milliseconds) whatever it runs, and
// handing applies to the apply thread would not give it back.
//
// Threads: pure functions, and ThreadTimes::now() reads the calling thread's.
#pragma once

#include <cstdint>

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

}  // namespace keel::runtime
