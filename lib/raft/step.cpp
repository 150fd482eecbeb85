// raft/step.cpp — the receipt of a message: its fields and its sender
// checked (admission.cpp), the term rules of Figure 2, then dispatch by role
// to the receivers in election.cpp, replication.cpp and snapshot.cpp.
#include <algorithm>

#include "raft/state.hpp"

namespace keel::raft {

bool from_leader(const Message& m) {
    return m.type == MessageType::append || m.type == MessageType::heartbeat ||
           m.type == MessageType::snapshot || m.type == MessageType::timeout_now;
}

Status Core::State::step(const Message& m) {
    Status st = step_message(m);
    // A lone voter deposed by a higher term (from a removed member that does
    // not know it yet) is never ticked (needs_ticks() is false): it must take
    // leadership back now, or nothing would ever wake it.
    maybe_campaign_alone();
    return st;
}

Status Core::State::step_message(const Message& m) {
    // Fields first, then the sender (admission.cpp): a refused message
    // touches nothing.
    if (Status st = validate_message(m, opt.id); !st.ok()) return st;
    if (Status st = admit(m); !st.ok()) return st;
    // A quiescent leader hears from a member that is not quiescent (one
    // that declined the quiesce heartbeat, restarted, or campaigns): it
    // wakes and heartbeats again.  A follower wakes in step_follower, or on
    // a change of term (reset).
    if (quiet.quiescent && role == Role::leader && m.term >= term && wakes_leader(m)) wake();
    // A quiescent follower asked for its vote by the very node it follows:
    // that node no longer leads (it restarted, or stepped down), so the
    // election timer must run again, whatever the host's liveness says.
    const bool vote_request = m.type == MessageType::vote || m.type == MessageType::pre_vote;
    if (quiet.quiescent && role != Role::leader && vote_request && m.from == leader) wake();
    bool handled = false;
    Status st = step_by_term(m, handled);
    if (handled) return st;
    if (m.type == MessageType::vote || m.type == MessageType::pre_vote) {
        handle_vote_request(m);
        return {};
    }
    switch (role) {
        case Role::follower:
            step_follower(m);
            break;
        case Role::pre_candidate:
        case Role::candidate:
            step_candidate(m);
            break;
        case Role::leader:
            return step_leader(m);
    }
    return {};
}

// Figure 2, "Rules for all servers": "If RPC request or response contains
// term T > currentTerm: set currentTerm = T, convert to follower."  With the
// PreVote and leader-stickiness exceptions of dissertation §9.6.
Status Core::State::step_by_term(const Message& m, bool& handled) {
    bool vote_request = m.type == MessageType::vote || m.type == MessageType::pre_vote;
    if (m.term > term) {
        if (vote_request) {
            // Leader stickiness: we heard from a live leader within the minimum
            // election timeout, so ignore the (pre-)vote unless a transfer asks.
            bool in_lease = opt.check_quorum && leader != kNoNode &&
                            clocks.election_elapsed_ticks < opt.election_ticks_min;
            // With lease reads, the promise behind a leader's lease: no vote
            // within election_ticks_min ticks of acknowledging it, whatever
            // happened since (a restart, a higher term seen; read_index.cpp).
            if (opt.lease_reads && clocks.ticks_since_leader_contact < opt.election_ticks_min)
                in_lease = true;
            if (in_lease && !m.transfer) {
                handled = true;
                return {ErrorCode::aborted, "vote request ignored: a leader is in its lease"};
            }
        }
        bool no_term_change = m.type == MessageType::pre_vote ||
                              (m.type == MessageType::pre_vote_response && !m.reject);
        if (!no_term_change) become_follower(m.term, from_leader(m) ? m.from : kNoNode);
        return {};
    }
    if (m.term < term) {
        handled = true;
        if (m.type == MessageType::append || m.type == MessageType::heartbeat) {
            // Figure 2, AppendEntries receiver: "Reply false if term <
            // currentTerm" (the reply carries our term): a stale leader, e.g.
            // back from a partition, learns it and steps down.  etcd answers
            // only with CheckQuorum or PreVote on, counting on the node with
            // the higher term to campaign otherwise; but a member that does
            // not know it is one (its log predates its addition) never
            // campaigns, and was cut off for good: seed 204075 of
            // `keel_sim --nodes 3 --membership`, both options off, where a
            // failed candidate's vote request had taken it one term ahead.
            send(Message{.type = MessageType::append_response, .to = m.from});
        } else if (vote_request) {
            // Figure 2, RequestVote receiver: "Reply false if term < currentTerm."
            auto reply = m.type == MessageType::vote ? MessageType::vote_response
                                                     : MessageType::pre_vote_response;
            send(Message{.type = reply, .to = m.from, .reject = true});
        }
        return {ErrorCode::aborted, "message from an older term"};
    }
    return {};
}

void Core::State::step_follower(const Message& m) {
    switch (m.type) {
        case MessageType::append:
        case MessageType::heartbeat:
        case MessageType::snapshot:
            clocks.election_elapsed_ticks = 0;
            clocks.ticks_since_leader_contact = 0;
            leader = m.from;
            heard_leader();
            // What the leader counted stored everywhere (forgetting.cpp).
            if (m.type != MessageType::snapshot)
                compaction.stored_everywhere = std::max(compaction.stored_everywhere, m.index);
            // handle_heartbeat decides for heartbeats; a late copy of an
            // append this follower had before it quiesced is no news either.
            if (m.type != MessageType::heartbeat && !stale_append(m)) wake();
            if (m.type == MessageType::append) handle_append(m);
            if (m.type == MessageType::heartbeat) handle_heartbeat(m);
            if (m.type == MessageType::snapshot) handle_snapshot(m);
            break;
        case MessageType::timeout_now:
            wake();
            // A learner (or a removed node) never campaigns.
            if (may_campaign()) campaign(/*pre=*/false, /*transfer=*/true);
            break;
        default:
            break;  // responses to a role we no longer hold
    }
}

void Core::State::step_candidate(const Message& m) {
    switch (m.type) {
        case MessageType::append:
        case MessageType::heartbeat:
        case MessageType::snapshot:
            // Figure 2, Candidates: "If AppendEntries RPC received from new
            // leader: convert to follower."
            become_follower(term, m.from);
            step_follower(m);
            break;
        case MessageType::vote_response:
        case MessageType::pre_vote_response:
            handle_vote_response(m);
            break;
        default:
            break;
    }
}

Status Core::State::step_leader(const Message& m) {
    switch (m.type) {
        case MessageType::append_response:
            return handle_append_response(m);
        case MessageType::heartbeat_response:
            handle_heartbeat_response(m);
            break;
        default:
            break;  // at most one leader per term: nothing else concerns us
    }
    return {};
}

}  // namespace keel::raft
