// raft/transfer.cpp — leadership transfer (dissertation §3.10): the leader
// stops accepting proposals, brings the target's log up to date, then sends
// it timeout_now; the target campaigns at once, bypassing PreVote and leader
// stickiness.  Aborted if it has not happened within an election timeout.
#include "keel/assert.hpp"
#include "raft/state.hpp"
#include "raft/str_cat.hpp"

namespace keel::raft {

Status Core::State::transfer_leadership(NodeId target) {
    if (role != Role::leader) return not_leader_status();
    if (target == opt.id) return {ErrorCode::invalid_argument, "already the leader"};
    if (!config().is_voter(target)) {
        return {ErrorCode::invalid_argument,
                str_cat("transfer target ", target, " is not a voter")};
    }
    if (leadership_transfer.target == target) return {};
    leadership_transfer.target = target;
    // Aborted after election_ticks_min ticks (tick_leader).  Its own clock:
    // restarting CheckQuorum's instead (as etcd does) lets a leader cut off
    // from its quorum stay leader as long as transfers keep being asked of it.
    leadership_transfer.elapsed_ticks = 0;
    maybe_send_timeout_now(target);
    return {};
}

void Core::State::maybe_send_timeout_now(NodeId to) {
    auto it = progress.find(to);
    KEEL_ASSERT(it != progress.end(), "the transfer target is a member");
    if (it->second.match == log.last_index()) {
        leadership_transfer.lease_forfeited = true;  // before the message can leave
        send(Message{.type = MessageType::timeout_now, .to = to});
    } else {
        send_append(to, /*send_if_empty=*/true);
    }
}

void Core::State::abort_transfer() {
    leadership_transfer.target = kNoNode;
}

}  // namespace keel::raft
