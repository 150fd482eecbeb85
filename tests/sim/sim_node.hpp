// sim/sim_node.hpp — one incarnation of a node: a raft::Core plus the
// simulated runtime around it.
//
// SimNode carries out each Actions batch as the runtime does
// (lib/runtime/actions_executor.cpp, in the order of raft/actions.hpp), on
// the runtime's files (sim_disk.hpp):
//   1. a leader's snapshot: the file, then meta (synchronous), then a WAL
//      reset (queued);
//   2. a term or vote change: meta, synchronous, so durable before anything
//      of the batch leaves (a change of commit alone: at the next term or
//      vote change, or at once with SwarmParams::commit_save_p);
//   3. entries: a truncation of a conflicting suffix, then the append, each
//      queued on the WAL; when the append completes, on_persisted(write_id);
//   4. `messages` at once; `messages_after_persist` once every WAL operation
//      queued so far has completed;
//   5. committed entries applied in order, then on_applied; ReadIndex reads
//      served once applied;
//   6. snapshot_wanted: a snapshot at the applied index, taken a little
//      later.  Its file is written on the background queue, and the core is
//      told (on_snapshot_taken) once it is published, as in the runtime.
// A crash destroys the SimNode; its SimDisk survives and the next
// incarnation starts from what recovery makes of it.  A crash may also
// land inside a batch, at a synchronous write (arm_crash): the node stops
// there, before or after that write, and does nothing more.
//
// A process hosting several groups runs one SimNode per group, their
// SimDisks on one SimDrive (one fsync stream): a write of one group may
// complete after another group's, and its completion runs on the node of
// the group that queued it.  When one of them stops inside a write, the
// others stop too (stop()): the process crashed.
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

// What a node needs from the simulation around it (implemented by Cluster,
// one NodeHost per group: everything below concerns the node's own group).
class NodeHost {
public:
    virtual ~NodeHost() = default;
    virtual std::uint64_t now_us() const = 0;
    // Runs fn on incarnation `incarnation` of `node` after delay_us, unless
    // that incarnation has crashed by then.
    virtual void schedule_node(raft::NodeId node, std::uint64_t incarnation, std::uint64_t delay_us,
                               std::function<void(class SimNode&)> fn) = 0;
    // The drive of process `node` finishes WAL or snapshot write `op_id`,
    // queued by `group`'s replica there, after delay_us: runs that
    // replica's disk_done (its incarnation is the process's).
    virtual void schedule_disk_done(std::uint64_t group, raft::NodeId node,
                                    std::uint64_t incarnation, std::uint64_t op_id,
                                    std::uint64_t delay_us) = 0;
    // Puts a message on the network; `snapshot_data` rides along with `snapshot` messages.
    virtual void send(const raft::Message& m, std::string snapshot_data) = 0;
    virtual void trace(const std::string& line) = 0;
    // The simulator's own contract checks (not Raft invariants) fail here too.
    virtual void violation(const std::string& what) = 0;
    // The node stopped inside a write (arm_crash): crash its process once the event ends.
    virtual void crash_requested(raft::NodeId node) = 0;

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
    // How long a released WAL (a script's hold) takes for its next write.
    static constexpr std::uint64_t kReleasedWriteUs = 100;

    // Starts a node from what recovery makes of its disk (its state machine
    // restored from the durable snapshot).  `incarnation` distinguishes restarts.
    SimNode(NodeHost& host, SimDisk& disk, const raft::Options& options, std::uint64_t incarnation,
            const RunConfig& config, const SwarmParams& params, Rng rng);

    raft::NodeId id() const { return core_.id(); }
    std::uint64_t incarnation() const { return incarnation_; }
    const raft::Core& core() const { return core_; }
    const ValueLog& state() const { return state_; }
    // Messages waiting for a disk write, and the write they wait for (diagnostics).
    std::size_t gated() const { return gated_.size(); }
    std::uint64_t gated_on() const { return gated_.empty() ? 0 : gated_.front().barrier_op; }

    // Inputs; each runs the core and carries out every resulting batch.
    // tick() returns whether the core was ticked (a lone leader or a
    // quiescent core is not, as the runtime would stop its timer).
    // With RunConfig::lazy_ticks the core is ticked only when
    // ticks_until_due() says a tick is due, and before any other input is
    // handed the ticks held back (pay_ticks), as the runtime does.
    bool tick();
    void peer_down(raft::NodeId peer);
    void deliver(const raft::Message& m, const std::string& snapshot_data);
    Result<raft::Proposed> propose(std::string data);
    Status read_index(std::uint64_t request_id);
    Status transfer_leadership(raft::NodeId target);
    Result<raft::Proposed> change_membership(const raft::ConfigChange& change);
    void take_snapshot();
    void report_snapshot(raft::NodeId peer, bool ok);
    void report_unreachable(raft::NodeId peer);
    // The drive finished write `op_id` (queued by this node).
    void disk_done(std::uint64_t op_id);
    // Another group of the process stopped inside a write: this one does
    // nothing more either, and is crashed with it once the event ends.
    void stop() { dead_ = true; }
    bool stopped() const { return dead_; }
    // The node crashes at its next synchronous write, or the one after it
    // (skip_writes = 1): before the write reaches the disk, or after
    // (write_first).  Until then it runs as usual.
    void arm_crash(int skip_writes, bool write_first);
    bool crash_armed() const { return crash_skip_ >= 0; }

private:
    struct Gated {
        std::uint64_t barrier_op;  // send once the WAL completed this operation
        raft::Message message;
    };

    void pay_ticks();
    void drain();
    void process(raft::Actions a);
    std::optional<std::string> adopt_snapshot(const raft::SnapshotMeta& meta);
    bool install_snapshot(const raft::SnapshotMeta& meta, const std::string& data);
    bool save_hard_state(const raft::HardState& hs);
    // Runs a synchronous write unless an armed crash lands on it; returns
    // false if the node stopped there.
    bool sync_write(const std::function<void()>& write, const char* what);
    void persist(std::vector<raft::Entry> entries, raft::WriteId write);
    void report_durable(const DiskOp& op);
    void finish_snapshot(const DiskOp& op);
    void apply(const std::vector<raft::Entry>& committed);
    void send_or_gate(raft::Message m, std::uint64_t barrier_op);
    void send_now(const raft::Message& m);
    void release_gated();
    void serve_reads();
    void submit(DiskOp op);
    void schedule_completion(const DiskOp& op);

    NodeHost& host_;
    SimDisk& disk_;
    const SwarmParams& params_;
    raft::Core core_;
    std::uint64_t incarnation_;
    Bug bug_;
    bool tick_always_;
    bool lazy_ticks_;
    std::uint64_t ticks_owed_ = 0;  // lazy_ticks: ticks held back
    Rng rng_;

    ValueLog state_;
    // The term and configuration of the last applied entry (the runtime's
    // apply thread knows them too): what its own snapshots record.
    raft::Term applied_term_ = 0;
    raft::Configuration applied_config_;
    bool snapshot_writing_ = false;                                     // one at a time
    std::map<std::pair<raft::Index, raft::Term>, std::string> staged_;  // received snapshot data
    raft::HardState hard_state_;  // the core's latest (the runtime's DurabilityGate::hard_state)
    std::deque<Gated> gated_;
    std::vector<std::pair<std::uint64_t, raft::Index>> pending_reads_;  // (request id, read index)
    int crash_skip_ = -1;  // arm_crash: synchronous writes to let through first (-1: none)
    bool crash_write_first_ = false;
    bool dead_ = false;  // stopped inside a write: does nothing more
};

}  // namespace keel::sim
