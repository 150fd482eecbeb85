// raft-bench — what does Raft cost over the WAL alone?
//
//   raft-bench --dir D --seconds S --record-bytes B --outstanding 1,16,256
//              --mode wal|single|cluster3|cluster3-tls|groups|all [--snapshot-every N]
//              [--snapshot-bytes B] [--rounds R] [--tls-dir T] [--groups N] [--idle-only]
//              [--transport inproc|tcp] [--write-path automatic|buffered]
//
// Closed loop: K operations in flight, each completion submits the next.
//   wal       the WAL alone (keel::wal::Wal::append, completion on fsync):
//             the "direct local WAL" baseline
//   single    a single-node keel::Node: propose -> durable -> committed ->
//             applied -> the callback (what a user's future sees)
//   cluster3  three nodes in this process on loopback TCP, each with its
//             own data dir; proposals go to the leader (with --tls-dir: over
//             mutual TLS, with T/ca.crt and T/memberN.crt/.key for node N, as
//             scripts/make-peer-certs.sh T 1 2 3 makes them)
//   cluster3-tls  cluster3 in plain TCP and in mutual TLS interleaved per K
//             (needs --tls-dir): R rounds of S/R seconds each, alternating
//             which goes first, pooled per mode, then their ratios
//   groups    three keel::Host in this process, each serving the same N
//             groups (--groups, default 1000) with quiescence on, over an
//             in-process transport (--transport tcp: keel's own on loopback,
//             as cluster3); the K operations in flight are spread
//             over the groups, each sent to its group's leader; then the idle
//             row {"bench":"idle_groups",...}: 5 s of nothing once every
//             group is quiescent (--idle-only: that row alone).
//             raft_bench_groups.cpp.
//   all       wal and single interleaved per K (fair ratio on a noisy
//             machine): R rounds of S/R seconds each, alternating which
//             goes first, latencies and counts pooled per mode; then the
//             idle check: a single node left alone for 5 s, counting its
//             timer wakeups and the process's CPU time.
// records_per_fsync in the output is the WAL's mean over the whole run (in
// cluster3 the leader's; follower_records_per_fsync the two followers');
// cpu_us_per_op the process's CPU time over the measured window per
// completed operation.
// One JSON object per line on stdout.  Public headers only.
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "keel/keel.hpp"
#include "keel/wal/wal.hpp"

#include "raft_bench.hpp"

