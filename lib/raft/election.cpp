// raft/election.cpp — timers, (pre-)campaigns and votes (Raft §5.2, §5.4.1;
// dissertation §9.6 PreVote; §6.2 / etcd CheckQuorum).
#include <algorithm>

#include "keel/assert.hpp"
#include "raft/limits.hpp"
#include "raft/quorum.hpp"
#include "raft/state.hpp"

namespace keel::raft {

// Each campaign in a row that ended without a leader doubles the range the
// timeout is drawn from, up to 2^kMaxCampaignBackoff times (its lower bound
// stays).  When messages between the voters take about an election timeout
// (a machine loaded past its cores, a thousand groups electing at once),
// candidates that keep the base range time out before their votes arrive,
// and two of them collide again and again; a wider range spreads them apart
// and lets the slower round trip finish (decision 0048).  Apache Kudu backs
// its failed elections off exponentially too.  Liveness only: a longer
// timeout never lets a node vote or campaign sooner.
void Core::State::randomize_election_timeout() {
    auto span = static_cast<std::uint64_t>(opt.election_ticks_max - opt.election_ticks_min + 1);
    span <<= std::clamp(clocks.campaigns_without_leader - 1, 0, kMaxCampaignBackoff);
    clocks.randomized_election_ticks = opt.election_ticks_min + static_cast<int>(rng() % span);
}

// A leader is heard: the next election timeout, which runs if it falls
// silent, comes from the base range again, not from a range widened by
// campaigns that failed before it won (or before this node heard of it).
void Core::State::heard_leader() {
    if (clocks.campaigns_without_leader == 0) return;
    const bool widened = clocks.campaigns_without_leader > 1;
    clocks.campaigns_without_leader = 0;
    if (widened) randomize_election_timeout();
}

bool Core::State::single_voter() const {
    return configs.latest_lone_voter() == opt.id;
}

// A voter of the effective configuration campaigns; so does a node that an
// *uncommitted* configuration entry removes, as long as it is a voter of
// some configuration that may be the committed one: the one in effect at
// the commit index it knows, or any later one in its log.  Without that, a
// leader that appended its own removal and then lost its quorum could hold
// the most up-to-date log, refuse to campaign, and refuse its vote to every
// other voter (whose configuration still counts it): no leader ever again.
// Its own commit index may lag the cluster's: the runtime saves it lazily,
// and a node restarted from an old one may find itself a learner there
// although the entry promoting it was committed (seed 3023 of `keel_sim
// --nodes 1 --membership --no-lease-reads`).  Such a candidate needs a
// majority of the *effective* configuration, which does not count itself,
// so this is safe; once elected it commits its removal and steps down.
bool Core::State::may_campaign() const {
    return configs.voter_at_or_after(log.committed(), opt.id);
}

void Core::State::tick() {
    // Quiescent: no clock runs, not even the lease's (quiescence.cpp).
    if (quiet.quiescent) return;
    clocks.ticks += 1;
    if (clocks.ticks_since_leader_contact < opt.election_ticks_min)
        clocks.ticks_since_leader_contact += 1;
    if (role == Role::leader) {
        tick_leader();
    } else {
        tick_election();
    }
}

// Followers and candidates: "If election timeout elapses without receiving
// AppendEntries RPC from current leader or granting vote to candidate:
// convert to candidate" (Figure 2).  Learners and nodes outside the
// configuration never campaign.
void Core::State::tick_election() {
    clocks.election_elapsed_ticks += 1;
    if (clocks.election_elapsed_ticks < clocks.randomized_election_ticks) return;
    if (!may_campaign()) {
        // Its timer keeps counting (leader stickiness reads it); a poke per timeout.
        if (clocks.election_elapsed_ticks % clocks.randomized_election_ticks == 0)
            poke_quiet_leader();
        return;
    }
    clocks.election_elapsed_ticks = 0;
    clocks.campaigns_without_leader =
        std::min(clocks.campaigns_without_leader + 1, kMaxCampaignBackoff + 1);
    // An earlier campaign ran out its timeout with no leader: the next
    // timeout from the wider range (a pre-campaign keeps its term, so no
    // reset draws it).
    if (clocks.campaigns_without_leader > 1) randomize_election_timeout();
    campaign(opt.pre_vote, /*transfer=*/false);
}

void Core::State::tick_leader() {
    clocks.heartbeat_elapsed_ticks += 1;
    clocks.election_elapsed_ticks += 1;
    if (clocks.election_elapsed_ticks >= opt.election_ticks_min) {
        clocks.election_elapsed_ticks = 0;
        lead.quorum_heard = quorum_active();
        // CheckQuorum: a leader that has not heard from a quorum for an
        // election timeout steps down, so a partitioned leader cannot serve
        // stale reads forever and a flapping partial partition settles.
        // Without it, it leads on, but hears strangers (admission.cpp).
        if (opt.check_quorum && !lead.quorum_heard) {
            become_follower(term, kNoNode);
            return;
        }
    }
    if (leadership_transfer.target != kNoNode &&
        ++leadership_transfer.elapsed_ticks >= opt.election_ticks_min)
        abort_transfer();
    maybe_quiesce();
    if (quiet.quiescent) return;
    if (clocks.heartbeat_elapsed_ticks >= opt.heartbeat_ticks) {
        clocks.heartbeat_elapsed_ticks = 0;
        tick_heartbeat();
    }
}

bool Core::State::quorum_active() {
    bool active = has_quorum(configs.latest_voters(), [&](NodeId id) {
        if (id == opt.id) return true;
        auto it = progress.find(id);
        return it != progress.end() && it->second.recent_active;
    });
    for (auto& [id, pr] : progress) pr.recent_active = false;
    return active;
}

void Core::State::reset(Term new_term) {
    KEEL_ASSERT(new_term >= term, "the term never decreases");
    if (new_term != term) {
        term = new_term;
        vote = kNoNode;
        quiet.quiesce_seq = 0;
    }
    leader = kNoNode;
    quiet.quiescent = false;
    quiet.quiet_ticks = 0;
    clocks.election_elapsed_ticks = 0;
    clocks.heartbeat_elapsed_ticks = 0;
    randomize_election_timeout();
    votes.clear();
    abort_transfer();
    progress.clear();
    lead.uncommitted_bytes = 0;
}

void Core::State::become_follower(Term new_term, NodeId new_leader) {
    if (role == Role::leader) fail_pending_reads(new_leader);
    reset(new_term);
    role = Role::follower;
    leader = new_leader;
}

void Core::State::become_pre_candidate() {
    KEEL_ASSERT(role != Role::leader, "a leader never pre-campaigns");
    // PreVote changes neither term nor vote: a node that cannot win does not
    // disrupt the cluster by bumping terms.
    votes.clear();
    leader = kNoNode;
    role = Role::pre_candidate;
}

void Core::State::become_candidate() {
    KEEL_ASSERT(role != Role::leader, "a leader never campaigns");
    // Figure 2, Candidates: "increment currentTerm, vote for self".
    reset(term + 1);
    vote = opt.id;
    role = Role::candidate;
}

void Core::State::become_leader() {
    KEEL_ASSERT(role == Role::candidate, "only a candidate becomes leader");
    KEEL_ASSERT(vote == opt.id, "a leader voted for itself in its term");
    reset(term);
    role = Role::leader;
    leader = opt.id;
    clocks.campaigns_without_leader = 0;
    lead.term_durable = true;  // won with votes of others: asked for only once durable
    leadership_transfer.lease_forfeited = false;
    sync_progress();
    for (auto& [id, pr] : progress) pr.recent_active = true;
    lead.quorum_heard = true;
    // §8: a new leader appends a no-op of its term at once; until it commits,
    // the leader does not know which entries are committed (and ReadIndex waits).
    lead.term_start_index = log.last_index() + 1;
    append_own(EntryType::noop, {});
    release_waiting_reads();
}

void Core::State::campaign(bool pre, bool transfer) {
    if (!may_campaign()) return;
    if (pre) {
        become_pre_candidate();
    } else {
        become_candidate();
    }
    Term vote_term = pre ? term + 1 : term;
    votes[opt.id] = true;
    if (tally_votes(configs.latest_voters(), votes) == VoteResult::won) {
        // A single voter wins at once: no messages, no ticks.  Its own vote is
        // not durable yet, so it stays inert (refuses proposals) until its
        // no-op — in the same batch as the hard state — is: after a crash
        // that loses that batch it could vote again in this term, and another
        // leader of the term could reuse the (index, term) of its proposals.
        if (pre) {
            campaign(false, transfer);
        } else {
            become_leader();
            lead.term_durable = false;
        }
        return;
    }
    for (NodeId id : configs.latest_voters()) {
        if (id == opt.id) continue;
        send(Message{.type = pre ? MessageType::pre_vote : MessageType::vote,
                     .to = id,
                     .term = vote_term,
                     .log_index = log.last_index(),
                     .log_term = log.last_term(),
                     .transfer = transfer});
    }
}

// With one voter, and that voter is us, nobody else can be leader: take the
// role now rather than after an election timeout (no ticks in that mode).
void Core::State::maybe_campaign_alone() {
    if (role != Role::leader && single_voter()) campaign(/*pre=*/false, /*transfer=*/false);
}

// §5.4.1: "the voter denies its vote if its own log is more up-to-date than
// that of the candidate": compare last terms, then lengths.
bool Core::State::log_up_to_date(Index last_index, Term last_term) const {
    return last_term > log.last_term() ||
           (last_term == log.last_term() && last_index >= log.last_index());
}

// Two pre-candidates for the same term with the same log whose requests
// cross would grant each other, both become candidates and split the vote
// (the followers of a group woken by one liveness verdict often do:
// decision 0039).  Of the two, only the one first in tie_order is granted;
// the other stays a pre-candidate and grants the winner's real vote.  With
// different logs there is no tie: only the more up-to-date one can be
// granted, and must be (the other might never win).  PreVote guards no
// safety property, so this refusal costs at most an election timeout.  A
// transfer's candidate is not refused.
bool Core::State::crossing_pre_vote_lost(const Message& m) const {
    return role == Role::pre_candidate && !m.transfer && m.term == term + 1 &&
           m.log_index == log.last_index() && m.log_term == log.last_term() &&
           tie_order(opt.id, m.term) < tie_order(m.from, m.term);
}

// An order of the voters that every node computes alike and that changes
// with the term, so that ties between the same two nodes do not always go
// the same way (splitmix64 of the id and the term).
std::uint64_t Core::State::tie_order(NodeId id, Term t) {
    std::uint64_t z = id * 0x9E3779B97F4A7C15ull + t;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Figure 2, RequestVote receiver: "1. Reply false if term < currentTerm
// (handled in step_by_term).  2. If votedFor is null or candidateId, and
// candidate's log is at least as up-to-date as receiver's log, grant vote."
void Core::State::handle_vote_request(const Message& m) {
    bool pre = m.type == MessageType::pre_vote;
    bool can_vote =
        vote == m.from || (vote == kNoNode && leader == kNoNode) || (pre && m.term > term);
    if (pre && crossing_pre_vote_lost(m)) can_vote = false;
    auto reply_type = pre ? MessageType::pre_vote_response : MessageType::vote_response;
    if (can_vote && log_up_to_date(m.log_index, m.log_term)) {
        // A granted pre-vote is answered at the prospective term, so the
        // pre-candidate can tell it from stale answers.
        Message reply{.type = reply_type, .to = m.from, .term = m.term};
        if (pre) {
            send(std::move(reply));
        } else {
            clocks.election_elapsed_ticks = 0;
            vote = m.from;
            // The vote must be durable before the candidate may count it.
            send_after_persist(std::move(reply));
        }
        return;
    }
    send(Message{.type = reply_type, .to = m.from, .term = term, .reject = true});
}

void Core::State::handle_vote_response(const Message& m) {
    bool pre = role == Role::pre_candidate;
    if (m.type != (pre ? MessageType::pre_vote_response : MessageType::vote_response)) return;
    // A granted pre-vote carries term + 1; a rejection carries our own term.
    if (pre && !m.reject && m.term != term + 1) return;
    votes.emplace(m.from, !m.reject);
    switch (tally_votes(configs.latest_voters(), votes)) {
        case VoteResult::won:
            if (pre) {
                campaign(/*pre=*/false, /*transfer=*/false);
            } else {
                become_leader();
            }
            break;
        case VoteResult::lost:
            become_follower(term, kNoNode);
            break;
        case VoteResult::pending:
            break;
    }
}

}  // namespace keel::raft
