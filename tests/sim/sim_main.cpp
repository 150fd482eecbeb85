// sim/sim_main.cpp — runs the deterministic cluster simulator over seeds.
//
//   keel_sim [--nodes N] [--membership] [--seeds K] [--first-seed S]
//            [--bug NAME --expect-violation] [--determinism] [--keep-going]
//            [--events-max N] [--tick-always] [--no-lease-reads]
//            [--scenario NAME] [--quiesce] [--idle-check] [--groups G]
//            [--failover-check] [--lazy-ticks] [--same-with-lazy-ticks]
//
// --scenario runs a script (scenario.hpp) instead of the swarm; it fixes the
// cluster (figure8, overwritten_write: 5 nodes, no --membership).  --groups G
// runs G Raft groups on simulated processes (one group without it), the
// groups of a process sharing its disk, network, timer and liveness pings;
// with --membership each group changes its own membership, so that a
// process hosts the groups whose configurations name it.  Not with
// --scenario.
//
// Environment: KEEL_SIM_SEED=n runs only seed n (printing its summary);
// KEEL_SIM_SEEDS=k overrides --seeds; KEEL_SIM_VERBOSE=1 echoes every trace
// line as it happens.  Exit status 0 when every seed passed (or, with
// --expect-violation, when some seed caught the injected bug).
//
// --lazy-ticks ticks every core as the runtime does (only when due, the
// rest handed over before the next input: RunConfig::lazy_ticks);
// --same-with-lazy-ticks runs each seed both ways and fails unless the two
// runs are the same (trace hash and event count).
//
// Wall-clock time is read here only, to report throughput; nothing the
// simulation does depends on it.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cluster.hpp"
#include "scenario.hpp"

namespace {

using keel::sim::Bug;
using keel::sim::Cluster;
using keel::sim::RunConfig;
using keel::sim::RunResult;

struct Args {
    RunConfig config;
    std::uint64_t seeds = 100;
    std::uint64_t first_seed = 1;
    bool expect_violation = false;
    bool determinism = false;
    bool same_with_lazy_ticks = false;
    bool keep_going = false;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "keel_sim: %s\nusage: keel_sim [--nodes N] [--membership] [--seeds K] "
                 "[--first-seed S] [--bug NAME --expect-violation] [--determinism] "
                 "[--keep-going] [--events-max N] [--tick-always] [--no-lease-reads] [--quiesce] "
                 "[--idle-check] [--groups G] [--failover-check] [--lazy-ticks] "
                 "[--same-with-lazy-ticks] "
                 "[--scenario figure8|overwritten_write]\n",
                 why);
    std::exit(2);
}

std::uint64_t number(const char* s, const char* what) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (!s[0] || *end) usage(what);
    return v;
}

Args parse(int argc, char** argv) {
    Args a;
    bool nodes_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) usage((std::string("missing value for ") + arg).c_str());
            return argv[++i];
        };
        if (arg == "--nodes") {
            nodes_given = true;
            a.config.nodes = static_cast<int>(number(value(), "bad --nodes"));
            if (a.config.nodes < 1 || a.config.nodes > 7) usage("--nodes must be 1..7");
        } else if (arg == "--membership") {
            a.config.membership = true;
        } else if (arg == "--seeds") {
            a.seeds = number(value(), "bad --seeds");
        } else if (arg == "--first-seed") {
            a.first_seed = number(value(), "bad --first-seed");
        } else if (arg == "--bug") {
            if (!keel::sim::parse_bug(value(), &a.config.bug)) usage("unknown --bug");
        } else if (arg == "--expect-violation") {
            a.expect_violation = true;
        } else if (arg == "--scenario") {
            if (!keel::sim::parse_scenario(value(), &a.config.scenario))
                usage("unknown --scenario");
        } else if (arg == "--no-lease-reads") {
            a.config.lease_reads = false;
        } else if (arg == "--quiesce") {
            a.config.quiesce = true;
        } else if (arg == "--idle-check") {
            a.config.idle_check = true;
        } else if (arg == "--groups") {
            a.config.groups = static_cast<int>(number(value(), "bad --groups"));
            if (a.config.groups < 1 || a.config.groups > 64) usage("--groups must be 1..64");
        } else if (arg == "--failover-check") {
            a.config.failover_check = true;
        } else if (arg == "--tick-always") {
            a.config.tick_always = true;
        } else if (arg == "--lazy-ticks") {
            a.config.lazy_ticks = true;
        } else if (arg == "--same-with-lazy-ticks") {
            a.same_with_lazy_ticks = true;
        } else if (arg == "--events-max") {
            a.config.events_max = number(value(), "bad --events-max");
        } else if (arg == "--determinism") {
            a.determinism = true;
        } else if (arg == "--keep-going") {
            a.keep_going = true;
        } else {
            usage((std::string("unknown argument ") + arg).c_str());
        }
    }
    if (a.config.scenario != keel::sim::Scenario::none) {
        if (a.config.membership) usage("--scenario runs without --membership");
        if (nodes_given && a.config.nodes != keel::sim::scenario_nodes(a.config.scenario))
            usage("--scenario fixes the number of nodes");
        a.config.nodes = keel::sim::scenario_nodes(a.config.scenario);
    }
    if (a.config.groups > 1 && a.config.scenario != keel::sim::Scenario::none)
        usage("--groups runs without --scenario");
    if (a.config.failover_check && (a.config.nodes < 3 || a.config.membership ||
                                    a.config.scenario != keel::sim::Scenario::none))
        usage("--failover-check needs --nodes 3 or more, without --membership and --scenario");
    if (const char* s = std::getenv("KEEL_SIM_SEEDS")) a.seeds = number(s, "bad KEEL_SIM_SEEDS");
    // KEEL_SEED, the tests' convention (tests/common/test_seed.hpp), names one seed too.
    for (const char* name : {"KEEL_SEED", "KEEL_SIM_SEED"}) {
        if (const char* s = std::getenv(name); s != nullptr && *s != '\0') {
            a.first_seed = number(s, (std::string("bad ") + name).c_str());
            a.seeds = 1;
        }
    }
    return a;
}

