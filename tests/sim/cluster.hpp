// sim/cluster.hpp — one simulation run: a cluster, its clients and its
// faults, all driven by one seed.
//
// A cluster is a set of simulated processes, each hosting a replica of some
// of RunConfig::groups Raft groups (all of them, without membership changes;
// with them, each group's configuration decides which processes host it,
// and a process whose last group removed it stops).  The groups of a process share
// its drive (one fsync stream: SimDrive), its network links (a partition or
// a crash cuts them all), its incarnation (a crash restarts them all), its
// timer (one tick per process ticks every group's core) and, with
// quiescence, its liveness pings and verdicts.  Each group has its own
// checker and client history.
//
// The run has two phases.  During the fault phase, clients propose and read,
// operators change membership, transfer leadership and take snapshots, and
// the swarm's faults hit the network, the disks and the nodes.  Then
// everything heals (every link up, no more drops, crashed members
// restarted) and the liveness phase demands, within a bounded simulated
// time, a leader that has committed everything in its log (including a new
// probe write) and every member caught up.  The checkers run after every
// event of both phases.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "checkers.hpp"
#include "history.hpp"
#include "rng.hpp"
#include "scenario.hpp"
#include "scheduler.hpp"
#include "sim_disk.hpp"
#include "sim_network.hpp"
#include "sim_node.hpp"
#include "swarm.hpp"
#include "trace.hpp"

namespace keel::sim {

struct RunResult {
    bool ok = true;
    std::string violation;
    bool safety = false;  // the violation is a safety property (not liveness or a storm)
    std::uint64_t trace_hash = 0;
    std::uint64_t events = 0;
    std::uint64_t end_us = 0;
    std::uint64_t leaders_elected = 0;
    raft::Index committed = 0;
    std::uint64_t crashes = 0;
    std::uint64_t config_changes = 0;
    std::uint64_t snapshots_installed = 0;
    // Counters of the whole run: Raft messages sent, core ticks (of members
    // of the leader's configuration: Cluster::counts_ticks), and the host
    // liveness model's pings and down verdicts (RunConfig::quiesce).
    std::uint64_t raft_messages = 0;
    std::uint64_t core_ticks = 0;
    std::uint64_t liveness_pings = 0;
    std::uint64_t peers_declared_down = 0;
    // WAL fsyncs of every drive, and those that carried several groups' writes.
    std::uint64_t wal_batches = 0;
    std::uint64_t wal_batches_shared = 0;
    HistoryStats history;
};

class Cluster;

// One Raft group of the cluster: its replicas (one per process), their
// files, what is checked of them and what its clients did.
struct SimGroup {
    // What the group's replicas see of the simulation: Cluster's calls,
    // with the group filled in.
    class Host final : public NodeHost {
    public:
        Host(Cluster& cluster, SimGroup& group) : cluster_(cluster), group_(group) {}
        std::uint64_t now_us() const override;
        void schedule_node(raft::NodeId node, std::uint64_t incarnation, std::uint64_t delay_us,
                           std::function<void(SimNode&)> fn) override;
        void schedule_disk_done(std::uint64_t group, raft::NodeId node, std::uint64_t incarnation,
                                std::uint64_t op_id, std::uint64_t delay_us) override;
        void send(const raft::Message& m, std::string snapshot_data) override;
        void trace(const std::string& line) override;
        void violation(const std::string& what) override;
        void crash_requested(raft::NodeId node) override;
        void on_entries(raft::NodeId node, bool leader,
                        const std::vector<raft::Entry>& entries) override;
        void on_snapshot_installed(raft::NodeId node, bool leader, const raft::SnapshotMeta& meta,
                                   const ValueLog& state) override;
        void on_snapshot_taken(raft::NodeId node, const raft::SnapshotMeta& meta,
                               const ValueLog& state) override;
        void on_applied(raft::NodeId node, const raft::Entry& entry,
                        const ValueLog& state) override;
        void on_read_served(raft::NodeId node, std::uint64_t request_id, raft::Index read_index,
                            const ValueLog& state) override;
        void on_read_failed(raft::NodeId node, std::uint64_t request_id) override;

