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
    if (!term_durable || transfer_target != kNoNode || pending_read_count != 0 || appends_pending ||
        commit_news_pending || snapshot_wanted)
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
        quiet_ticks = 0;
        return;
    }
    if (++quiet_ticks >= opt.quiesce_after_ticks) quiesce();
}

// The last heartbeat names the leader's last entry: a follower quiesces only
// if it holds that entry (and so, by Log Matching, the whole log), and
// learns from it that all of it is committed.  A follower that does not
// answers as to any heartbeat, which wakes the leader.  Nobody answers a
// follower that obeys: its answer would only wake the leader again.
void Core::State::quiesce() {
    KEEL_ASSERT(role == Role::leader && !quiescent, "only an awake leader quiesces");
    quiescent = true;
    quiet_ticks = 0;
    const Index last = log.last_index();
    const Term last_term = *log.term_at(last);
    const std::uint64_t seq = ++heartbeat_seq;
    for (auto& [id, pr] : progress) {
        pr.commit_sent = std::max(pr.commit_sent, log.committed());
        send(Message{.type = MessageType::heartbeat,
                     .to = id,
                     .log_index = last,
                     .log_term = last_term,
                     .commit = log.committed(),
                     .context = seq,
                     .quiesce = true});
    }
    // The lease is dated in this leader's ticks, which stop now while its
    // followers' clocks may run on (woken by peer_down): no heartbeat sent
    // so far, this one included, may support a lease after it wakes.
    heartbeats_sent.clear();
    for (auto& [id, pr] : progress) pr.acked_heartbeat_tick = Progress::kNeverTick;
}

void Core::State::wake() {
    if (!quiescent) return;
    quiescent = false;
    quiet_ticks = 0;
    election_elapsed_ticks = 0;
    heartbeat_elapsed_ticks = 0;
    if (role != Role::leader) return;
    // CheckQuorum starts afresh: what followers said before the quiet
    // spell says nothing of now.  Heartbeats resume at the next tick.
    for (auto& [id, pr] : progress) {
        pr.recent_active = false;
        pr.heard_since_wake = false;
    }
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
    if (!quiescent || leader != peer) return;
    wake();
    // With lease reads this node promised its leader not to vote for
    // election_ticks_min of its ticks after the last contact (read_index.cpp);
    // its clock stood still while quiescent, so the promise may still run:
    // the election timer (reset by wake) campaigns once it has.
    if (opt.lease_reads && ticks_since_leader_contact < opt.election_ticks_min) return;
    if (may_campaign()) campaign(opt.pre_vote, /*transfer=*/false);
}

}  // namespace keel::raft
