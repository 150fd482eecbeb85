// sim/sim_node.hpp — one incarnation of a node: a raft::Core plus the
// simulated runtime around it.
//
// SimNode carries out each Actions batch exactly as actions.hpp demands:
// install a snapshot first; make a term/vote change durable before any
// message leaves; queue entries on the disk and call on_persisted() when
// they are durable; send `messages` at once and `messages_after_persist`
// only once everything queued so far is durable; apply committed entries in
// order and serve ReadIndex reads once applied.  A crash destroys the
// SimNode; its SimDisk survives and the next incarnation starts from it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "raft/core.hpp"
#include "sim_disk.hpp"
#include "swarm.hpp"
#include "value_log.hpp"

namespace keel::sim {

// What a node needs from the simulation around it (implemented by Cluster).
class NodeHost {
public:
    virtual ~NodeHost() = default;
    virtual std::uint64_t now_us() const = 0;
    // Runs fn on incarnation `incarnation` of `node` after delay_us, unless
    // that incarnation has crashed by then.
    virtual void schedule_node(raft::NodeId node, std::uint64_t incarnation, std::uint64_t delay_us,
                               std::function<void(class SimNode&)> fn) = 0;
    // Puts a message on the network; `snapshot_data` rides along with `snapshot` messages.
    virtual void send(const raft::Message& m, std::string snapshot_data) = 0;
    virtual void trace(const std::string& line) = 0;
    // The simulator's own contract checks (not Raft invariants) fail here too.
    virtual void violation(const std::string& what) = 0;

    // Observations for the checkers and the client history.
    virtual void on_entries(raft::NodeId node, bool leader,
                            const std::vector<raft::Entry>& entries) = 0;
    virtual void on_snapshot_installed(raft::NodeId node, bool leader,
                                       const raft::SnapshotMeta& meta, const ValueLog& state) = 0;
    virtual void on_snapshot_taken(raft::NodeId node, const raft::SnapshotMeta& meta,
                                   const ValueLog& state) = 0;
    virtual void on_applied(raft::NodeId node, const raft::Entry& entry, const ValueLog& state) = 0;
    virtual void on_read_served(raft::NodeId node, std::uint64_t request_id, raft::Index read_index,
                                const ValueLog& state) = 0;
    virtual void on_read_failed(raft::NodeId node, std::uint64_t request_id) = 0;
};

class SimNode {
public:
    // Reads waiting for the state machine to catch up; more is a leak.
    static constexpr std::size_t kPendingReadsMax = 10'000;
    // How long after Actions::snapshot_wanted the snapshot is taken.
    static constexpr std::uint64_t kSnapshotWantedDelayUs = 500;

    // Starts a node from what its disk holds (its state machine restored
    // from the durable snapshot).  `incarnation` distinguishes restarts.
    SimNode(NodeHost& host, SimDisk& disk, const raft::Options& options, std::uint64_t incarnation,
            const RunConfig& config, Rng rng);

    raft::NodeId id() const { return core_.id(); }
    std::uint64_t incarnation() const { return incarnation_; }
    const raft::Core& core() const { return core_; }
    const ValueLog& state() const { return state_; }
    // Messages waiting for a disk write, and the write they wait for (diagnostics).
    std::size_t gated() const { return gated_.size(); }
    std::uint64_t gated_on() const { return gated_.empty() ? 0 : gated_.front().barrier_op; }

    // Inputs; each runs the core and carries out every resulting batch.
    void tick();
    void deliver(const raft::Message& m, const std::string& snapshot_data);
    Result<raft::Proposed> propose(std::string data);
    Status read_index(std::uint64_t request_id);
    Status transfer_leadership(raft::NodeId target);
    Result<raft::Proposed> change_membership(const raft::ConfigChange& change);
    void take_snapshot();
    void report_snapshot(raft::NodeId peer, bool ok);
    void report_unreachable(raft::NodeId peer);
    // The disk finished write `op_id` (scheduled by this node).
    void disk_done(std::uint64_t op_id);

private:
    struct Snapshot {
        raft::SnapshotMeta meta;
        std::string data;
    };
    struct Gated {
        std::uint64_t barrier_op;  // send once the disk completed this write
        raft::Message message;
    };

    void drain();
    void process(raft::Actions a);
    void install_snapshot(const raft::SnapshotMeta& meta);
    void apply(const std::vector<raft::Entry>& committed);
    void send_or_gate(raft::Message m, std::uint64_t barrier_op);
    void send_now(const raft::Message& m);
    void release_gated();
    void serve_reads();
    std::uint64_t submit(DiskOp op);

    NodeHost& host_;
    SimDisk& disk_;
    raft::Core core_;
    std::uint64_t incarnation_;
    Bug bug_;
    bool tick_always_;
    Rng rng_;

    ValueLog state_;
    std::optional<Snapshot> latest_snapshot_;                           // taken or installed
    std::map<std::pair<raft::Index, raft::Term>, std::string> staged_;  // received snapshot data
    raft::HardState hard_state_;         // last one handed to the disk
    std::uint64_t send_barrier_op_ = 0;  // newest term/vote/snapshot write: messages wait for it
    std::deque<Gated> gated_;
    std::vector<std::pair<std::uint64_t, raft::Index>> pending_reads_;  // (request id, read index)
};

}  // namespace keel::sim