namespace raft_bench {

// The median slice's throughput and the share of stalled slices
// (bench_windows.hpp): a mean well below the median slice's is stalls, not a
// slower steady pace (decision 0051).
void add_window_figures(nlohmann::json& j, std::vector<std::uint32_t> slices) {
    if (slices.empty()) return;
    const WindowFigures f = window_figures(std::move(slices), kWindowMs);
    j["window_ops_per_s_p50"] = f.ops_per_s_p50;
    j["stalled_window_share"] = f.stalled_share;
}

nlohmann::json report_row(const std::string& mode, int k, const Options& o, LoopResult r) {
    const double ops_per_s = r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0;
    nlohmann::json j = {{"bench", "raft"},
                        {"mode", mode},
                        {"outstanding", k},
                        {"record_bytes", o.record_bytes},
                        {"ops_per_s", ops_per_s},
                        {"p50_us", percentile(r.latencies_us, 0.50)},
                        {"p99_us", percentile(r.latencies_us, 0.99)},
                        {"p999_us", percentile(r.latencies_us, 0.999)},
                        {"max_us", percentile(r.latencies_us, 1.0)}};
    if (r.fsyncs != 0)
        j["records_per_fsync"] = static_cast<double>(r.records) / static_cast<double>(r.fsyncs);
    if (r.follower_fsyncs != 0)
        j["follower_records_per_fsync"] =
            static_cast<double>(r.follower_records) / static_cast<double>(r.follower_fsyncs);
    // CPU time of the whole process (every node's threads) per completed
    // operation: a count that a busy machine disturbs less than a rate.
    if (r.ops != 0) j["cpu_us_per_op"] = r.cpu_seconds * 1e6 / static_cast<double>(r.ops);
    // One automatic snapshot is written at a time: one that comes due during
    // another's write waits for it, so a slow write means fewer snapshots.
    if (r.snapshots != 0)
        j["entries_per_snapshot"] =
            static_cast<double>(r.records) / static_cast<double>(r.snapshots);
    if (o.snapshot_every != 0 && mode != "wal") {
        j["snapshot_every"] = o.snapshot_every;
        j["snapshot_bytes"] = o.snapshot_bytes;
    }
    if (r.failures != 0) j["failures"] = r.failures;
    add_window_figures(j, r.window_ops);
    return j;
}

std::string fresh_dir(const Options& o, const std::string& name) {
    const std::string d = o.dir + "/" + name;
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
}

// ---- modes ----------------------------------------------------------------------

LoopResult run_wal(const Options& o, int k, double seconds) {
    const std::string dir = fresh_dir(o, fmt::format("wal-{}", k));
    // The fastest configuration of the WAL alone, as keel's runtime uses it:
    // no record cache (the runtime's core keeps the log in memory), direct
    // I/O where the file system takes it (NodeOptions::wal_direct_io).
    keel::wal::Options wo;
    wo.cache_bytes = 0;
    wo.write_path = o.write_path == "automatic" ? keel::wal::WritePath::automatic
                                                : keel::wal::WritePath::buffered;
    auto wal = keel::wal::Wal::open(dir, wo);
    if (!wal.ok()) die("wal open: " + wal.status().to_string());
    keel::wal::Wal& w = *wal.value();
    std::mutex order;  // index assignment and submission stay in order
    const std::string payload(o.record_bytes, 'r');
    ClosedLoop loop([&](std::function<void(bool)> done) {
        std::lock_guard lock(order);
        keel::wal::Record r{w.next_index(), 1, 1, payload};
        keel::Status s = w.append(std::move(r), [done](keel::Status st) { done(st.ok()); });
        if (!s.ok()) done(false);
    });
    LoopResult r = loop.run(k, seconds);
    r.records = w.stats().records_written;
    r.fsyncs = w.stats().fsyncs;
    wal.value().reset();
    std::filesystem::remove_all(dir);
    return r;
}

keel::NodeOptions node_options(const Options& o, const std::string& dir) {
    keel::NodeOptions n;
    n.id = 1;
    n.data_dir = dir;
    n.snapshot_every_entries = o.snapshot_every;
    n.wal_direct_io = o.write_path == "automatic";
    n.logger = [](keel::LogLevel l, const std::string& m) {
        if (l == keel::LogLevel::warn || l == keel::LogLevel::error)
            std::fprintf(stderr, "keel: %s\n", m.c_str());
    };
    return n;
}

Op propose_op(keel::Node& node, std::size_t bytes) {
    auto payload = std::make_shared<const std::string>(bytes, 'p');
    return [&node, payload](std::function<void(bool)> done) {
        node.propose_async(*payload, [done](keel::ProposeResult r) { done(r.status.ok()); });
    };
}

// Counts the snapshots a node writes (or installs).
class SnapshotCounter final : public keel::Observer {
public:
    void on_snapshot(std::uint64_t) override { count.fetch_add(1, std::memory_order_relaxed); }
    std::atomic<std::uint64_t> count{0};
};

LoopResult run_single(const Options& o, int k, double seconds) {
    const std::string dir = fresh_dir(o, fmt::format("single-{}", k));
    auto snapshots = std::make_shared<SnapshotCounter>();
    keel::NodeOptions options = node_options(o, dir);
    options.observer = snapshots;
    auto node = keel::Node::open(options, std::make_shared<CountingStateMachine>(o.snapshot_bytes));
    if (!node.ok()) die("node open: " + node.status().to_string());
    // Wait until it leads (immediate for a lone voter, but be exact).
    if (!node.value()->read_index(false).get().status.ok()) die("single node has no leader");
    ClosedLoop loop(propose_op(*node.value(), o.record_bytes));
    LoopResult r = loop.run(k, seconds);
    const keel::NodeStatus st = node.value()->status();
    r.records = st.wal.records;
    r.fsyncs = st.wal.fsyncs;
    node.value()->stop();
    node.value().reset();
    r.snapshots = snapshots->count.load();
    std::filesystem::remove_all(dir);
    return r;
}

std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

LoopResult run_cluster3(const Options& o, int k, double seconds, bool tls) {
    const std::string base = fresh_dir(o, fmt::format("cluster3-{}", k));
    std::vector<keel::MemberSpec> members;
    for (keel::NodeId id = 1; id <= 3; ++id)
        members.push_back({id, fmt::format("127.0.0.1:{}", free_port()), "", true});
    std::vector<std::unique_ptr<keel::Node>> nodes;
    std::random_device random;
    std::string cluster_id;
    while (cluster_id.size() < 32) cluster_id += "0123456789abcdef"[random() % 16];
    for (const auto& m : members) {
        keel::NodeOptions n = node_options(o, fmt::format("{}/node-{}", base, m.id));
        n.id = m.id;
        n.listen_address = m.raft_address;
        n.initial_members = members;
        n.cluster_id = cluster_id;
        // Steady state is what is measured: on a loaded machine a stall of
        // a few hundred ms must not start an election mid-run (proposals
        // would fail until a new leader is found, by another node).
        n.election_timeout_min_ms = 1000;
        n.election_timeout_max_ms = 2000;
        if (tls) {
            const std::string member = fmt::format("{}/member{}", o.tls_dir, m.id);
            n.peer_tls = {member + ".crt", member + ".key", o.tls_dir + "/ca.crt"};
        }
        auto node = keel::Node::open(n, std::make_shared<CountingStateMachine>(o.snapshot_bytes));
        if (!node.ok()) die("node open: " + node.status().to_string());
        nodes.push_back(std::move(node.value()));
    }
    keel::Node* leader = nullptr;
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!leader && Clock::now() < deadline) {
        for (auto& n : nodes)
            if (n->status().role == keel::Role::leader && n->read_index(false).get().status.ok())
                leader = n.get();
        if (!leader) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!leader) die("cluster3: no leader elected within 10 s");
    ClosedLoop loop(propose_op(*leader, o.record_bytes));
    LoopResult r = loop.run(k, seconds);
    for (auto& n : nodes) {
        const keel::NodeStatus st = n->status();
        if (n.get() == leader) {
            r.records = st.wal.records;
            r.fsyncs = st.wal.fsyncs;
        } else {
            r.follower_records += st.wal.records;
            r.follower_fsyncs += st.wal.fsyncs;
        }
    }
    for (auto& n : nodes) n->stop();
    nodes.clear();
    std::filesystem::remove_all(base);
    return r;
}