    private:
        Cluster& cluster_;
        SimGroup& group_;
    };

    SimGroup(Cluster& cluster, std::uint64_t group_id, Checker::Fail fail)
        : id(group_id), checker(std::move(fail)), host(cluster, *this) {}

    const std::uint64_t id;
    Checker checker;
    History history;
    Host host;
    std::map<raft::NodeId, std::unique_ptr<SimNode>> nodes;  // live incarnations
    Checker::Disks disks;  // every replica's files, of every process that ever had one
    // The processes that run a replica of the group (a founder, or added
    // by a membership change), those crashed included; and those whose
    // replica a membership change removed (never added again: its files
    // are the removed member's).
    std::set<raft::NodeId> hosts;
    std::set<raft::NodeId> left;
    std::set<raft::NodeId> ever_member;            // in some committed configuration of the group
    std::optional<raft::Proposed> pending_change;  // the group's last membership change
    raft::Index committed_config_index = 0;
    raft::Index settled_at = 0;        // the commit known when history last settled
    std::uint64_t last_commit_us = 0;  // when its known commit last advanced
    std::optional<raft::Proposed> probe;
    bool probe_committed = false;
};

class Cluster final : public ScriptHost {
public:
    // A crash armed to land inside a write (SimNode::arm_crash) that finds
    // none within this long happens between events instead.
    static constexpr std::uint64_t kArmedCrashWaitUs = 500'000;

    Cluster(std::uint64_t seed, const RunConfig& config, bool echo_trace);
    ~Cluster() override;

    RunResult run();
    const SwarmParams& params() const { return params_; }
    const Trace& trace_log() const { return trace_; }

    // What a group's replicas ask of the simulation (SimGroup::Host).
    std::uint64_t now_us() const override { return sched_.now_us(); }
    void schedule_node(SimGroup& g, raft::NodeId node, std::uint64_t incarnation,
                       std::uint64_t delay_us, std::function<void(SimNode&)> fn);
    // The completion of write `op_id` of group `group` on process `node`:
    // its replica's, or, when a membership change stopped that replica while
    // the process runs on, the drive's own (a Host's WAL completes the
    // writes a closed group queued), so that the drive's other groups'
    // writes behind it go on.
    void schedule_disk_done(std::uint64_t group, raft::NodeId node, std::uint64_t incarnation,
                            std::uint64_t op_id, std::uint64_t delay_us);
    void send(SimGroup& g, const raft::Message& m, std::string snapshot_data);
    void trace(const std::string& line) override { trace_.add(sched_.now_us(), line); }
    // A line about group g: prefixed "g<id> " when there are several groups.
    void trace(const SimGroup& g, const std::string& line);
    void violation(const std::string& what);
    // A violation found in group g (always a safety one): prefixed "g<id>: "
    // when there are several groups.
    void violation(const SimGroup& g, const std::string& what);
    void crash_requested(raft::NodeId node);
    void on_applied(SimGroup& g, raft::NodeId node, const raft::Entry& entry,
                    const ValueLog& state);
    void on_read_served(SimGroup& g, raft::NodeId node, std::uint64_t request_id,
                        raft::Index read_index, const ValueLog& state);
    void on_read_failed(SimGroup& g, std::uint64_t request_id);
    void count_snapshot_installed() { ++result_.snapshots_installed; }
    SimGroup& group(std::uint64_t id) { return *groups_.at(id); }

