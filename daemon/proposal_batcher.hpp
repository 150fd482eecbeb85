// daemon/proposal_batcher.hpp — the proposals an HTTP thread makes while it
// handles the requests one wakeup brought in, handed to keel together
// (Node::propose_batch_async) once those handlers have run: one batch per
// Raft group (raftd --groups: each key's group, kv_shards.hpp).
//
// Why: on a leader, each proposal that reaches the core alone is an append
// to every follower (a send, and on the follower a receive, a step and an
// acknowledgement); the requests of 64 connections arrive in bursts, one
// burst per commit.  Gathered, a burst is one append per follower.  A lone
// request waits for nothing: its handler is the only one ready, and the
// hand-off runs right after it on the same thread.
//
// Threads: propose() from any thread.  On a thread for which `defer` queues
// work (an HTTP server thread: HttpServer::post_after_ready), proposals are
// gathered per thread; on any other, each is submitted at once.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "keel/assert.hpp"
#include "keel/node.hpp"

namespace keel::daemon {

class ProposalBatcher : public std::enable_shared_from_this<ProposalBatcher> {
public:
    // `defer(work)`: queues `work` to run later on the calling thread, after
    // the handlers ready now, and returns true; false on a thread that
    // cannot (nothing queued).
    using Defer = std::function<bool(std::function<void()>)>;
    // One group: `node`.
    ProposalBatcher(Node& node, Defer defer);
    // Several: `groups[g]` is group index g's node.  REQUIRES: non-empty; the
    // nodes outlive the batcher.
    ProposalBatcher(std::vector<Node*> groups, Defer defer);

    // As Node::propose_async to group index `group` (0 with one group);
    // `done` runs where keel completes the proposal.  REQUIRES: group <
    // the number of groups.
    void propose(SharedBytes data, std::function<void(ProposeResult)> done) {
        propose(0, std::move(data), std::move(done));
    }
    void propose(std::size_t group, SharedBytes data, std::function<void(ProposeResult)> done);

private:
    // The calling thread's gathered proposals to keel, a batch per group.
    void flush();

    std::vector<Node*> groups_;
    Defer defer_;
};

}  // namespace keel::daemon
