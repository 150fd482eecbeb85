// raft/peer_progress.hpp — what a leader reports about replication to each
// member (Core::progress()), for status pages and metrics.  A read-only copy
// of the leader's bookkeeping (progress.hpp); changing it changes nothing.
#pragma once

#include <cstdint>

#include "raft/types.hpp"

namespace keel::raft {

// How the leader replicates to a follower (progress.hpp says what each means).
enum class ProgressState : std::uint8_t { probe, replicate, snapshot };

const char* progress_state_name(ProgressState state);

struct PeerProgress {
    NodeId id = kNoNode;
    // A voter of the leader's latest configuration: its match counts toward
    // the commit quorum.  False for learners, for a member whose removal is
    // not yet committed, and for a leader that is removing itself.
    bool voter = false;
    // The highest index known to be in this member's log (and durable there:
    // followers acknowledge only durable entries).  For the leader itself, its
    // persisted index — what its own vote in the commit quorum counts.
    Index match = 0;
    // The next index the leader will send it.  For the leader itself, the
    // index its next proposal would get (last index + 1).
    Index next = 0;
    // The leader itself is always `replicate`.
    ProgressState state = ProgressState::probe;

    friend bool operator==(const PeerProgress&, const PeerProgress&) = default;
};

}  // namespace keel::raft
