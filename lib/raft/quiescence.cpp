// raft/quiescence.cpp — idle groups that cost nothing (Options::quiesce;
// docs/groups.md, "Quiescence and liveness").  A leader that has nothing to
// tell its followers stops heartbeating and they stop their election
// timers; the host's per-process liveness (peer_down) stands in for the
// heartbeats.  Only timers change here: every rule of Figure 2 runs as
// before on whatever messages arrive, so no interleaving of quiescence with
// faults can break safety; the lease (lease_reads) is the one clock-based
// promise, and a leader drops it when it quiesces.
#include "keel/assert.hpp"
#include "raft/state.hpp"

namespace keel::raft {

// A leader may quiesce when nothing is under way and nothing is owed: its
// whole log is of its term, durable, committed and applied, no read,
// transfer or batch is pending, and every follower (learners too) has
// acknowledged the whole log, has nothing in flight, and has answered since
// this leader last woke (so one that went down and was reported by
// peer_down keeps the group awake, and CheckQuorum running, until it is
// back).  CockroachDB's shouldReplicaQuiesce asks much the same.
bool Core::State::may_quiesce() const {
    if (!opt.quiesce || role != Role::leader || progress.empty()) return false;
    if (!lead.term_durable || leadership_transfer.target != kNoNode ||
        reads.pending_read_count != 0 || lead.appends_pending || lead.commit_news_pending ||
        out.snapshot_wanted)
        return false;
    const Index last = log.last_index();
    if (log.term_at(last) != term || log.committed() != last || log.persisted() != last ||
        log.applied() != last)
        return false;
    for (const auto& [id, pr] : progress) {
        if (pr.match != last || pr.state != Progress::State::replicate ||
            pr.inflights.count() != 0 || !pr.heard_since_wake)
            return false;
    }
    return true;
}

void Core::State::maybe_quiesce() {
    if (!may_quiesce()) {
        quiet.quiet_ticks = 0;
        return;
    }
    if (++quiet.quiet_ticks >= opt.quiesce_after_ticks) quiesce();
}

// The last heartbeat names the leader's last entry: a follower quiesces only
// if it holds that entry (and so, by Log Matching, the whole log), and
// learns from it that all of it is committed.  A follower that does not
// answers as to any heartbeat, which wakes the leader.  Nobody answers a
// follower that obeys: its answer would only wake the leader again.
void Core::State::quiesce() {
    KEEL_ASSERT(role == Role::leader && !quiet.quiescent, "only an awake leader quiesces");
    quiet.quiescent = true;
    quiet.quiet_ticks = 0;
    const Index last = log.last_index();
    const Term last_term = *log.term_at(last);
    const std::uint64_t seq = ++reads.heartbeat_seq;
    quiet.quiesce_seq = seq;
    for (auto& [id, pr] : progress) {
        pr.commit_sent = std::max(pr.commit_sent, log.committed());
        send(Message{.type = MessageType::heartbeat,
                     .to = id,
                     .log_index = last,
                     .log_term = last_term,
                     .commit = log.committed(),
                     .index = stored_everywhere_to_send(log.committed()),
                     .context = seq,
                     .quiesce = true});
    }
    // The lease is dated in this leader's ticks, which stop now while its
    // followers' clocks may run on (woken by peer_down): no heartbeat sent
    // so far, this one included, may support a lease after it wakes.
    reads.heartbeats_sent.clear();
    for (auto& [id, pr] : progress) pr.acked_heartbeat_tick = Progress::kNeverTick;
}

void Core::State::wake() {
    if (!quiet.quiescent) return;
    quiet.quiescent = false;
    quiet.quiet_ticks = 0;
    clocks.election_elapsed_ticks = 0;
    clocks.heartbeat_elapsed_ticks = 0;
    if (role != Role::leader) return;
    // CheckQuorum starts afresh: what followers said before the quiet
    // spell says nothing of now.  Heartbeats resume at the next tick.
    for (auto& [id, pr] : progress) {
        pr.recent_active = false;
        pr.heard_since_wake = false;
    }
}

// Answers to what this leader sent before it quiesced may arrive late (links
// reorder): they are no news and must not wake it, or a group on a jittery
// network would quiesce and wake forever.  News is a vote or pre-vote (a
// member's timer ran out), an answer to the quiesce heartbeat (a follower
// that declined it), a rejected append of the follower's current phase, or
// anything of a later term.
bool Core::State::wakes_leader(const Message& m) const {
    if (m.term > term) return true;
    switch (m.type) {
        case MessageType::heartbeat_response:
            // Context 0: a follower that may not campaign asks for a heartbeat.
            return m.context == 0 || m.context >= quiet.quiesce_seq;
        case MessageType::append_response: {
            auto it = progress.find(m.from);
            return m.reject && it != progress.end() && m.context == it->second.phase;
        }
        default:
            return true;
    }
}

// From the leader this follower quiesced under (same term: a later one
// resets quiescence), ending at or before the entry it quiesced at and
// committing nothing more: a copy that the network held back.  The
// leader's log only grows within its term, so the follower has all of it.
bool Core::State::stale_append(const Message& m) const {
    return quiet.quiescent && m.type == MessageType::append &&
           m.log_index + m.entries.size() <= quiet.quiesce_index && m.commit <= log.committed();
}

// A learner (or any follower that may not campaign) never sends a vote
// request, which is how a voter that missed the quiesce heartbeat wakes its
// leader.  Once its election timer runs out it asks for a heartbeat instead,
// with an answer of context 0 (quiescent leaders wake on it; awake ones
// ignore it).  Only with quiescence on: otherwise it waits, as before.
void Core::State::poke_quiet_leader() {
    if (!opt.quiesce || leader == kNoNode || role != Role::follower || !config().contains(opt.id))
        return;
    send(Message{.type = MessageType::heartbeat_response, .to = leader, .context = 0});
}

bool Core::State::accept_quiesce(const Message& m) const {
    return opt.quiesce && m.quiesce && log.last_index() == m.log_index &&
           log.matches(m.log_index, m.log_term) && m.commit == m.log_index;
}

void Core::State::peer_down(NodeId peer) {
    if (peer == kNoNode || peer == opt.id) return;
    if (role == Role::leader) {
        auto it = progress.find(peer);
        if (it == progress.end()) return;
        wake();
        it->second.heard_since_wake = false;
        return;
    }
    if (!quiet.quiescent || leader != peer) return;
    wake();
    // With lease reads this node promised its leader not to vote for
    // election_ticks_min of its ticks after the last contact (read_index.cpp);
    // its clock stood still while quiescent, so the promise may still run:
    // the election timer (reset by wake) campaigns once it has.
    if (opt.lease_reads && clocks.ticks_since_leader_contact < opt.election_ticks_min) return;
    // Every follower of the group hears a verdict at about the same time:
    // their pre-votes cross, and the tie rule of election.cpp
    // (crossing_pre_vote_lost) keeps them from splitting the vote
    // (decision 0039).
    if (may_campaign()) campaign(opt.pre_vote, /*transfer=*/false);
}

}  // namespace keel::raft