// cluster3 in plain TCP and in mutual TLS, interleaved as in --mode all;
// then the ratios (TLS / plain) of throughput and latencies.
void compare_tls(const Options& o, int k) {
    LoopResult plain, tls;
    const double each = o.seconds / o.rounds;
    for (int round = 0; round < o.rounds; ++round) {
        if (round % 2 == 0) {
            plain.add(run_cluster3(o, k, each, false));
            tls.add(run_cluster3(o, k, each, true));
        } else {
            tls.add(run_cluster3(o, k, each, true));
            plain.add(run_cluster3(o, k, each, false));
        }
    }
    auto ops = [](const LoopResult& r) {
        return r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0;
    };
    auto ratio = [](double a, double b) { return b > 0 ? a / b : 0; };
    const double p50_ratio =
        ratio(percentile(tls.latencies_us, 0.50), percentile(plain.latencies_us, 0.50));
    const double p99_ratio =
        ratio(percentile(tls.latencies_us, 0.99), percentile(plain.latencies_us, 0.99));
    const double ops_ratio = ratio(ops(tls), ops(plain));
    report("cluster3", k, o, std::move(plain));
    report("cluster3_tls", k, o, std::move(tls));
    print({{"bench", "raft"},
           {"compare", "cluster3_tls/cluster3"},
           {"outstanding", k},
           {"rounds", o.rounds},
           {"ops_ratio", ops_ratio},
           {"p50_ratio", p50_ratio},
           {"p99_ratio", p99_ratio}});
}

double cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return s(ru.ru_utime) + s(ru.ru_stime);
}

void run_idle(const Options& o) {
    const std::string dir = fresh_dir(o, "idle");
    auto node = keel::Node::open(node_options(o, dir),
                                 std::make_shared<CountingStateMachine>(o.snapshot_bytes));
    if (!node.ok()) die("node open: " + node.status().to_string());
    // Some traffic first, so the idle period follows real work; then one
    // second for start-up work to finish (the WAL zero-fills its new
    // segment in the background once, after open), which is not idling.
    for (int i = 0; i < 100; ++i) (void)node.value()->propose("warm").get();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const std::uint64_t wakeups_before = node.value()->status().timer_wakeups;
    const double cpu_before = cpu_seconds();
    std::this_thread::sleep_for(std::chrono::seconds(5));
    const double cpu = cpu_seconds() - cpu_before;
    const std::uint64_t wakeups = node.value()->status().timer_wakeups - wakeups_before;
    print({{"bench", "idle"}, {"seconds", 5}, {"timer_wakeups", wakeups}, {"cpu_s", cpu}});
    node.value()->stop();
    node.value().reset();
    std::filesystem::remove_all(dir);
}

