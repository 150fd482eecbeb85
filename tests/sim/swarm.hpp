// sim/swarm.hpp — the parameters of one simulation run, drawn from its seed.
//
// Swarm testing (Groce et al., 2012): rather than running every seed with
// the same fault mix, each seed first draws which faults are on and how
// hard they hit.  Some seeds are calm (a leader serves thousands of
// proposals undisturbed), some brutal (a fifth of all messages lost, nodes
// crashing every second); each mix finds bugs the others hide.
#pragma once

#include <cstdint>
#include <string>

namespace keel::sim {

// Deliberate faults that break Raft's assumptions; used only to prove the
// checkers notice (tests/sim/meson.build: sim_catches_injected_bugs).
enum class Bug : std::uint8_t {
    none = 0,
    lying_disk,         // fsync is acknowledged but a crash loses the acknowledged suffix
    vote_granter,       // the network turns every rejected (pre-)vote into a grant
    commit_forger,      // the network raises the commit index of appends and heartbeats
    skip_apply,         // a node's state machine skips an entry now and then
    ack_forger,         // the network turns rejected appends into acknowledgements
    commit_older_term,  // the core's leader commits older-term entries by counting replicas (Figure
                        // 8)
    // The network turns every append acknowledgement into a no-news one:
    // nothing new commits (a stall: caught by the liveness check, not a safety one).
    ack_eater,
    // The runtime names a completed WAL write by its last entry's (index,
    // term) and reports the newest write holding that entry — after a
    // truncation and a re-append, one still queued (issue 21).
    stale_durability_report,
    // Several groups per process (RunConfig::groups): the shared WAL's
    // group commit counts the batch queued during an fsync as synced by it,
    // so a follower acknowledges records a crash may still lose.
    group_commit_early_ack,
    // With quiescence: the host's peer_down verdict reaches only the first
    // group of the process, not every group (caught by the failover check).
    verdict_to_one_group,
    // With quiescence: the host pings each peer process once per group
    // instead of once (caught by the idle check's bound on pings).
    ping_per_group,
    // With membership changes: a process added to a group opens its replica
    // as the founder of a group of its own (a Host's open_group with no
    // initial members and join unset) instead of an empty joiner.
    joiner_bootstraps_alone,
    // The core's leader counts what it has durable and committed as stored on
    // every member (raft::Options::unsafe_forget_unstored): it and its
    // followers drop entries from memory that a member may still lack.
    forget_unstored,
};
// An injected bug the liveness or idle check must catch (the others break safety).
inline bool liveness_bug(Bug bug) {
    return bug == Bug::ack_eater || bug == Bug::verdict_to_one_group || bug == Bug::ping_per_group;
}
const char* bug_name(Bug bug);
bool parse_bug(const std::string& name, Bug* out);

// A scripted run (scenario.hpp) instead of the swarm's random faults.
enum class Scenario : std::uint8_t {
    none = 0,
    figure8,  // Figure 8 of the Raft paper, step by step, on 5 nodes
    // A follower's log overwritten back and forth (3/t2, 3/t3, 3/t2 again)
    // while its first write is held on its way to disk (scenario.cpp).
    overwritten_write,
};

// What the caller fixes for a whole batch of seeds.
struct RunConfig {
    int nodes = 3;            // founding voters
    bool membership = false;  // grow and shrink the cluster (also 1 -> 3 -> 1)
    Bug bug = Bug::none;
    // A scenario fixes its own parameters and faults; the seed only varies
    // the cores' election timeouts (within the ranges the script allows) and
    // the padding of client writes.
    Scenario scenario = Scenario::none;
    // Tick every node even when needs_ticks() says it may go without: tells
    // apart bugs of the tickless lone-voter mode (docs/simulator.md).
    bool tick_always = false;
    // Tick as the runtime does: a core only when it is due a tick
    // (raft::Core::ticks_until_due), the ticks held back handed over in one
    // call before any other input.  The run must be the same as without.
    bool lazy_ticks = false;
    // Let the swarm turn on lease reads (in about a quarter of the seeds).
    bool lease_reads = true;
    // A run that needs more events than this is a livelock (a message storm).
    std::uint64_t events_max = 2'000'000;
    // Quiescence on in every core (raft::Options::quiesce), with the host's
    // liveness model: each process pings each peer process and feeds
    // peer_down to its core when one stays silent (cluster_liveness.cpp).
    bool quiesce = false;
    // Once liveness is reached, idle on and demand that the quiet cluster
    // sends no Raft message and ticks no core (needs quiesce to pass).
    bool idle_check = false;
    // Raft groups per simulated process, sharing its drive, network links,
    // timer and liveness pings (docs/simulator.md, "Several groups per
    // process").  One group is exactly the simulator of one group per node.
    int groups = 1;
    // Once liveness is reached (and the idle check passed, if asked for),
    // crash the process leading the last group for good: every group must
    // then elect a leader on the other processes that commits in its term
    // (with quiescence, only the host's peer_down verdict can wake the
    // quiescent followers of that process's groups).  Needs 3 or more
    // nodes and no membership changes.
    bool failover_check = false;
};

struct SwarmParams {
    // Cluster size bounds for membership changes (both = nodes when off).
    int voters_min = 3;
    int voters_max = 3;