    // ScriptHost (now_us and trace as above): scripts run one group (group 0).
    const raft::Core* core(raft::NodeId id) const override;
    DurableState durable(raft::NodeId id) const override {
        return groups_.front()->disks.at(id)->durable();
    }
    raft::Index commit_known() const override { return groups_.front()->checker.commit_known(); }
    raft::Term committed_term(raft::Index index) const override {
        return groups_.front()->checker.committed_term(index);
    }
    bool propose(raft::NodeId id) override;
    void crash(raft::NodeId id) override;
    void restart(raft::NodeId id) override;
    void cut(raft::NodeId a, raft::NodeId b) override;
    void reconnect() override;
    void hold_disk(raft::NodeId id) override;
    void release_disk(raft::NodeId id) override;

private:
    enum class Phase { faults, liveness };

    void report_violation(const std::string& what, bool safety);
    // run()'s parts: the founding members and the recurring activities; after
    // each event, whether the run is over (liveness, idle and failover
    // checks, storms); the totals of the result.
    void bootstrap();
    bool run_over();
    void finish_result();

    // The host liveness model (cluster_liveness.cpp): every kLivenessPingTicks
    // ticks each process pings every peer process over the simulated network
    // (partitions, drops and delays apply) and declares down a peer it has
    // not heard for an election timeout, feeding peer_down to every group's
    // core again at every check while the peer stays silent.
    static constexpr std::uint64_t kLivenessPingTicks = 2;
    // RunConfig::idle_check: after liveness is reached, warm up, then count
    // over a window: no Raft message and no core tick may happen in it, and
    // no more liveness pings than one per process pair per round.
    static constexpr std::uint64_t kIdleWarmupUs = 3'000'000;
    static constexpr std::uint64_t kIdleWindowUs = 2'000'000;
    void start_liveness(raft::NodeId id, std::uint64_t incarnation);
    void liveness_round(raft::NodeId id, std::uint64_t incarnation);
    void deliver_ping(raft::NodeId from, std::uint64_t incarnation, raft::NodeId to);
    void declare_down(raft::NodeId observer, raft::NodeId peer, const std::string& why);
    std::uint64_t liveness_timeout_us() const;
    // The most liveness pings the processes may send in window_us.
    std::uint64_t liveness_pings_max(std::uint64_t window_us) const;
    // Whether the ticks and messages of `id` in group g count
    // (RunResult::core_ticks, raft_messages): not those of a node outside
    // the group leader's configuration, an orphan of a change the simulator
    // leaves running (a host would drop such a replica).
    bool counts_ticks(const SimGroup& g, raft::NodeId id) const;
    // Idle check: false while it runs, true once it finished (violation or not).
    bool idle_check_done();
    // Failover check (RunConfig::failover_check): crashes the leader of the
    // last group for good; failover_done() is true once every group has a
    // leader elsewhere committing in its term, or the check failed.
    void start_failover();
    bool failover_done();

    raft::Options options_for(const SimGroup& g, raft::NodeId id);
    // Starts process `id` with a replica of every group it hosts.
    void start_node(raft::NodeId id);
    // Starts group g's replica on process `id` (running, incarnation `incarnation`).
    void start_replica(SimGroup& g, raft::NodeId id, std::uint64_t incarnation);
    // A committed configuration of g left process `id` out: its replica of g
    // stops for good, and the process too once it hosts no group.
    void leave_group(SimGroup& g, raft::NodeId id);
    // Which process group g's membership change adds: with several groups,
    // often one that runs other groups already; else a new, empty one.
    raft::NodeId process_to_add(SimGroup& g);
    // Runs fn after delay_us on incarnation `incarnation` of process `id`,
    // unless that incarnation has crashed or stopped by then.
    void schedule_process(raft::NodeId id, std::uint64_t incarnation, std::uint64_t delay_us,
                          std::function<void()> fn);
    void schedule_tick(raft::NodeId id, std::uint64_t incarnation);
    void deliver(SimGroup& g, const raft::Message& m, const std::string& data);
    void stop_removed(raft::NodeId id);
    // A group chosen at random (no draw with one group).
    SimGroup& pick_group(Rng& rng);

