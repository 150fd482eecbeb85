// shared-wal-growth: the shared WAL's size with one hot group next to many
// idle ones, with rewriting forward and without (the baseline, same
// process), and the cost of an election storm (every group saving a new
// term and vote).  Prints one JSON object per line.  A measurement, not a
// test: docs/decisions/0024 has the figures and the command.
//
//   shared-wal-growth [--groups N] [--hot-entries E] [--snapshot-every S]
//                     [--segment-bytes B] [--payload-bytes P] [--above-segments A]
//                     [--report-every R] [--dir D]
//
// The hot group appends E entries one at a time and "snapshots" every S,
// compacting behind the older kept snapshot as the runtime does; each idle
// group wrote two entries and a hard state at the start.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "runtime/background_worker.hpp"
#include "runtime/shared_wal.hpp"

using namespace keel;
using namespace keel::runtime;

namespace {

struct Args {
    std::uint64_t groups = 1000;
    std::uint64_t hot_entries = 20000;
    std::uint64_t snapshot_every = 1000;
    std::uint64_t segment_bytes = 1 << 20;
    std::uint64_t payload_bytes = 200;
    std::uint64_t above_segments = 4;
    std::uint64_t report_every = 2000;
    std::string dir = "/tmp";
};

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: shared-wal-growth [--groups N] [--hot-entries E] [--snapshot-every S] "
                 "[--segment-bytes B] [--payload-bytes P] [--above-segments A] "
                 "[--report-every R] [--dir D]\n");
    std::exit(2);
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (i + 1 >= argc) usage();
        const char* value = argv[++i];
        if (flag == "--dir") {
            a.dir = value;
            continue;
        }
        char* end = nullptr;
        const std::uint64_t v = std::strtoull(value, &end, 10);
        if (end == value || *end != '\0') usage();
        if (flag == "--groups")
            a.groups = v;
        else if (flag == "--hot-entries")
            a.hot_entries = v;
        else if (flag == "--snapshot-every")
            a.snapshot_every = v;
        else if (flag == "--segment-bytes")
            a.segment_bytes = v;
        else if (flag == "--payload-bytes")
            a.payload_bytes = v;
        else if (flag == "--above-segments")
            a.above_segments = v;
        else if (flag == "--report-every")
            a.report_every = v;
        else
            usage();
    }
    if (a.groups < 2 || a.snapshot_every == 0 || a.report_every == 0) usage();
    return a;
}

void check(const Status& s, const char* what) {
    if (s.ok()) return;
    std::fprintf(stderr, "%s: %s\n", what, s.to_string().c_str());
    std::exit(1);
}

Status append_wait(LogStore& log, std::vector<raft::Entry> entries) {
    std::promise<Status> done;
    if (Status s = log.append(entries, wal::Wal::Writer::flusher,
                              [&done](Status st) { done.set_value(std::move(st)); });
        !s.ok())
        return s;
    return done.get_future().get();
}

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void run(const Args& a, bool rewrite) {
    const std::string dir = a.dir + "/shared-wal-growth-" + std::to_string(::getpid()) +
                            (rewrite ? "-rewrite" : "-baseline");
    std::filesystem::remove_all(dir);
    BackgroundWorker background;
    {
        wal::Options o;
        o.segment_bytes = a.segment_bytes;
        RewritePolicy policy;
        policy.above_segments = rewrite ? a.above_segments : 0;
        policy.run_in_background = [&background](std::function<void()> pass) {
            return background.submit(std::move(pass));
        };
        auto shared = SharedWal::open(dir, o, policy);
        check(shared.status(), "open");
        SharedWal& wal = *shared.value();
        std::vector<std::unique_ptr<LogStore>> logs;
        for (GroupId g = 1; g <= a.groups; ++g) {
            auto log = wal.open_group(g, SharedWal::Hooks{});
            check(log.status(), "open_group");
            logs.push_back(std::move(log.value()));
        }
        // The idle groups' writes, all queued at once (they share batches).
        std::vector<std::promise<Status>> idle_done(a.groups);
        for (GroupId g = 2; g <= a.groups; ++g) {
            std::vector<raft::Entry> e{
                raft::Entry{1, 1, raft::EntryType::normal, SharedBytes("i")},
                raft::Entry{1, 2, raft::EntryType::normal, SharedBytes("j")}};
            check(logs[g - 1]->append(e, wal::Wal::Writer::flusher,
                                      [&idle_done, g](Status s) { idle_done[g - 1].set_value(s); }),
                  "idle append");
        }
        for (GroupId g = 2; g <= a.groups; ++g) check(idle_done[g - 1].get_future().get(), "idle");

        // An election storm: every group saves a new term and vote, one
        // after another (as one thread running every group's core would).
        const std::uint64_t fsyncs_before = wal.wal().stats().fsyncs;
        const auto t0 = std::chrono::steady_clock::now();
        for (GroupId g = 1; g <= a.groups; ++g)
            check(logs[g - 1]->save_hard_state(raft::HardState{2, 1, 0}), "save_hard_state");
        std::printf(
            "{\"bench\":\"election_storm\",\"rewrite\":%s,\"groups\":%llu,\"wall_ms\":%.1f,"
            "\"metadata_writes\":%llu,\"wal_fsyncs\":%llu}\n",
            rewrite ? "true" : "false", static_cast<unsigned long long>(a.groups), ms_since(t0),
            static_cast<unsigned long long>(a.groups),
            static_cast<unsigned long long>(wal.wal().stats().fsyncs - fsyncs_before));

        LogStore& hot = *logs[0];
        const std::string payload(a.payload_bytes, 'h');
        std::uint64_t max_segments = 0;
        const auto start = std::chrono::steady_clock::now();
        for (raft::Index i = 1; i <= a.hot_entries; ++i) {
            check(append_wait(hot,
                              {raft::Entry{1, i, raft::EntryType::normal, SharedBytes(payload)}}),
                  "hot append");
            if (i % a.snapshot_every == 0 && i > a.snapshot_every)
                check(hot.compact_through(i - a.snapshot_every, hot.generation()), "compact");
            const wal::Stats st = wal.wal().stats();
            max_segments = std::max(max_segments, st.segments);
            if (i % a.report_every == 0)
                std::printf(
                    "{\"bench\":\"shared_wal_growth\",\"rewrite\":%s,\"groups\":%llu,"
                    "\"hot_entries\":%llu,\"segments\":%llu,\"disk_bytes\":%llu,"
                    "\"max_segments\":%llu,\"rewritten_groups\":%llu,\"seconds\":%.2f}\n",
                    rewrite ? "true" : "false", static_cast<unsigned long long>(a.groups),
                    static_cast<unsigned long long>(i),
                    static_cast<unsigned long long>(st.segments),
                    static_cast<unsigned long long>(st.disk_bytes),
                    static_cast<unsigned long long>(max_segments),
                    static_cast<unsigned long long>(wal.rewritten_groups()),
                    ms_since(start) / 1000);
        }
        std::fflush(stdout);
        logs.clear();
        background.stop();  // a pass still queued runs before the WAL goes
    }
    std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
    const Args a = parse(argc, argv);
    run(a, false);
    run(a, true);
    return 0;
}