    // Network: every message takes delay in [delay_min_us, delay_max_us];
    // reorder_p of them are held back up to reorder_extra_max_us more.
    std::uint64_t delay_min_us = 500;
    std::uint64_t delay_max_us = 5'000;
    // Links deliver in order (like the TCP transport) unless a message is held
    // back (reorder_p); otherwise every message's delay is independent.
    bool fifo_links = true;
    double drop_p = 0;
    double dup_p = 0;
    double reorder_p = 0;
    std::uint64_t reorder_extra_max_us = 0;
    double partitions_per_s = 0;
    bool asymmetric_partitions = false;
    std::uint64_t partition_us_max = 0;
    bool report_unreachable = false;

    // Disk (sim_disk.hpp): each WAL write becomes durable
    // fsync_min_us..fsync_max_us after the previous one (one FIFO queue per
    // node), as does each snapshot file on its own queue.
    std::uint64_t fsync_min_us = 100;
    std::uint64_t fsync_max_us = 2'000;
    // A change of the commit index alone is saved at once with this
    // probability (the runtime: 0, it waits for the next term or vote
    // change; the contract allows any time).
    double commit_save_p = 0;
    // A crash tears the WAL write in progress with this probability: part
    // of an append survives, or a truncation or reset reached its commit point.
    double torn_write_p = 0;
    // A crash lands inside a batch, at a synchronous write, with this
    // probability (else between events).
    double crash_in_write_p = 0;
    // Disk stalls: a live node's WAL completes nothing for up to
    // disk_stall_us_max (a slow or stuck device), while the node runs on.
    double disk_stalls_per_s = 0;
    std::uint64_t disk_stall_us_max = 0;

    // Crashes: a live node crashes, stays down up to down_us_max, restarts.
    double crashes_per_s = 0;
    std::uint64_t down_us_max = 0;
    int crashed_max = 0;

    // Clock: each node ticks every tick_us * (1 +- skew).
    std::uint64_t tick_us = 10'000;
    double skew = 0;

    // Clients and operators.
    double proposals_per_s = 0;
    double reads_per_s = 0;
    double to_leader_p = 0.8;  // how often a client finds the leader
    double config_changes_per_s = 0;
    double transfers_per_s = 0;
    double snapshots_per_s = 0;
    std::uint64_t proposal_bytes_max = 16;

    // Core options.
    int election_ticks_min = 10;
    int election_ticks_max = 20;
    int heartbeat_ticks = 1;
    bool pre_vote = true;
    bool check_quorum = true;
    bool lease_reads = false;  // only with check_quorum
    std::uint64_t max_inflight_messages = 256;
    std::uint64_t max_message_bytes = 1 << 20;
    std::uint64_t snapshot_trailing_entries = 1024;

    // Phases: faults for fault_phase_us, then everything heals and a leader
    // must commit everything.  A violation: no commit for liveness_bound_us
    // (a stall), or not done within liveness_cap_us in all (a livelock that
    // still commits).  The backlog left at healing drains at the pace of the
    // configuration: one entry per round trip in the slowest (one append in
    // flight, one entry per append, 51 ms links, 31 ms fsyncs: ~8-35 entries
    // a second, against up to 100 proposals a second during the faults).
    std::uint64_t fault_phase_us = 10'000'000;
    std::uint64_t liveness_bound_us = 30'000'000;
    std::uint64_t liveness_cap_us = 300'000'000;

    std::string describe() const;
};

SwarmParams draw_swarm(std::uint64_t seed, const RunConfig& config);

}  // namespace keel::sim