    // Recurring activities of the fault phase: fn runs at random intervals
    // averaging 1/rate, until the liveness phase begins.
    void every(double rate_per_s, Rng* rng, std::function<void()> fn);
    void client_propose();
    bool propose_on(SimGroup& g, SimNode& n);
    void client_read();
    void fault_partition();
    void fault_crash();
    // Crashes `id` now and restarts it after a random downtime (fault phase).
    void crash_for_a_while(raft::NodeId id);
    // Crashes the processes that stopped inside a write during the last event.
    void crash_dying();
    void fault_disk_stall();
    void admin_change_membership();
    void admin_transfer();
    void admin_snapshot();
    void heal();
    // The liveness phase's bound on one message delay and on one disk write.
    std::uint64_t calm_latency_max_us() const;
    void poll_script();
    void liveness_probe(SimGroup& g);
    bool liveness_reached(const SimGroup& g, std::string* why_not) const;
    std::string describe_nodes() const;  // role, term, log and configuration of each live replica

    SimNode* leader(const SimGroup& g) const;  // a live leader of the highest term, if any
    SimNode* client_target(const SimGroup& g, Rng& rng) const;
    std::vector<raft::NodeId> members() const;  // every process that exists and is not removed
    // Every group's replica on process `id` (those that run).
    std::vector<SimNode*> replicas(raft::NodeId id) const;

    std::uint64_t seed_;
    RunConfig config_;
    SwarmParams params_;
    Rng root_;
    Rng rng_net_, rng_clock_, rng_client_, rng_fault_, rng_admin_, rng_disk_, rng_node_, rng_stall_;
    Scheduler sched_;
    Trace trace_;
    SimNetwork network_;
    std::vector<std::unique_ptr<SimGroup>> groups_;  // RunConfig::groups of them, ids 0, 1, ...
    std::optional<Script> script_;                   // a scripted run (RunConfig::scenario)

    std::map<raft::NodeId, std::unique_ptr<SimDrive>> drives_;  // every process that ever existed
    std::set<raft::NodeId> running_;                            // processes up
    std::map<raft::NodeId, std::uint64_t> incarnations_;
    std::map<raft::NodeId, double> clock_rate_;  // tick period multiplier (skew)
    std::set<raft::NodeId> crashed_;
    std::set<raft::NodeId> armed_;  // will crash at a synchronous write (SimNode::arm_crash)
    std::set<raft::NodeId> dying_;  // stopped inside a write in the current event
    std::set<raft::NodeId> removed_;
    raft::NodeId next_node_id_ = 1;
    std::uint64_t next_request_id_ = 1;
    std::uint64_t next_value_ = 1;

    Phase phase_ = Phase::faults;
    std::uint64_t heal_us_ = 0;
    // Host liveness: when each process last heard each peer's ping, and the
    // peers it holds down.  Keys (observer, peer).
    std::map<std::pair<raft::NodeId, raft::NodeId>, std::uint64_t> heard_us_;
    std::set<std::pair<raft::NodeId, raft::NodeId>> declared_down_;
    // The incarnation of each peer each process heard last: a new one means
    // the process restarted, and what ran there before is down.
    std::map<std::pair<raft::NodeId, raft::NodeId>, std::uint64_t> heard_incarnation_;
    // Idle check: when liveness was reached, and the counters at the end of the warm-up.
    std::optional<std::uint64_t> idle_from_us_;
    struct IdleCounts {
        std::uint64_t raft_messages = 0, core_ticks = 0, liveness_pings = 0;
    };
    IdleCounts idle_counts() const;
    std::optional<IdleCounts> idle_counts_at_warm_;
    std::optional<std::uint64_t> failover_from_us_;
    raft::NodeId failover_victim_ = raft::kNoNode;
    std::optional<std::string> violation_;
    bool safety_violation_ = false;
    RunResult result_;
};

}  // namespace keel::sim
