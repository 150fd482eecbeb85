// tools/raft_bench.hpp — what raft-bench's modes share: the options, the
// closed loop and its result, the JSON rows, the counting state machine.
// raft_bench.cpp has the one-group modes and main, raft_bench_groups.cpp
// the groups mode (three keel::Host in one process).  Public headers only.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_windows.hpp"
#include "keel/keel.hpp"

namespace raft_bench {

using Clock = std::chrono::steady_clock;

[[noreturn]] inline void die(const std::string& what) {
    std::fprintf(stderr, "raft-bench: %s\n", what.c_str());
    std::exit(1);
}

inline void print(const nlohmann::json& j) {
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
}

inline double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// --groups: groups of each Host, at most.
inline constexpr std::uint64_t kMaxGroups = 100000;

// --snapshot-bytes: what CountingStateMachine's snapshot writes.
inline constexpr std::size_t kDefaultSnapshotBodyBytes = 64 * 1024;
inline constexpr std::size_t kMaxSnapshotBodyBytes = std::size_t{1} << 30;

struct Options {
    std::string dir;
    double seconds = 5;
    std::size_t record_bytes = 100;
    std::vector<int> outstanding{1, 16, 256};
    std::string mode = "all";
    std::uint64_t snapshot_every = 0;
    // --snapshot-bytes: the size of each snapshot's body (at most
    // kMaxSnapshotBodyBytes).
    std::size_t snapshot_bytes = kDefaultSnapshotBodyBytes;
    int rounds = 3;
    std::string tls_dir;
    // --write-path: "automatic" (direct I/O where the file system takes it,
    // keel's default: NodeOptions::wal_direct_io) or "buffered".
    std::string write_path = "automatic";
    // --mode groups
    std::uint64_t groups = 1000;  // at most kMaxGroups
    bool idle_only = false;
    // --transport: "inproc" (bench_network.hpp, the rows' default) or "tcp"
    // (keel's own transport on loopback, HostOptions::listen_address, as
    // cluster3 runs).
    std::string transport = "inproc";
};

// A loopback TCP port free a moment ago (bound to 0 and closed).
std::uint16_t free_port();

double cpu_seconds();

// ---- the closed loop ----------------------------------------------------------

// Issues one operation; calls done(ok) when it completes (any thread).
using Op = std::function<void(std::function<void(bool ok)> done)>;

struct LoopResult {
    std::vector<double> latencies_us;  // of the operations in the window
    double seconds = 0;                // length of the window
    std::size_t ops = 0;
    std::size_t ops_all = 0;  // completed over the whole run, warm-up and drain included
    std::size_t failures = 0;
    std::uint64_t records = 0;  // WAL records and fsyncs over the run
    std::uint64_t fsyncs = 0;
    std::uint64_t follower_records = 0;  // cluster3: both followers'
    std::uint64_t follower_fsyncs = 0;
    std::uint64_t snapshots = 0;  // written over the run (--snapshot-every)
    double cpu_seconds = 0;       // the process's, over the window
    // Operations completed in each kWindowMs slice of the window, in order:
    // a stall of the disk (decision 0051) shows as slices with almost none.
    std::vector<std::uint32_t> window_ops;

    // Pools another run of the same mode (interleaved rounds).
    void add(LoopResult&& other) {
        latencies_us.insert(latencies_us.end(), other.latencies_us.begin(),
                            other.latencies_us.end());
        seconds += other.seconds;
        ops += other.ops;
        ops_all += other.ops_all;
        failures += other.failures;
        records += other.records;
        fsyncs += other.fsyncs;
        follower_records += other.follower_records;
        follower_fsyncs += other.follower_fsyncs;
        snapshots += other.snapshots;
        cpu_seconds += other.cpu_seconds;
        window_ops.insert(window_ops.end(), other.window_ops.begin(), other.window_ops.end());
    }
};

// The slices LoopResult::window_ops counts in.
inline constexpr int kWindowMs = 10;

class ClosedLoop {
public:
    explicit ClosedLoop(Op op) : op_(std::move(op)) {}

