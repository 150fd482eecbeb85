// sim/cluster.hpp — one simulation run: a cluster, its clients and its
// faults, all driven by one seed.
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
    HistoryStats history;
};

class Cluster final : public NodeHost, public ScriptHost {
public:
    // A crash armed to land inside a write (SimNode::arm_crash) that finds
    // none within this long happens between events instead.
    static constexpr std::uint64_t kArmedCrashWaitUs = 500'000;

    Cluster(std::uint64_t seed, const RunConfig& config, bool echo_trace);
    ~Cluster() override;

    RunResult run();
    const SwarmParams& params() const { return params_; }
    const Trace& trace_log() const { return trace_; }

    // NodeHost
    std::uint64_t now_us() const override { return sched_.now_us(); }
    void schedule_node(raft::NodeId node, std::uint64_t incarnation, std::uint64_t delay_us,
                       std::function<void(SimNode&)> fn) override;
    void send(const raft::Message& m, std::string snapshot_data) override;
    void trace(const std::string& line) override { trace_.add(sched_.now_us(), line); }
    void violation(const std::string& what) override;
    void crash_requested(raft::NodeId node) override { dying_.insert(node); }
    void on_entries(raft::NodeId node, bool leader,
                    const std::vector<raft::Entry>& entries) override;
    void on_snapshot_installed(raft::NodeId node, bool leader, const raft::SnapshotMeta& meta,
                               const ValueLog& state) override;
    void on_snapshot_taken(raft::NodeId node, const raft::SnapshotMeta& meta,
                           const ValueLog& state) override;
    void on_applied(raft::NodeId node, const raft::Entry& entry, const ValueLog& state) override;
    void on_read_served(raft::NodeId node, std::uint64_t request_id, raft::Index read_index,
                        const ValueLog& state) override;
    void on_read_failed(raft::NodeId node, std::uint64_t request_id) override;

    // ScriptHost (now_us and trace as above)
    const raft::Core* core(raft::NodeId id) const override;
    DurableState durable(raft::NodeId id) const override { return disks_.at(id)->durable(); }
    raft::Index commit_known() const override { return checker_.commit_known(); }
    raft::Term committed_term(raft::Index index) const override {
        return checker_.committed_term(index);
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

    // The host liveness model (cluster_liveness.cpp): every kLivenessPingTicks
    // ticks each process pings every peer process over the simulated network
    // (partitions, drops and delays apply) and declares down a peer it has
    // not heard for an election timeout, feeding peer_down to its core
    // again at every check while the peer stays silent.
    static constexpr std::uint64_t kLivenessPingTicks = 2;
    // RunConfig::idle_check: after liveness is reached, warm up, then count
    // over a window: no Raft message and no core tick may happen in it.
    static constexpr std::uint64_t kIdleWarmupUs = 3'000'000;
    static constexpr std::uint64_t kIdleWindowUs = 2'000'000;
    void start_liveness(raft::NodeId id, std::uint64_t incarnation);
    void liveness_round(raft::NodeId id, std::uint64_t incarnation);
    void deliver_ping(raft::NodeId from, std::uint64_t incarnation, raft::NodeId to);
    void declare_down(raft::NodeId observer, raft::NodeId peer, const std::string& why);
    std::uint64_t liveness_timeout_us() const;
    // Whether the ticks and messages of `id` count (RunResult::core_ticks,
    // raft_messages): not those of a
    // node outside the leader's configuration, an orphan of a change the
    // simulator leaves running (a host would drop such a replica).
    bool counts_ticks(raft::NodeId id) const;
    // Idle check: false while it runs, true once it finished (violation or not).
    bool idle_check_done();

    raft::Options options_for(raft::NodeId id);
    void start_node(raft::NodeId id);
    void schedule_tick(raft::NodeId id, std::uint64_t incarnation);
    void deliver(const raft::Message& m, const std::string& data);
    void stop_removed(raft::NodeId id);

    // Recurring activities of the fault phase: fn runs at random intervals
    // averaging 1/rate, until the liveness phase begins.
    void every(double rate_per_s, Rng* rng, std::function<void()> fn);
    void client_propose();
    bool propose_on(SimNode& n);
    void client_read();
    void fault_partition();
    void fault_crash();
    // Crashes `id` now and restarts it after a random downtime (fault phase).
    void crash_for_a_while(raft::NodeId id);
    // Crashes the nodes that stopped inside a write during the last event.
    void crash_dying();
    void fault_disk_stall();
    void admin_change_membership();
    void admin_transfer();
    void admin_snapshot();
    void heal();
    // The liveness phase's bound on one message delay and on one disk write.
    std::uint64_t calm_latency_max_us() const;
    void poll_script();
    void liveness_probe();
    bool liveness_reached(std::string* why_not) const;
    std::string describe_nodes() const;  // role, term, log and configuration of each live node

    SimNode* leader() const;  // a live leader of the highest term, if any
    SimNode* client_target(Rng& rng) const;
    std::vector<raft::NodeId> members() const;  // every node that exists and is not removed

    std::uint64_t seed_;
    RunConfig config_;
    SwarmParams params_;
    Rng root_;
    Rng rng_net_, rng_clock_, rng_client_, rng_fault_, rng_admin_, rng_disk_, rng_node_, rng_stall_;
    Scheduler sched_;
    Trace trace_;
    SimNetwork network_;
    Checker checker_;
    History history_;
    std::optional<Script> script_;  // a scripted run (RunConfig::scenario)

    std::map<raft::NodeId, std::unique_ptr<SimDisk>> disks_;  // every node that ever existed
    std::map<raft::NodeId, std::unique_ptr<SimNode>> nodes_;  // live incarnations
    std::map<raft::NodeId, std::uint64_t> incarnations_;
    std::map<raft::NodeId, double> clock_rate_;  // tick period multiplier (skew)
    std::set<raft::NodeId> crashed_;
    std::set<raft::NodeId> armed_;  // will crash at a synchronous write (SimNode::arm_crash)
    std::set<raft::NodeId> dying_;  // stopped inside a write in the current event
    std::set<raft::NodeId> removed_;
    std::set<raft::NodeId> ever_member_;  // in some committed configuration
    raft::Index committed_config_index_ = 0;
    raft::NodeId next_node_id_ = 1;
    std::optional<raft::Proposed> pending_change_;
    std::optional<raft::Proposed> probe_;
    bool probe_committed_ = false;
    std::uint64_t next_request_id_ = 1;
    std::uint64_t next_value_ = 1;

    Phase phase_ = Phase::faults;
    std::uint64_t heal_us_ = 0;
    std::uint64_t last_commit_us_ = 0;  // liveness phase: when the known commit last advanced
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
    std::optional<std::string> violation_;
    bool safety_violation_ = false;
    RunResult result_;
};

}  // namespace keel::sim