std::string replay(const Args& a, std::uint64_t seed) {
    std::string cmd = std::string("KEEL_SIM_SEED=") + std::to_string(seed) + " keel_sim --nodes " +
                      std::to_string(a.config.nodes);
    if (a.config.scenario != keel::sim::Scenario::none)
        cmd += std::string(" --scenario ") + keel::sim::scenario_name(a.config.scenario);
    if (a.config.membership) cmd += " --membership";
    if (a.config.groups > 1) cmd += " --groups " + std::to_string(a.config.groups);
    if (a.config.tick_always) cmd += " --tick-always";
    if (a.config.lazy_ticks) cmd += " --lazy-ticks";
    if (a.config.quiesce) cmd += " --quiesce";
    if (a.config.idle_check) cmd += " --idle-check";
    if (a.config.failover_check) cmd += " --failover-check";
    if (!a.config.lease_reads) cmd += " --no-lease-reads";
    if (a.config.bug != Bug::none)
        cmd += std::string(" --bug ") + keel::sim::bug_name(a.config.bug);
    if (a.same_with_lazy_ticks) cmd += " --same-with-lazy-ticks";
    return cmd;
}

void print_failure(const Args& a, std::uint64_t seed, const Cluster& c, const RunResult& r) {
    std::fprintf(stderr, "\n=== keel_sim: seed %llu FAILED ===\n", (unsigned long long)seed);
    std::fprintf(stderr, "violation: %s\n", r.violation.c_str());
    std::fprintf(stderr, "swarm: %s\n", c.params().describe().c_str());
    c.trace_log().print(stderr);
    std::fprintf(stderr, "replay: %s\n\n", replay(a, seed).c_str());
}

}  // namespace

