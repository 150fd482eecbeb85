// keel/node.hpp — a replicated state machine node: the library's entry point.
//
//   auto node = keel::Node::open(options, std::make_shared<MyStateMachine>());
//   auto result = node.value()->propose("set x 1").get();   // durable, committed, applied
//
// A Node owns one Raft core, a WAL-backed log, a TCP transport and the
// application's StateMachine.  Threading model (docs/runtime.md):
//   - the Raft core runs on whichever thread brings an input, under a lock:
//     every public call below is thread-safe and does its part of the work
//     on the calling thread (a proposal is appended to the WAL by it);
//   - the WAL's flusher thread writes and fdatasyncs batches (group commit)
//     and commits what each batch made durable (a follower's I/O thread
//     writes the small batches a leader's message brings itself);
//   - one apply thread applies committed entries and completes proposals'
//     callbacks and futures (small batches are applied by the thread that
//     committed them, one at a time with the apply thread: the flusher in
//     single-node mode, the I/O thread in a cluster; see state_machine.hpp);
//   - one I/O thread (an asio::io_context) runs the transport and the timer;
//   - a background thread writes snapshots and deletes compacted segments.
// Callbacks passed to the *_async functions must not block and must not call
// stop(); they may call the other functions of this Node.  Where they run:
// proposals and membership changes complete on the thread that applied the
// entry (the apply thread, the WAL flusher or the I/O thread); a call
// refused up front (busy, too_large, not_leader, aborted) completes on the
// calling thread or on a keel thread (with NodeOptions::observer, a refusal
// the Raft core decides completes on the event thread, after the events
// queued before it: keel/observer.hpp); snapshot_async
// completes on the background thread; reads and leadership transfers complete
// on the keel thread that brought the deciding input (often the I/O thread).
//
// Single-node mode: while this node is the only member, no timer is armed;
// a proposal is appended, and the moment its fsync completes it is committed,
// applied and answered.  Nothing is applied or acknowledged before it is on
// disk.  Adding a member switches to cluster mode online.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "keel/options.hpp"
#include "keel/shared_bytes.hpp"
#include "keel/snapshot_file.hpp"
#include "keel/state_machine.hpp"
#include "keel/status.hpp"
#include "keel/status_report.hpp"

namespace keel {

struct ProposeResult {
    Status status;            // ok, or not_leader / busy / too_large / aborted / failed
    std::uint64_t index = 0;  // log index of the applied entry (when ok)
    std::string result;       // what StateMachine::apply wrote for this entry
    NodeId leader_hint = 0;   // with not_leader: the leader if known, else 0
};

struct ReadResult {
    Status status;  // ok, or not_leader / busy / aborted / timeout
    std::uint64_t read_index = 0;
    NodeId leader_hint = 0;
};

class Node {
public:
    // Create (first start: bootstrap from options) or reopen (data_dir holds
    // state: recover hard state, snapshot and log; the state machine is
    // restored from the snapshot and the log re-applied).
    static Result<std::unique_ptr<Node>> open(const NodeOptions& options,
                                              std::shared_ptr<StateMachine> state_machine);
    virtual ~Node() = default;

    // Replicate `data`; completes once it is applied on this node (so the
    // result reflects it).  Fails fast with not_leader on a follower.
    // A std::string or string literal converts to SharedBytes, copied once
    // into the one buffer that keel's log, WAL queue and apply then share.
    virtual void propose_async(SharedBytes data, std::function<void(ProposeResult)> done) = 0;
    std::future<ProposeResult> propose(SharedBytes data);
    // Several proposals at once, each as propose_async (in this order, each
    // completing through its own `done`), handed to the core together: on
    // a leader they share one append to each follower and one WAL write,
    // where proposals submitted one by one from a busy thread each cost a
    // message to every follower.  For a server that gathers the requests
    // one wakeup brought in.  The default submits them one by one.
    struct Proposal {
        SharedBytes data;
        std::function<void(ProposeResult)> done;
    };
    virtual void propose_batch_async(std::vector<Proposal> proposals) {
        for (Proposal& p : proposals) propose_async(std::move(p.data), std::move(p.done));
    }

    // Linearizable read barrier (ReadIndex): completes with the read index
    // once leadership is confirmed.  wait_applied=true additionally waits
    // until this node has applied that index, so the local state machine may
    // then be read and reflects every write acknowledged before the call.
    virtual void read_index_async(bool wait_applied, std::function<void(ReadResult)> done) = 0;
    std::future<ReadResult> read_index(bool wait_applied = true);

    // Membership (leader only; one change at a time).  Completes once the
    // change is committed and applied here.  add_member adds a voter when
    // member.voter, else a learner (add a learner, let it catch up, then
    // promote it, so the quorum never waits for an empty log).  A node being
    // added should be opened with join=true.
    virtual void add_member_async(const MemberSpec& member, std::function<void(Status)> done) = 0;
    virtual void promote_member_async(NodeId id, std::function<void(Status)> done) = 0;
    virtual void remove_member_async(NodeId id, std::function<void(Status)> done) = 0;
    virtual void transfer_leadership_async(NodeId to, std::function<void(Status)> done) = 0;
    // Take a state machine snapshot now and compact the log behind it; it
    // is durable when `done` runs (automatic snapshots are flushed later:
    // docs/runtime.md, "Snapshots and compaction").
    virtual void snapshot_async(std::function<void(Status)> done) = 0;
    // The latest snapshot this node holds, as a file to copy off it: a
    // backup (keel/snapshot_file.hpp; restore_data_dir builds a new cluster
    // from it).  not_found before the node has any (take one with
    // snapshot_async).  Callable from any thread; reading it blocks on the
    // disk, so read it off keel's threads.
    virtual Result<std::unique_ptr<SnapshotFileSource>> open_latest_snapshot() = 0;

    std::future<Status> add_member(const MemberSpec& member);
    std::future<Status> promote_member(NodeId id);
    std::future<Status> remove_member(NodeId id);
    std::future<Status> transfer_leadership(NodeId to);
    std::future<Status> snapshot_now();

    // A snapshot of the node's state, published after each batch of Raft
    // output.  Cheap and callable from any thread, callbacks included: it
    // never waits for the Raft core.
    virtual NodeStatus status() const = 0;
    // The member spec of `id` in the current configuration (e.g. to redirect
    // clients to the leader); not_found if unknown.
    virtual Result<MemberSpec> member(NodeId id) const = 0;

    // Stop: stop accepting, fail pending calls with aborted, stop threads,
    // close the WAL cleanly.  If this node leads a cluster and
    // transfer_leadership_first, hand leadership to the most caught-up voter
    // first (bounded wait).  Idempotent; the destructor calls stop(false).
    virtual void stop(bool transfer_leadership_first = false) = 0;
};

}  // namespace keel
