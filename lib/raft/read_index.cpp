// raft/read_index.cpp — linearizable reads without writing to the log
// (dissertation §6.4, ReadIndex):
//   1. The leader must have committed an entry of its current term (its
//      no-op); until then it does not know the latest commit index.
//   2. It records its commit index as the read index.
//   3. It confirms it is still leader with a heartbeat round: once a
//      quorum answers the round, no newer leader can have committed more.
//   4. The runtime serves the read once applied >= read index.
// A later round acknowledged by a quorum also confirms every earlier one.
#include "keel/assert.hpp"
#include "raft/quorum.hpp"
#include "raft/state.hpp"

namespace keel::raft {

Status Core::State::read_index(std::uint64_t request_id) {
    if (role != Role::leader) return not_leader_status();
    if (reads.pending_read_count >= opt.max_pending_reads) {
        return {ErrorCode::busy, "too many pending reads (max_pending_reads)"};
    }
    reads.pending_read_count += 1;
    if (!committed_own_term()) {
        reads.reads_waiting.push_back(request_id);
        return {};
    }
    if (single_voter() || lease_read_allowed()) {
        // One voter is a quorum by itself; a lease (CheckQuorum) stands in
        // for the heartbeat round when explicitly enabled.
        reads.pending_read_count -= 1;
        out.read_states.push_back(ReadState{request_id, log.committed()});
        return {};
    }
    start_read_round({request_id});
    return {};
}

// A lease only says that no *other* voter of this configuration will elect
// a leader within the election timeout.  While a configuration change is
// uncommitted, or once the leader is no longer a voter of its own
// configuration, a node outside that lease may become leader at once (a
// lone voter needs no votes) and commit more: seed 1004 of
// `keel_sim --nodes 3 --membership` served a read at index 31 after index 38
// was committed.  Such reads take the heartbeat round instead.
// Likewise once this leader has sent timeout_now: the transfer's target
// campaigns with votes that ignore leases, at any moment after, so the
// lease no longer holds for the rest of this term.
bool Core::State::lease_read_allowed() const {
    return opt.lease_reads && !leadership_transfer.lease_forfeited && is_voter() &&
           configs.latest_index() <= log.committed() && lease_held();
}

// The lease itself.  A voter that acknowledges a heartbeat sent at this
// leader's tick s received it after the leader counted s ticks, and then
// grants no vote (nor campaigns) until its own election_ticks_min-th tick
// after receipt (ticks_since_leader_contact, step.cpp).  Its first tick may
// come at once, so that is at least election_ticks_min - 1 tick periods after
// the sending; the leader's current tick n may be up to one period old.  With
// clocks that tick at the same rate, no other leader can exist while
//     n - s <= election_ticks_min - 2
// for the s that a quorum (this leader included, at n) acknowledged.
// Dating the lease from the sending, not from the acknowledgement or from
// CheckQuorum's verdict, is what keeps a leader cut off from its followers
// from serving reads after they elected another: seeds 1221 and 27273 of
// `keel_sim --nodes 5` and 23736 of `--nodes 3 --membership` did, while
// CheckQuorum (whose clock a leadership transfer restarts) still trusted
// acknowledgements up to two election timeouts old.
bool Core::State::lease_held() const {
    const std::int64_t quorum_sent = quorum_value<std::int64_t>(
        configs.latest_voters(),
        [&](NodeId id) {
            if (id == opt.id) return clocks.ticks;
            auto it = progress.find(id);
            return it == progress.end() ? Progress::kNeverTick : it->second.acked_heartbeat_tick;
        },
        Progress::kNeverTick);
    return clocks.ticks - quorum_sent <= opt.election_ticks_min - 2;
}

void Core::State::start_read_round(std::vector<std::uint64_t> request_ids) {
    const Index index = log.committed();
    const std::uint64_t seq = broadcast_heartbeat();
    reads.read_rounds.push_back(ReadRound{seq, index, std::move(request_ids)});
    release_confirmed_reads();  // a lone voter among learners confirms itself
}

// Follower acknowledged heartbeat `context` (every heartbeat carries its
// sequence number; acknowledgements of older terms never get here).
void Core::State::handle_heartbeat_ack(Progress& pr, std::uint64_t context) {
    if (context <= pr.acked_heartbeat_seq || context > reads.heartbeat_seq) return;
    pr.acked_heartbeat_seq = context;
    auto sent =
        std::lower_bound(reads.heartbeats_sent.begin(), reads.heartbeats_sent.end(), context,
                         [](const HeartbeatSent& h, std::uint64_t seq) { return h.seq < seq; });
    if (sent != reads.heartbeats_sent.end() && sent->seq == context) {
        KEEL_ASSERT(sent->tick >= pr.acked_heartbeat_tick, "later heartbeats leave no earlier");
        pr.acked_heartbeat_tick = sent->tick;
    }
    release_confirmed_reads();
}

// A round is confirmed once a quorum acknowledged its heartbeat or a later
// one: each of those left after the round started, so their acknowledgers
// knew no newer leader then.  Rounds are released oldest first.
void Core::State::release_confirmed_reads() {
    if (reads.read_rounds.empty()) return;
    const Index confirmed = quorum_index(configs.latest_voters(), [&](NodeId id) -> Index {
        if (id == opt.id) return reads.heartbeat_seq;
        auto it = progress.find(id);
        return it == progress.end() ? 0 : it->second.acked_heartbeat_seq;
    });
    while (!reads.read_rounds.empty() && reads.read_rounds.front().seq <= confirmed) {
        ReadRound& r = reads.read_rounds.front();
        for (std::uint64_t id : r.request_ids) out.read_states.push_back(ReadState{id, r.index});
        KEEL_ASSERT(reads.pending_read_count >= r.request_ids.size(), "pending read count");
        reads.pending_read_count -= r.request_ids.size();
        reads.read_rounds.pop_front();
    }
}

// Called when the leader's commit advances (or it just won): requests that
// waited for an entry of this term to commit start their round now.
void Core::State::release_waiting_reads() {
    if (role != Role::leader || reads.reads_waiting.empty() || !committed_own_term()) return;
    std::vector<std::uint64_t> ids = std::move(reads.reads_waiting);
    reads.reads_waiting.clear();
    if (single_voter() || lease_read_allowed()) {
        for (std::uint64_t id : ids) out.read_states.push_back(ReadState{id, log.committed()});
        reads.pending_read_count -= ids.size();
        return;
    }
    start_read_round(std::move(ids));
}

void Core::State::fail_pending_reads(NodeId leader_hint) {
    for (const ReadRound& r : reads.read_rounds) {
        for (std::uint64_t id : r.request_ids)
            out.read_failures.push_back(ReadFailure{id, leader_hint});
    }
    for (std::uint64_t id : reads.reads_waiting)
        out.read_failures.push_back(ReadFailure{id, leader_hint});
    reads.read_rounds.clear();
    reads.reads_waiting.clear();
    reads.pending_read_count = 0;
}

}  // namespace keel::raft
