// raft/admission.cpp — what from outside the process reaches the algorithm.
//
// Raft's Figure 2 trusts every message it is given.  Keel does not: every
// field is checked before the core acts on it (nothing a sender writes may
// make the core add past 2^64, break an invariant it asserts, or store a
// term no restart can reopen), and only members are heard.  What fails is
// refused (refusal.hpp): dropped, with a reason the runtime counts.  The
// state read back from disk is checked the same way before a Core is built
// from it (validate_restored): the constructor asserts what it checks.
#include <algorithm>
#include <array>
#include <string>

#include "raft/limits.hpp"
#include "raft/refusal.hpp"
#include "raft/state.hpp"
#include "raft/str_cat.hpp"

namespace keel::raft {

Status refused(std::string_view reason, std::string_view detail) {
    return Status{ErrorCode::invalid_argument, str_cat(reason, ": ", detail)};
}

std::string_view refusal_reason(const Status& status) {
    static constexpr std::array kReasons = {kRefusedNotAMember, kRefusedTermOutOfRange,
                                            kRefusedIndexOutOfRange, kRefusedMisaddressed,
                                            kRefusedMalformed};
    if (status.code() != ErrorCode::invalid_argument) return {};
    const std::string_view message = status.message();
    for (std::string_view reason : kReasons) {
        if (message.size() > reason.size() && message.starts_with(reason) &&
            message[reason.size()] == ':')
            return reason;
    }
    return {};
}

namespace {

// Within the limits encode_configuration() asserts.  The configuration
// codec checks the rest (ids, order).
bool within_limits(const Configuration& config) {
    if (config.members.size() > kMaxMembers) return false;
    for (const auto& [id, info] : config.members) {
        if (id == kNoNode || info.context.size() > kMaxContextBytes) return false;
    }
    return true;
}

// Whether a member could have sent `config`: within the limits, and with a
// voter (no change ever leaves none).
bool valid_configuration(const Configuration& config) {
    return within_limits(config) && config.voter_count() != 0;
}

Status check_entries(const Message& m) {
    Index expected = m.log_index + 1;
    Term previous_term = m.log_term;
    for (const Entry& e : m.entries) {
        if (e.index > kMaxIndex) return refused(kRefusedIndexOutOfRange, "entry index");
        if (e.index != expected++ || e.term < previous_term || e.term > m.term)
            return refused(kRefusedMalformed, "append entries not contiguous after prevLog");
        if (e.type == EntryType::config) {
            std::optional<Configuration> config = decode_configuration(e.data);
            if (!config || !valid_configuration(*config))
                return refused(kRefusedMalformed, "undecodable configuration entry");
        }
        previous_term = e.term;
    }
    return {};
}

Status check_snapshot_meta(const Message& m) {
    if (m.type != MessageType::snapshot) {
        if (m.snapshot) return refused(kRefusedMalformed, "snapshot metadata on a non-snapshot");
        return {};
    }
    if (!m.snapshot || m.snapshot->index == 0 || m.snapshot->term == 0)
        return refused(kRefusedMalformed, "snapshot message without metadata");
    if (m.snapshot->index > kMaxIndex) return refused(kRefusedIndexOutOfRange, "snapshot index");
    // The last entry a leader's snapshot covers is of its term or older.
    if (m.snapshot->term > m.term)
        return refused(kRefusedTermOutOfRange, "snapshot of a term newer than its message");
    if (!valid_configuration(m.snapshot->config))
        return refused(kRefusedMalformed, "snapshot configuration over the limits or voterless");
    return {};
}

}  // namespace

// Checks that need nothing but the message itself.
Status validate_message(const Message& m, NodeId self) {
    if (m.to != self) return refused(kRefusedMisaddressed, str_cat("message for node ", m.to));
    if (m.from == kNoNode || m.from == self)
        return refused(kRefusedMalformed, str_cat("message from node ", m.from));
    if (m.term == 0) return refused(kRefusedMalformed, "message without a term");
    if (m.term > kMaxTerm || m.log_term > kMaxTerm || m.hint_term > kMaxTerm)
        return refused(kRefusedTermOutOfRange, str_cat("term ", m.term));
    if (m.log_index > kMaxIndex || m.commit > kMaxIndex || m.index > kMaxIndex ||
        m.hint_index > kMaxIndex)
        return refused(kRefusedIndexOutOfRange, "index at or above 2^63");
    // A leader tells what is stored everywhere only as far as it commits.
    if ((m.type == MessageType::append || m.type == MessageType::heartbeat) && m.index > m.commit)
        return refused(kRefusedMalformed, str_cat("stored-everywhere index ", m.index,
                                                  " past the commit index ", m.commit));
    if (m.quiesce && m.type != MessageType::heartbeat)
        return refused(kRefusedMalformed, "quiesce flag on a non-heartbeat");
    if (m.type != MessageType::append && !m.entries.empty())
        return refused(kRefusedMalformed, "entries on a message that carries none");
    if (Status st = check_entries(m); !st.ok()) return st;
    return check_snapshot_meta(m);
}

Status validate_restored(const RestoredState& r) {
    auto bad = [](const std::string& why) {
        return Status{ErrorCode::corruption, "restored state: " + why};
    };
    const Term term = r.hard_state.term;
    if (term > kMaxRestoredTerm)
        return bad(str_cat("term ", term, " is past the largest a node reaches (2^63 + 2^32 - 1)"));
    Index prev_index = 0;
    Term prev_term = 0;
    if (r.snapshot) {
        prev_index = r.snapshot->index;
        prev_term = r.snapshot->term;
        if (prev_index > kMaxRestoredIndex || prev_term > kMaxRestoredTerm)
            return bad(str_cat("snapshot ", prev_index, "/", prev_term, " out of range"));
        // Voterless is possible: a node that joined empty and was sent
        // entries without a configuration snapshots with none.
        if (!within_limits(r.snapshot->config))
            return bad("snapshot configuration over the limits");
    }
    Index last_index = prev_index;
    Term last_term = prev_term;
    for (const Entry& e : r.entries) {
        if (e.index <= prev_index) continue;  // covered by the snapshot
        if (e.index != last_index + 1)
            return bad(str_cat("log entry ", e.index, " does not follow ", last_index));
        if (e.index > kMaxRestoredIndex || e.term < last_term)
            return bad(str_cat("log entry ", e.index, " has term ", e.term, " after ", last_term));
        if (e.type == EntryType::config && !decode_configuration(e.data))
            return bad(str_cat("configuration entry ", e.index, " does not decode"));
        last_index = e.index;
        last_term = e.term;
    }
    if (last_index != 0 && last_term > term)
        return bad(str_cat("the log holds term ", last_term, ", the hard state ", term));
    if (std::max(r.hard_state.commit, r.applied) > last_index)
        return bad(str_cat("commit ", r.hard_state.commit, " or applied ", r.applied,
                           " beyond the log's last index ", last_index));
    return {};
}

bool Core::State::out_of_contact() const {
    if (role == Role::leader) return !lead.quorum_heard;
    return clocks.ticks_since_leader_contact >= opt.election_ticks_min;
}

bool Core::State::knows_member(NodeId id) const {
    return configs.latest_contains(id) || configs.at(log.committed()).contains(id);
}

// The sender must be a member of this node's latest configuration or of its
// committed one (a member whose removal is appended but not committed is
// still heard: it may be needed to commit its own removal).  A node that
// lags may not know the members of the cluster's current configuration,
// though: the entries adding them are among those it lacks, and until it
// has them its vote or its log may be what a new member needs.  So what a
// leader or a candidate sends (append, heartbeat, snapshot; vote and
// pre-vote requests) from an unknown id is heard as well when
//   - this node is not in its own configuration and follows no leader: a
//     node started to join and still empty (the leader adding it, or a
//     candidate needing its vote when it was added as a voter before it
//     received anything), or whose log or snapshot predates its addition
//     (dissertation §4.2.1), or that was removed.  Once it follows a
//     leader, a stranger is heard only as below: the joiner's term moves
//     with its leader's, not with whoever reaches its port; or
//   - this node is out of contact: it has heard from no leader for an
//     election timeout (`ticks_since_leader_contact`), or, leading, from no
//     quorum of its voters (`quorum_heard`): a member whose log predates the
//     current leader's (or candidate's) addition, whose other voters are
//     gone; or a stale leader of such a member, without CheckQuorum to make
//     it step down (seed 22011 of `keel_sim --nodes 3 --membership`).
// While a leader is heard, and on a leader that hears a quorum (a lone voter
// always does), a stranger changes nothing; and no stranger brings a term
// past kMaxTermFromNonMember.
// The leader this node follows is heard in its term and later ones, even
// once this node no longer knows it (timeout_now included, which a leader
// that committed its own removal sends its successor).  Responses come from
// members only: they answer what this node sent to its members.
Status Core::State::admit(const Message& m) const {
    if (knows_member(m.from)) return {};
    if (m.term > kMaxTermFromNonMember)
        return refused(kRefusedTermOutOfRange,
                       str_cat("term ", m.term, " from node ", m.from, ", not a member"));
    const bool request = m.type == MessageType::append || m.type == MessageType::heartbeat ||
                         m.type == MessageType::snapshot || m.type == MessageType::vote ||
                         m.type == MessageType::pre_vote;
    if (from_leader(m) && m.from == leader && m.term >= term) return {};
    if (request && !knows_member(opt.id) && leader == kNoNode) return {};
    if (request && out_of_contact()) return {};
    return refused(kRefusedNotAMember, str_cat(message_type_name(m.type), " from node ", m.from));
}

}  // namespace keel::raft
