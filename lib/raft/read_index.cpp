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
    if (pending_read_count >= opt.max_pending_reads) {
        return {ErrorCode::busy, "too many pending reads (max_pending_reads)"};
    }
    pending_read_count += 1;
    if (!committed_own_term()) {
        reads_waiting.push_back(request_id);
        return {};
    }
    if (single_voter() || lease_read_allowed()) {
        // One voter is a quorum by itself; a lease (CheckQuorum) stands in
        // for the heartbeat round when explicitly enabled.
        pending_read_count -= 1;
        read_states.push_back(ReadState{request_id, log.committed()});
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
    return opt.lease_reads && !lease_forfeited && is_voter() &&
           configs.latest_index() <= log.committed();
}

void Core::State::start_read_round(std::vector<std::uint64_t> request_ids) {
    ReadRound round{++read_round, log.committed(), std::move(request_ids), {}};
    if (is_voter()) round.acks.insert(opt.id);
    read_rounds.push_back(std::move(round));
    broadcast_heartbeat(read_round);
}

void Core::State::handle_read_ack(NodeId from, std::uint64_t context) {
    auto it = read_rounds.begin();
    while (it != read_rounds.end() && it->round != context) ++it;
    if (it == read_rounds.end()) return;
    it->acks.insert(from);
    if (!has_quorum(config().voters(), [&](NodeId id) { return it->acks.count(id) != 0; })) return;
    // Release this round and every older one.
    while (!read_rounds.empty() && read_rounds.front().round <= context) {
        ReadRound& r = read_rounds.front();
        for (std::uint64_t id : r.request_ids) read_states.push_back(ReadState{id, r.index});
        KEEL_ASSERT(pending_read_count >= r.request_ids.size(), "pending read count");
        pending_read_count -= r.request_ids.size();
        read_rounds.pop_front();
    }
}

// Called when the leader's commit advances (or it just won): requests that
// waited for an entry of this term to commit start their round now.
void Core::State::release_waiting_reads() {
    if (role != Role::leader || reads_waiting.empty() || !committed_own_term()) return;
    std::vector<std::uint64_t> ids = std::move(reads_waiting);
    reads_waiting.clear();
    if (single_voter() || lease_read_allowed()) {
        for (std::uint64_t id : ids) read_states.push_back(ReadState{id, log.committed()});
        pending_read_count -= ids.size();
        return;
    }
    start_read_round(std::move(ids));
}

void Core::State::fail_pending_reads(NodeId leader_hint) {
    for (const ReadRound& r : read_rounds) {
        for (std::uint64_t id : r.request_ids)
            read_failures.push_back(ReadFailure{id, leader_hint});
    }
    for (std::uint64_t id : reads_waiting) read_failures.push_back(ReadFailure{id, leader_hint});
    read_rounds.clear();
    reads_waiting.clear();
    pending_read_count = 0;
}

}  // namespace keel::raft