int main(int argc, char** argv) {
    const Args a = parse(argc, argv);
    const bool verbose = std::getenv("KEEL_SIM_VERBOSE") != nullptr;
    const auto wall_start = std::chrono::steady_clock::now();

    std::uint64_t failures = 0, events = 0, sim_us = 0, leaders = 0, committed = 0;
    for (std::uint64_t seed = a.first_seed; seed < a.first_seed + a.seeds; ++seed) {
        Cluster cluster(seed, a.config, verbose);
        const RunResult r = cluster.run();
        events += r.events;
        sim_us += r.end_us;
        leaders += r.leaders_elected;
        committed += r.history.committed;
        if (a.seeds == 1) {
            std::printf(
                "seed %llu: %s; %llu events, %.1fs simulated, %llu leaders, %llu entries "
                "committed, writes %llu accepted %llu committed %llu lost, reads %llu "
                "served %llu failed, %llu crashes, %llu config changes, %llu snapshot "
                "installs, trace hash %016llx\n",
                (unsigned long long)seed, r.ok ? "ok" : "FAILED", (unsigned long long)r.events,
                r.end_us / 1e6, (unsigned long long)r.leaders_elected,
                (unsigned long long)r.committed, (unsigned long long)r.history.accepted,
                (unsigned long long)r.history.committed, (unsigned long long)r.history.lost,
                (unsigned long long)r.history.reads_served,
                (unsigned long long)r.history.reads_failed, (unsigned long long)r.crashes,
                (unsigned long long)r.config_changes, (unsigned long long)r.snapshots_installed,
                (unsigned long long)r.trace_hash);
            if (a.config.groups > 1)
                std::printf(
                    "seed %llu: %d groups per process, %llu WAL fsyncs, %llu of them "
                    "carrying several groups' writes\n",
                    (unsigned long long)seed, a.config.groups, (unsigned long long)r.wal_batches,
                    (unsigned long long)r.wal_batches_shared);
            if (a.config.quiesce)
                std::printf(
                    "seed %llu: %llu Raft messages, %llu core ticks, %llu liveness pings, "
                    "%llu peers declared down\n",
                    (unsigned long long)seed, (unsigned long long)r.raft_messages,
                    (unsigned long long)r.core_ticks, (unsigned long long)r.liveness_pings,
                    (unsigned long long)r.peers_declared_down);
        }
        if (a.determinism) {
            Cluster again(seed, a.config, false);
            const RunResult r2 = again.run();
            if (r2.trace_hash != r.trace_hash || r2.events != r.events) {
                std::fprintf(stderr,
                             "keel_sim: seed %llu is not deterministic (trace hash %016llx "
                             "vs %016llx, %llu vs %llu events)\n",
                             (unsigned long long)seed, (unsigned long long)r.trace_hash,
                             (unsigned long long)r2.trace_hash, (unsigned long long)r.events,
                             (unsigned long long)r2.events);
                return 1;
            }
        }
        if (a.same_with_lazy_ticks) {
            RunConfig other = a.config;
            other.lazy_ticks = !other.lazy_ticks;
            Cluster again(seed, other, false);
            const RunResult r2 = again.run();
            if (r2.trace_hash != r.trace_hash || r2.events != r.events) {
                std::fprintf(stderr,
                             "keel_sim: seed %llu runs otherwise with lazy ticks (trace hash "
                             "%016llx vs %016llx, %llu vs %llu events)\nreplay: %s\n",
                             (unsigned long long)seed, (unsigned long long)r.trace_hash,
                             (unsigned long long)r2.trace_hash, (unsigned long long)r.events,
                             (unsigned long long)r2.events, replay(a, seed).c_str());
                return 1;
            }
        }
        if (a.expect_violation) {
            if (!r.ok && (r.safety || keel::sim::liveness_bug(a.config.bug))) {
                std::printf("keel_sim: injected bug %s caught at seed %llu: %s\n",
                            keel::sim::bug_name(a.config.bug), (unsigned long long)seed,
                            r.violation.c_str());
                std::printf("replay: %s\n", replay(a, seed).c_str());
                return 0;
            }
            continue;
        }
        if (!r.ok) {
            ++failures;
            if (failures == 1 || !a.keep_going)
                print_failure(a, seed, cluster, r);
            else
                std::fprintf(stderr, "seed %llu FAILED: %s\n", (unsigned long long)seed,
                             r.violation.c_str());
            if (!a.keep_going) break;
        }
    }
    const double wall_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    if (a.expect_violation) {
        std::fprintf(stderr, "keel_sim: injected bug %s went unnoticed over %llu seeds\n",
                     keel::sim::bug_name(a.config.bug), (unsigned long long)a.seeds);
        return 1;
    }
    std::printf(
        "keel_sim: %llu seeds (nodes %d%s%s) from %llu: %llu failed; %llu events, %.0fs "
        "simulated, %llu leaders, %llu writes committed; %.1fs wall, %.0f seeds/min\n",
        (unsigned long long)a.seeds, a.config.nodes, a.config.membership ? ", membership" : "",
        a.config.groups > 1 ? (", groups " + std::to_string(a.config.groups)).c_str() : "",
        (unsigned long long)a.first_seed, (unsigned long long)failures, (unsigned long long)events,
        sim_us / 1e6, (unsigned long long)leaders, (unsigned long long)committed, wall_s,
        wall_s > 0 ? a.seeds * 60 / wall_s : 0.0);
    return failures == 0 ? 0 : 1;
}
