// raft/replication.cpp — log replication and commitment (Raft §5.3, §5.4.2),
// with etcd-style flow control (progress.hpp) and fast backtracking.
#include <algorithm>
#include <utility>

#include "keel/assert.hpp"
#include "raft/quorum.hpp"
#include "raft/refusal.hpp"
#include "raft/state.hpp"
#include "raft/str_cat.hpp"

namespace keel::raft {

// Leader: send `to` the entries it lacks (or, if they were compacted away,
// the snapshot).  Returns false if nothing was sent: paused by flow control,
// or nothing to send and !send_if_empty.
bool Core::State::send_append(NodeId to, bool send_if_empty) {
    auto it = progress.find(to);
    if (it == progress.end()) return false;
    Progress& pr = it->second;
    if (pr.is_paused()) return false;
    KEEL_ASSERT(pr.next <= log.last_index() + 1, "progress.next beyond the leader's log");
    Index prev_index = pr.next - 1;
    std::optional<Term> prev_term = log.term_at(prev_index);
    if (!prev_term) return send_snapshot(to, pr);
    std::vector<Entry> entries;
    if (pr.next <= log.last_index()) {
        entries = log.slice(pr.next, log.last_index() + 1, opt.max_message_bytes);
    }
    if (entries.empty() && !send_if_empty) return false;
    if (!entries.empty() && pr.state == Progress::State::replicate) {
        pr.optimistic_update(entries.back().index);
        pr.inflights.add(entries.back().index);
    }
    if (pr.state == Progress::State::probe) pr.probe_sent = true;
    pr.append_since_heartbeat = true;
    pr.commit_sent = std::max(pr.commit_sent, log.committed());
    send(Message{.type = MessageType::append,
                 .to = to,
                 .log_index = prev_index,
                 .log_term = *prev_term,
                 .commit = log.committed(),
                 .entries = std::move(entries),
                 .index = stored_everywhere_to_send(log.committed()),
                 .context = pr.phase});
    return true;
}

void Core::State::broadcast_append() {
    for (auto& [id, pr] : progress) send_append(id, /*send_if_empty=*/true);
}

// A heartbeat to every follower, all with one new sequence number (a
// ReadIndex round starts with one: read_index.cpp).
std::uint64_t Core::State::broadcast_heartbeat() {
    const std::uint64_t seq = next_heartbeat_seq();
    for (auto& [id, pr] : progress) send_heartbeat(id, pr, seq);
    return seq;
}

std::uint64_t Core::State::next_heartbeat_seq() {
    const std::uint64_t seq = ++reads.heartbeat_seq;
    reads.heartbeats_sent.push_back(HeartbeatSent{seq, clocks.ticks});
    // Only heartbeats sent within the last election timeout can still
    // support a lease; older ones are forgotten (their acks then count for
    // ReadIndex rounds only).
    while (reads.heartbeats_sent.front().tick < clocks.ticks - opt.election_ticks_min)
        reads.heartbeats_sent.pop_front();
    return seq;
}

void Core::State::send_heartbeat(NodeId to, Progress& pr, std::uint64_t seq) {
    // Never tell a follower to commit past what it is known to hold.
    const Index commit = std::min(pr.match, log.committed());
    pr.commit_sent = std::max(pr.commit_sent, commit);
    send(Message{.type = MessageType::heartbeat,
                 .to = to,
                 .commit = commit,
                 .index = stored_everywhere_to_send(commit),
                 .context = seq});
}

// Figure 2, Leaders: "send initial empty AppendEntries RPCs (heartbeat) to
// each server; repeat during idle periods to prevent election timeouts".  A
// follower this leader sent an append since its last heartbeat tick is not
// idle: the append reset its election timer.  It is heartbeaten anyway when
// the heartbeat would tell it more than the append did, or when its answer
// is needed: heartbeat_needed.  Why: docs/decisions/0036.
void Core::State::tick_heartbeat() {
    std::uint64_t seq = 0;  // taken only if a heartbeat that wants an answer leaves
    for (auto& [id, pr] : progress) {
        if (heartbeat_needed(pr)) {
            if (!heartbeat_answer_needed(pr)) {
                send_heartbeat(id, pr, kCommitNoticeContext);
            } else {
                if (seq == 0) seq = next_heartbeat_seq();
                send_heartbeat(id, pr, seq);
            }
        }
        pr.end_heartbeat_interval();
    }
}

// A heartbeat that only keeps a follower's election timer from running
// out goes unanswered, as a commit notice does (context
// kCommitNoticeContext, handle_heartbeat): its answer would tell this
// leader nothing it uses (docs/decisions/0049).  The answer is what
// handle_heartbeat_response acts on, and each use keeps it:
//   - CheckQuorum counts a follower heard from since the last check
//     (recent_active): until it has been, its heartbeats are answered, so
//     every check still sees an answer of its own period, as before;
//   - ReadIndex rounds and the lease count heartbeat acknowledgements:
//     while a round waits, or with lease_reads, every heartbeat is answered;
//   - the answer frees a slot of a full window, re-probes, and re-sends to
//     a follower that lags: answered unless the follower is replicating
//     and has acknowledged the whole log (so nothing is in flight to it).
bool Core::State::heartbeat_answer_needed(const Progress& pr) const {
    if (opt.lease_reads || !reads.read_rounds.empty()) return true;
    return !pr.recent_active || pr.state != Progress::State::replicate ||
           pr.match < log.last_index();
}

// What a heartbeat does besides resetting the follower's election timer,
// and why an append since the last heartbeat tick stands in for each:
//   - it tells the commit index: unless this follower was told as much
//     already (commit_sent), the heartbeat goes (what is stored everywhere
//     it may learn a tick later, from the next append or heartbeat: it only
//     lets a follower drop entries from memory sooner);
//   - its answer counts for CheckQuorum (recent_active): so do the answers
//     to appends, but they wait for the follower's disk; until it answered
//     since the last check, it is heartbeaten as before;
//   - its answer confirms ReadIndex rounds and dates the lease
//     (read_index.cpp), which count heartbeat acknowledgements only: while
//     a round waits, or with lease_reads, every follower is heartbeaten;
//   - its answer frees a slot of a full window, re-probes a follower whose
//     probe went unanswered and re-sends to one that lags
//     (handle_heartbeat_response): a follower paused by flow control was
//     sent no append, and one not in replicate state is heartbeaten.
// At most one tick passes without a message from this leader to a
// follower beyond what an idle one sees: a follower's timer never runs
// out for it.
bool Core::State::heartbeat_needed(const Progress& pr) const {
    if (!pr.append_since_heartbeat || !pr.recent_active || pr.state != Progress::State::replicate ||
        opt.lease_reads || !reads.read_rounds.empty())
        return true;
    return pr.commit_sent < std::min(pr.match, log.committed());
}

// Figure 2, Leaders: "If command received from client: append entry to local
// log, respond after entry applied to state machine."  The leader's append is
// handed to the runtime and replicated in parallel; it counts toward the
// commit quorum once on_persisted() says it is durable.
//
// The entry goes to the followers when the batch is taken (take_actions ->
// send_pending_appends, below), not here: a burst of proposals between two batches
// leaves as one append message per follower, not one per proposal.  Each
// message costs the follower a step, a WAL write and an acknowledgement,
// and the leader a step per acknowledgement.
void Core::State::append_own(EntryType type, SharedBytes data) {
    KEEL_ASSERT(role == Role::leader, "only a leader appends its own entries");
    lead.uncommitted_bytes += data.size();
    Entry e{term, log.last_index() + 1, type, std::move(data)};
    if (type == EntryType::config) {
        log.append(e);  // the copy shares the data (SharedBytes)
        if (note_config_entries({e})) on_config_changed();
    } else {
        log.append(std::move(e));  // no reference count to raise and drop again
    }
    lead.appends_pending = true;
}

void Core::State::send_pending_appends() {
    const bool entries = std::exchange(lead.appends_pending, false);
    const bool commit = lead.commit_news_pending;
    const bool commit_due = commit_news_due();
    if (commit_due) lead.commit_news_pending = false;
    // A leader that stepped down before the batch was taken sends nothing:
    // its unsent entries are like lost messages (a later leader repairs its
    // followers' logs), and a commit index is news, never a duty.
    if (role != Role::leader || (!entries && !commit)) return;
    for (auto& [id, pr] : progress) {
        // New entries: as many messages as flow control lets through (a
        // burst over max_message_bytes is pipelined).  A probing follower
        // gets a probe even without entries, as from broadcast_append: a
        // member added by this batch's configuration entry is probed at once.
        const bool probe = pr.state == Progress::State::probe;
        if (entries && send_append(id, /*send_if_empty=*/probe)) {
            while (send_append(id, /*send_if_empty=*/false)) {
            }
        }
        if (!commit || pr.commit_sent >= log.committed()) continue;
        // The new commit index rides on this batch's appends to `id` if
        // there are any.  Raising an append's commit is safe when it was
        // formed in this term: a leader's log only grows within its term, so
        // the entries the follower matches through that append are the
        // leader's, and it commits at most up to them.  (An append from an
        // earlier leadership of this node, deposed and re-elected within one
        // batch, may carry entries since replaced.)
        for (Message& m : out.msgs) {
            if (m.type == MessageType::append && m.to == id && m.term == term) {
                m.commit = log.committed();
                pr.commit_sent = log.committed();
            }
        }
        // Else it goes alone, once due (on_commit_advanced).
        if (pr.commit_sent < log.committed() && commit_due) send_commit_news(id, pr);
    }
}

// The commit index alone, to a follower no append of this batch told
// (docs/decisions/0042):
//   - one that is replicating and holds every committed entry is sent a
//     commit notice: a heartbeat of no ReadIndex round
//     (kCommitNoticeContext), which it does not answer (handle_heartbeat).
//     The empty append sent before was answered, and the answer told the
//     leader nothing: the follower had acknowledged those entries already,
//     it was heard from (recent_active), and no round counts append
//     answers.  Like that append, the notice resets the follower's
//     election timer, so the next heartbeat tick need not
//     (append_since_heartbeat); lost, the next append or heartbeat
//     carries the commit, as for a lost append.
//   - one that is replicating and was sent the committed entries but has
//     not acknowledged them yet (with three voters, the second follower
//     while the first one's answer committed) is sent nothing now: an
//     empty append would be answered after the same disk write as the
//     append on its way.  That append's answer brings the notice
//     (commit_news_after_answer).
//   - any other (probing, or not sent the entries yet) gets the empty
//     append as before, whose answer it may need.
void Core::State::send_commit_news(NodeId to, Progress& pr) {
    if (pr.state == Progress::State::replicate && pr.match >= log.committed()) {
        send_heartbeat(to, pr, kCommitNoticeContext);
        pr.append_since_heartbeat = true;
        return;
    }
    if (pr.state == Progress::State::replicate && pr.next > log.committed()) return;
    send_append(to, /*send_if_empty=*/true);
}

// A follower's answer, once the appends it releases left: if it now holds
// committed entries it was not told are committed, and the news of them
// went out already (none is pending, which send_pending_appends would
// hand out), it gets the notice send_commit_news held back for it.
void Core::State::commit_news_after_answer(NodeId from, Progress& pr) {
    if (lead.commit_news_pending || pr.commit_sent >= std::min(pr.match, log.committed())) return;
    send_commit_news(from, pr);
}

bool Core::State::commit_news_due() const {
    return lead.commit_news_pending && log.applied() >= log.committed();
}

void Core::State::follower_merge(const std::vector<Entry>& entries) {
    Index truncated_at = log.merge(entries);
    bool changed = truncated_at != 0 && configs.truncate_from(truncated_at);
    changed = note_config_entries(entries) || changed;
    if (changed) on_config_changed();
}

// Figure 2, AppendEntries receiver:
//   1. Reply false if term < currentTerm (step_by_term).
//   2. Reply false if log doesn't contain an entry at prevLogIndex whose term
//      matches prevLogTerm.
//   3. If an existing entry conflicts with a new one, delete it and all that
//      follow.  4. Append any new entries not already in the log.
//   5. If leaderCommit > commitIndex, set commitIndex = min(leaderCommit,
//      index of last new entry).
// Success is acknowledged only after the appended entries are durable.
void Core::State::handle_append(const Message& m) {
    if (m.log_index < log.committed()) {
        // Everything up to our commit index already matches the leader's log.
        send_after_persist(Message{.type = MessageType::append_response,
                                   .to = m.from,
                                   .index = log.committed(),
                                   .context = m.context});
        return;
    }
    if (!log.matches(m.log_index, m.log_term)) {
        // Hint: the last index at or below prevLogIndex whose term is <= prevLogTerm,
        // so the leader can skip a whole conflicting term per round trip.
        auto [hint_index, hint_term] =
            log.find_conflict_by_term(std::min(m.log_index, log.last_index()), m.log_term);
        send(Message{.type = MessageType::append_response,
                     .to = m.from,
                     .index = m.log_index,
                     .reject = true,
                     .hint_index = hint_index,
                     .hint_term = hint_term,
                     .context = m.context});  // the leader's phase: see Progress::phase
        return;
    }
    follower_merge(m.entries);
    Index last_new = m.log_index + m.entries.size();
    log.commit_to(std::min(m.commit, last_new));
    send_after_persist(Message{.type = MessageType::append_response,
                               .to = m.from,
                               .index = last_new,
                               .context = m.context});
}

void Core::State::handle_heartbeat(const Message& m) {
    // The leader caps m.commit at our match index, so those entries are ours.
    log.commit_to(std::min(m.commit, log.last_index()));
    if (accept_quiesce(m)) {
        quiet.quiescent = true;  // unanswered: an answer would wake the leader (quiescence.cpp)
        quiet.quiesce_seq = m.context;
        quiet.quiesce_index = m.log_index;
        return;
    }
    // Sent before the quiesce heartbeat this follower obeyed, and overtaken
    // by it: the leader has been quiet since.
    if (quiet.quiescent && m.context < quiet.quiesce_seq) return;
    wake();
    // A commit notice wants no answer (send_commit_news).
    if (m.context == kCommitNoticeContext) return;
    send(Message{.type = MessageType::heartbeat_response, .to = m.from, .context = m.context});
}

Status Core::State::handle_append_response(const Message& m) {
    // Within its term a leader's log only grows, and every prevLogIndex it
    // sent and every index a follower can match lie within it; the
    // follower's hint lies at or below the index it rejected.
    if (m.index > log.last_index())
        return refused(kRefusedIndexOutOfRange, str_cat("append_response for index ", m.index,
                                                        " past the log's ", log.last_index()));
    if (m.reject && m.hint_index > m.index)
        return refused(kRefusedIndexOutOfRange,
                       str_cat("hint ", m.hint_index, " past the rejected index ", m.index));
    auto it = progress.find(m.from);
    if (it == progress.end()) return {};
    Progress& pr = it->second;
    pr.recent_active = true;
    pr.heard_since_wake = true;
    if (m.reject) {
        // A rejection of an append from an earlier phase (Progress::phase)
        // is stale: the state it would correct has already changed.
        if (m.context != pr.phase) return {};
        // Figure 2, Leaders: "If AppendEntries fails because of log
        // inconsistency: decrement nextIndex and retry" — by a whole term at a
        // time using the follower's hint.
        Index next_probe = m.hint_index;
        if (m.hint_term > 0)
            next_probe = log.find_conflict_by_term(m.hint_index, m.hint_term).first;
        if (pr.maybe_decrease_to(m.index, next_probe)) {
            if (pr.state == Progress::State::replicate) pr.become_probe();
            send_append(m.from, /*send_if_empty=*/true);
        }
        return {};
    }
    if (!pr.maybe_update(m.index)) {
        // The answer to a probe that found the follower where we thought it
        // was: start pipelining.  Anything else is stale or a duplicate.
        if (pr.state != Progress::State::probe || pr.match != m.index) return {};
    }
    switch (pr.state) {
        case Progress::State::probe:
            pr.become_replicate();
            break;
        case Progress::State::snapshot:
            if (pr.match >= pr.pending_snapshot) {
                pr.become_probe();
                pr.become_replicate();
            }
            break;
        case Progress::State::replicate:
            pr.inflights.free_up_to(m.index);
            break;
    }
    maybe_commit();
    if (role != Role::leader) return {};  // a removed leader stepped down
    raise_stored_everywhere();            // the appends below tell it
    while (send_append(m.from, /*send_if_empty=*/false)) {
    }
    commit_news_after_answer(m.from, pr);
    if (m.from == leadership_transfer.target) maybe_send_timeout_now(m.from);
    return {};
}

void Core::State::handle_heartbeat_response(const Message& m) {
    auto it = progress.find(m.from);
    if (it == progress.end()) return;
    Progress& pr = it->second;
    pr.recent_active = true;
    pr.heard_since_wake = true;
    pr.probe_sent = false;
    // A lost append in a full window would stall replication forever: let one
    // more through per heartbeat, its answer reveals the gap.
    if (pr.state == Progress::State::replicate && pr.inflights.full()) {
        pr.inflights.free_first_one();
    }
    // A follower in probe that already holds the whole log (reported
    // unreachable while down, back now) gets an empty append too: its answer
    // is what returns it to replicate.  Nothing else would while no entry is
    // written, and a leader with a follower in probe never quiesces
    // (etcd-io/raft does the same in stepLeader's MsgHeartbeatResp).
    // append_due_on_answer is true for a follower in probe.
    if ((pr.match < log.last_index() || pr.state == Progress::State::probe) &&
        append_due_on_answer(pr))
        send_append(m.from, /*send_if_empty=*/true);
    handle_heartbeat_ack(pr, m.context);
}

// Figure 2, Leaders: "If last log index >= nextIndex for a follower: send
// AppendEntries RPC with log entries starting at nextIndex"; and a lagging
// follower's heartbeat answer is the leader's cue to retry what may have
// been lost (etcd's handleHeartbeatResponse sends at every such answer).
// A replicating follower's lag is usually an append on its way, whose
// answer waits for the follower's disk: an append sent now would carry
// nothing (everything up to next - 1 left already) and only be answered
// the same way, two messages for nothing.  So it goes when there is
// something not sent yet, or when entries sent before the previous
// heartbeat tick are still unacknowledged: a whole interval without their
// answer, perhaps lost; the follower rejects an append past the gap, and
// the rejection repairs it (handle_append_response).  A lost append is
// retried a tick later than before.  A probing follower is re-probed at
// every answer, as before.  Why: docs/decisions/0042.
bool Core::State::append_due_on_answer(const Progress& pr) const {
    if (pr.state != Progress::State::replicate) return true;
    return pr.next <= log.last_index() || pr.match < pr.sent_at_previous_tick;
}

// Figure 2, Leaders: "If there exists an N such that N > commitIndex, a
// majority of matchIndex[i] >= N, and log[N].term == currentTerm: set
// commitIndex = N."  Only entries of the current term are committed by
// counting replicas (§5.4.2, Figure 8); the leader's own match is its
// durable (persisted) index.
bool Core::State::maybe_commit() {
    if (role != Role::leader) return false;
    Index quorum = quorum_index(configs.latest_voters(), [&](NodeId id) -> Index {
        if (id == opt.id) return log.persisted();
        auto it = progress.find(id);
        return it == progress.end() ? 0 : it->second.match;
    });
    if (quorum <= log.committed()) return false;
    if (log.term_at(quorum) != term && !opt.unsafe_commit_older_terms) return false;
    Index old_commit = log.committed();
    log.commit_to(quorum);
    on_commit_advanced(old_commit);
    return true;
}

void Core::State::on_commit_advanced(Index old_commit) {
    for (Index i = std::max(old_commit + 1, lead.term_start_index); i <= log.committed(); ++i) {
        lead.uncommitted_bytes -= std::min(lead.uncommitted_bytes, log.at(i).data.size());
    }
    // Tell followers the new commit index on the appends batches carry
    // anyway (an acknowledgement usually releases new entries to its
    // sender; the proposals that the applied entries' callbacks make come
    // next), not as one more message per follower now.  A follower that got
    // none is sent an append of its own once this node has applied what it
    // committed (commit_news_due), or learns the commit from the next
    // heartbeat if that comes first.  With one proposal in flight those
    // empty appends and their answers were half the messages.  A
    // configuration change is told at once, before sync_progress forgets
    // the members it removed and step_down_if_removed hands over.
    if (configs.latest_index() > old_commit) {
        broadcast_append();
    } else if (!progress.empty()) {  // a lone voter has no one to tell
        lead.commit_news_pending = true;
    }
    sync_progress();  // forget members whose removal just committed
    release_waiting_reads();
    step_down_if_removed();
}

// Dissertation §4.2.2: a leader removed from the configuration keeps leading
// (without counting itself) until the entry removing it is committed, then
// steps down.  It hands over to the most caught-up voter at once.
void Core::State::step_down_if_removed() {
    if (role != Role::leader || is_voter() || configs.latest_index() > log.committed()) return;
    NodeId best = kNoNode;
    for (const auto& [id, pr] : progress) {
        if (config().is_voter(id) && pr.match == log.last_index()) {
            best = id;
            break;
        }
    }
    if (best != kNoNode) send(Message{.type = MessageType::timeout_now, .to = best});
    become_follower(term, kNoNode);
}

}  // namespace keel::raft
