// raft/types.hpp — the vocabulary of the pure Raft core: ids, log entries,
// hard state, cluster configuration, snapshot metadata and messages.
//
// Everything here is plain data (the standard library, and keel::SharedBytes
// for entry payloads) so the core, the simulator, the wire codec and the
// runtime can all share it.  Field meanings follow Figure 2 of the Raft
// paper; where a field is reused by several message types, its meaning per
// type is documented on Message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/shared_bytes.hpp"

namespace keel::raft {

using NodeId = std::uint64_t;
using Term = std::uint64_t;
using Index = std::uint64_t;
// Names one write of log entries handed to the runtime (Actions::write_id):
// 1, 2, 3, ... in the order the writes were handed out, per Core.
using WriteId = std::uint64_t;

// NodeId 0 means "nobody" (no vote cast, no known leader).
inline constexpr NodeId kNoNode = 0;

enum class EntryType : std::uint8_t {
    normal = 1,  // user data for the state machine
    noop = 2,    // appended by every new leader at the start of its term (empty data)
    config = 3,  // data is an encoded Configuration: the *whole* configuration after the change
};

struct Entry {
    Term term = 0;
    Index index = 0;
    EntryType type = EntryType::normal;
    // Copies share the bytes: the log, the WAL queue and the apply queue
    // each hold the entry without copying its data.
    SharedBytes data;

    friend bool operator==(const Entry&, const Entry&) = default;
};

// State that must be durable before the node answers anything that depends
// on it (Figure 2, "Persistent state on all servers").  term and vote are
// written together, atomically.  commit may be persisted lazily: it is an
// optimisation for restart, never needed for safety.
struct HardState {
    Term term = 0;
    NodeId vote = kNoNode;
    Index commit = 0;

    friend bool operator==(const HardState&, const HardState&) = default;
};

struct MemberInfo {
    bool voter = true;    // false: a learner (receives the log, never votes or counts)
    std::string context;  // opaque to the core; the runtime stores addresses here

    friend bool operator==(const MemberInfo&, const MemberInfo&) = default;
};

// A cluster configuration.  Keel changes membership one server at a time
// (Raft dissertation §4.1): every configuration change adds, removes or
// promotes a single member, so any majority of the old configuration
// overlaps any majority of the new one.  A configuration takes effect on a
// node as soon as its entry is in that node's log (not when committed), and
// reverts if that entry is truncated.
struct Configuration {
    std::map<NodeId, MemberInfo> members;

    bool contains(NodeId id) const { return members.count(id) != 0; }
    bool is_voter(NodeId id) const {
        auto it = members.find(id);
        return it != members.end() && it->second.voter;
    }
    std::size_t voter_count() const {
        std::size_t n = 0;
        for (const auto& [id, info] : members) n += info.voter ? 1 : 0;
        return n;
    }
    std::vector<NodeId> voters() const;
    std::vector<NodeId> learners() const;

    friend bool operator==(const Configuration&, const Configuration&) = default;
};

// The wire/disk encoding of a Configuration (stored as the data of a
// config entry and inside snapshot metadata).  Decoding is bounded and
// rejects garbage: it returns nullopt on any malformed input.
std::string encode_configuration(const Configuration& config);
std::optional<Configuration> decode_configuration(std::string_view bytes);

// A membership change requested by the application.  The leader turns it
// into a config entry holding the whole resulting configuration.
struct ConfigChange {
    enum class Kind : std::uint8_t {
        add_voter = 1,    // add a new voter (prefer add_learner, then promote)
        add_learner = 2,  // add a non-voting member that catches up
        promote = 3,      // turn an existing learner into a voter
        remove = 4,       // remove a voter or a learner
    };
    Kind kind = Kind::add_learner;
    NodeId node = kNoNode;
    std::string context;  // stored in MemberInfo::context (addresses); ignored for remove
};

struct SnapshotMeta {
    Index index = 0;       // last entry the snapshot covers
    Term term = 0;         // term of that entry
    Configuration config;  // the configuration as of `index`

    friend bool operator==(const SnapshotMeta&, const SnapshotMeta&) = default;
};

enum class MessageType : std::uint8_t {
    append = 1,  // AppendEntries RPC (also carries no entries as a probe)
    append_response = 2,
    vote = 3,  // RequestVote RPC
    vote_response = 4,
    pre_vote = 5,  // PreVote (dissertation §9.6): would you vote for me at term+1?
    pre_vote_response = 6,
    heartbeat = 7,  // leader liveness + commit + ReadIndex round (context)
    heartbeat_response = 8,
    snapshot = 9,      // InstallSnapshot: meta here; data streamed by the runtime
    timeout_now = 10,  // leadership transfer: campaign now, ignoring timers and leases
};

const char* message_type_name(MessageType type);

// One Raft message.  A flat struct (as in etcd's raft) keeps the codec
// simple; the fields used by each type:
//   append:             log_index/log_term = prevLogIndex/prevLogTerm, entries, commit;
//                       index = what the leader counts stored on every member (at
//                       most commit; Core::stored_everywhere)
//   append_response:    reject=false: index = last index now matching the leader's log;
//                       reject=true:  index = the rejected prevLogIndex, hint_index/hint_term
//                       = conflict hint (last index of the follower's log at or below a term
//                       it has, and that term) for fast backtracking
//   vote, pre_vote:     log_index/log_term = candidate's last log index/term;
//                       term = the candidate's (prospective, for pre_vote) term;
//                       transfer = true when caused by a leadership transfer
//   vote_response,
//   pre_vote_response:  reject
//   heartbeat:          commit (capped at the follower's match index), context (ReadIndex round),
//                       index as on an append; context kCommitNoticeContext: a commit
//                       notice, of no round, which the follower does not answer;
//                       quiesce = true: the leader stops heartbeating (quiescence.cpp), and
//                       log_index/log_term = its last entry, which the follower must hold
//   heartbeat_response: context echoed
//   snapshot:           snapshot (meta); the runtime attaches the data
//   timeout_now:        -
// A heartbeat's context that names no ReadIndex round (their sequence
// numbers start at 1): the leader only tells the commit index and wants no
// answer (replication.cpp, send_commit_news).  A follower of an earlier
// version answers it as any heartbeat; the leader takes that answer as it
// takes a follower's request for a heartbeat (context 0 too): no round
// counts it.
inline constexpr std::uint64_t kCommitNoticeContext = 0;

struct Message {
    MessageType type = MessageType::append;
    NodeId from = kNoNode;
    NodeId to = kNoNode;
    Term term = 0;

    Index log_index = 0;
    Term log_term = 0;
    Index commit = 0;
    std::vector<Entry> entries;

    Index index = 0;
    bool reject = false;
    Index hint_index = 0;
    Term hint_term = 0;

    std::uint64_t context = 0;
    bool transfer = false;
    // Only on a heartbeat: the group goes quiet (Options::quiesce).
    bool quiesce = false;
    std::optional<SnapshotMeta> snapshot;

    friend bool operator==(const Message&, const Message&) = default;
};

// Human-readable one-line rendering for traces and logs.
std::string to_string(const Message& m);
std::string to_string(const Entry& e);
std::string to_string(const Configuration& c);

}  // namespace keel::raft