std::vector<int> parse_list(const std::string& s) {
    std::vector<int> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) out.push_back(std::stoi(item));
    return out;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value for " + a);
            return argv[++i];
        };
        if (a == "--dir")
            o.dir = value();
        else if (a == "--seconds")
            o.seconds = std::stod(value());
        else if (a == "--record-bytes")
            o.record_bytes = std::stoul(value());
        else if (a == "--outstanding")
            o.outstanding = parse_list(value());
        else if (a == "--mode")
            o.mode = value();
        else if (a == "--snapshot-every")
            o.snapshot_every = std::stoull(value());
        else if (a == "--snapshot-bytes")
            o.snapshot_bytes = std::stoull(value());
        else if (a == "--rounds")
            o.rounds = std::stoi(value());
        else if (a == "--tls-dir")
            o.tls_dir = value();
        else if (a == "--groups")
            o.groups = std::stoull(value());
        else if (a == "--transport")
            o.transport = value();
        else if (a == "--idle-only")
            o.idle_only = true;
        else if (a == "--write-path")
            o.write_path = value();
        else if (a == "--help" || a == "-h") {
            std::printf(
                "raft-bench --dir D [--seconds S] [--record-bytes B] [--outstanding 1,16,256]\n"
                "           [--mode wal|single|cluster3|cluster3-tls|groups|all]\n"
                "           [--snapshot-every N] [--snapshot-bytes B] [--rounds R] [--tls-dir T]\n"
                "           [--groups N] [--idle-only] [--transport inproc|tcp]\n"
                "           [--write-path automatic|buffered]\n");
            std::exit(0);
        } else {
            die("unknown argument " + a + " (see --help)");
        }
    }
    if (o.dir.empty()) die("--dir is required");
    if (o.seconds <= 0) die("--seconds must be > 0");
    if (o.rounds < 1 || o.rounds > 100) die("--rounds must be in [1, 100]");
    if (o.snapshot_bytes < 16 || o.snapshot_bytes > kMaxSnapshotBodyBytes)
        die("--snapshot-bytes must be in [16, " + std::to_string(kMaxSnapshotBodyBytes) + "]");
    for (int k : o.outstanding)
        if (k < 1) die("--outstanding values must be >= 1");
    if (o.mode != "wal" && o.mode != "single" && o.mode != "cluster3" && o.mode != "cluster3-tls" &&
        o.mode != "groups" && o.mode != "all")
        die("--mode must be wal, single, cluster3, cluster3-tls, groups or all");
    if (o.groups < 1 || o.groups > kMaxGroups)
        die(fmt::format("--groups must be in [1, {}]", kMaxGroups));
    if (o.idle_only && o.mode != "groups") die("--idle-only goes with --mode groups");
    if (o.transport != "inproc" && o.transport != "tcp") die("--transport must be inproc or tcp");
    if (o.transport != "inproc" && o.mode != "groups") die("--transport goes with --mode groups");
    if (o.write_path != "automatic" && o.write_path != "buffered")
        die("--write-path must be automatic or buffered");
    if (o.mode == "cluster3-tls" && o.tls_dir.empty())
        die("--mode cluster3-tls needs --tls-dir (scripts/make-peer-certs.sh DIR 1 2 3)");
    return o;
}

}  // namespace raft_bench

int main(int argc, char** argv) {
    using namespace raft_bench;
    const Options o = parse(argc, argv);
    std::filesystem::create_directories(o.dir);
    if (o.mode == "groups") {
        run_groups(o);
        return 0;
    }
    for (int k : o.outstanding) {
        if (o.mode == "all") {
            // Interleaved rounds, alternating which mode goes first, so slow
            // drifts of the disk hit both alike.
            LoopResult wal, single;
            const double each = o.seconds / o.rounds;
            for (int round = 0; round < o.rounds; ++round) {
                if (round % 2 == 0) {
                    wal.add(run_wal(o, k, each));
                    single.add(run_single(o, k, each));
                } else {
                    single.add(run_single(o, k, each));
                    wal.add(run_wal(o, k, each));
                }
            }
            report("wal", k, o, std::move(wal));
            report("single", k, o, std::move(single));
        }
        if (o.mode == "wal") report("wal", k, o, run_wal(o, k, o.seconds));
        if (o.mode == "single") report("single", k, o, run_single(o, k, o.seconds));
        if (o.mode == "cluster3")
            report(o.tls_dir.empty() ? "cluster3" : "cluster3_tls", k, o,
                   run_cluster3(o, k, o.seconds, !o.tls_dir.empty()));
        if (o.mode == "cluster3-tls") compare_tls(o, k);
    }
    if (o.mode == "all") run_idle(o);
    return 0;
}