    LoopResult run(int outstanding, double seconds) {
        latencies_.reserve(1u << 22);
        const auto warmup = std::chrono::duration<double>(std::min(1.0, seconds * 0.25));
        measure_from_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(warmup);
        for (int i = 0; i < outstanding; ++i) issue();
        std::unique_lock lock(mu_);
        while (Clock::now() < measure_from_) cv_.wait_until(lock, measure_from_);
        const std::size_t before = completed_in_window_;
        const double cpu_before = cpu_seconds();
        const auto t0 = Clock::now();
        const auto end = t0 + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(seconds));
        window_from_ = t0;
        window_ops_.assign(static_cast<std::size_t>(seconds * 1000 / kWindowMs), 0);
        while (Clock::now() < end) cv_.wait_until(lock, end);
        const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
        const double cpu = cpu_seconds() - cpu_before;
        const std::size_t done = completed_in_window_ - before;
        stop_ = true;
        cv_.wait(lock, [&] { return in_flight_ == 0; });
        LoopResult r;
        r.ops = done;
        r.ops_all = completed_;
        r.seconds = elapsed;
        r.latencies_us = std::move(latencies_);
        r.failures = failures_;
        r.cpu_seconds = cpu;
        r.window_ops = std::move(window_ops_);
        return r;
    }

private:
    void issue() {
        {
            std::lock_guard lock(mu_);
            if (stop_) return;
            ++in_flight_;
        }
        const auto start = Clock::now();
        op_([this, start](bool ok) {
            const auto now = Clock::now();
            bool again = false;
            {
                std::lock_guard lock(mu_);
                --in_flight_;
                if (!ok) ++failures_;
                if (ok) ++completed_;
                // Only what succeeded counts: a leader that lost its
                // leadership fails proposals at once, which is no throughput.
                if (ok && now >= measure_from_ && start >= measure_from_) {
                    latencies_.push_back(
                        std::chrono::duration<double, std::micro>(now - start).count());
                    ++completed_in_window_;
                }
                // Before the window, window_ops_ is empty and nothing counts.
                if (ok && now >= window_from_) {
                    const auto slice = static_cast<std::size_t>(
                        (now - window_from_) / std::chrono::milliseconds(kWindowMs));
                    if (slice < window_ops_.size()) ++window_ops_[slice];
                }
                again = !stop_;
                if (stop_ && in_flight_ == 0) cv_.notify_all();
            }
            if (again) issue();
        });
    }

    Op op_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<double> latencies_;
    std::vector<std::uint32_t> window_ops_;  // see LoopResult::window_ops
    Clock::time_point window_from_{};        // the window's start, once set
    std::size_t completed_in_window_ = 0;
    std::size_t completed_ = 0;
    std::size_t failures_ = 0;
    int in_flight_ = 0;
    bool stop_ = false;
    Clock::time_point measure_from_;
};

// The row of one measured loop: {"bench":"raft","mode":...} with ops/s,
// latency percentiles, records per fsync and CPU per operation.
nlohmann::json report_row(const std::string& mode, int k, const Options& o, LoopResult r);
inline void report(const std::string& mode, int k, const Options& o, LoopResult r) {
    print(report_row(mode, k, o, std::move(r)));
}

// o.dir/name, emptied.
std::string fresh_dir(const Options& o, const std::string& name);

// A small state machine: counts entries and bytes; its snapshot writes the
// counters in a body of `snapshot_bytes` (a stand-in for real state).
class CountingStateMachine final : public keel::StateMachine {
public:
    explicit CountingStateMachine(std::size_t snapshot_bytes = kDefaultSnapshotBodyBytes)
        : snapshot_bytes_(std::max<std::size_t>(snapshot_bytes, 16)) {}
    void apply(const std::vector<keel::CommittedEntry>& entries,
               std::vector<std::string>&) override {
        for (const auto& e : entries) {
            ++count_;
            bytes_ += e.data.size();
        }
    }
    keel::SnapshotFunction snapshot() override {
        const std::uint64_t count = count_, bytes = bytes_;
        return [count, bytes, size = snapshot_bytes_](keel::SnapshotWriter& w) -> keel::Status {
            // In pieces of at most a megabyte, as a real state machine
            // streams its state (restore() reads the counters at the start).
            std::string piece(std::min<std::size_t>(size, 1 << 20), 's');
            std::memcpy(piece.data(), &count, 8);
            std::memcpy(piece.data() + 8, &bytes, 8);
            for (std::size_t written = 0; written < size;) {
                const std::size_t n = std::min(piece.size(), size - written);
                if (keel::Status s = w.write(std::string_view(piece.data(), n)); !s.ok()) return s;
                written += n;
            }
            return keel::Status::ok_status();
        };
    }
    keel::Status restore(keel::SnapshotReader& r) override {
        std::string all(r.size_bytes(), '\0');
        std::size_t at = 0;
        for (;;) {
            auto n = r.read(all.data() + at, all.size() - at);
            if (!n.ok()) return n.status();
            if (n.value() == 0) break;
            at += n.value();
        }
        if (all.size() >= 16) {
            std::memcpy(&count_, all.data(), 8);
            std::memcpy(&bytes_, all.data() + 8, 8);
        }
        return keel::Status::ok_status();
    }

private:
    const std::size_t snapshot_bytes_;
    std::uint64_t count_ = 0;
    std::uint64_t bytes_ = 0;
};

// A node's options as every mode starts from them: id 1 in `dir`, warnings
// and errors to stderr.
keel::NodeOptions node_options(const Options& o, const std::string& dir);

// --mode groups (raft_bench_groups.cpp): the busy rows for each K of
// o.outstanding (unless o.idle_only), then the idle row.
void run_groups(const Options& o);

}  // namespace raft_bench
