// keel/status_report.hpp — a point-in-time view of a node, for status pages,
// metrics and tests (e.g. the mode detector's timer counters).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "keel/options.hpp"

namespace keel {

// A member's role in Raft (NodeStatus::role, Observer::on_role_changed).
enum class Role : std::uint8_t {
    follower,       // follows a leader (or waits for one)
    pre_candidate,  // asks whether it could win an election (PreVote) before starting one
    candidate,      // campaigns in a new term
    leader,         // accepts proposals and replicates them
};

// "follower", "pre_candidate", "candidate", "leader": the names raftd's
// JSON and metrics use.
inline const char* role_name(Role role) {
    switch (role) {
        case Role::follower:
            return "follower";
        case Role::pre_candidate:
            return "pre_candidate";
        case Role::candidate:
            return "candidate";
        case Role::leader:
            return "leader";
    }
    return "unknown";
}

enum class Mode {
    single,   // the only member, and leading: no tick timer armed, commit on local fsync
    cluster,  // otherwise: heartbeat and election ticks armed (or being armed)
};

// A fixed-bucket latency histogram (microseconds), cumulative since start.
struct LatencyHistogram {
    std::vector<double> upper_bounds_us;  // bucket upper bounds, ascending; last is +inf
    std::vector<std::uint64_t> counts;    // per bucket (not cumulative)
    std::uint64_t count = 0;
    double sum_us = 0;
};

struct WalFigures {
    std::uint64_t segments = 0;
    std::uint64_t bytes = 0;
    std::uint64_t fsyncs = 0;
    std::uint64_t records = 0;
    double records_per_fsync = 0;  // mean
};

struct MemberStatus {
    MemberSpec spec;
    // On the leader: the highest index known durable on that member (its
    // own: its durable last index); 0 on other nodes, which do not track it.
    std::uint64_t match_index = 0;
    // On the leader: appends stream to it, so it has answered since the
    // transport last reported it unreachable (a member down is not
    // replicating; one back is again after one heartbeat and its answer).
    // Its own: true.  false on other nodes, which do not track it.
    bool replicating = false;
};

// Raft messages a node took in from its peers, by kind (NodeStatus).
struct MessageCounts {
    std::uint64_t appends = 0;  // with entries or without
    std::uint64_t append_answers = 0;
    std::uint64_t heartbeats = 0;  // that want an answer
    std::uint64_t heartbeat_answers = 0;
    std::uint64_t notices = 0;  // heartbeats that want none: a commit alone, an idle tick
    std::uint64_t votes = 0;    // votes and pre-votes asked
    std::uint64_t vote_answers = 0;
    std::uint64_t other = 0;  // snapshots, timeout_now
    std::uint64_t total() const {
        return appends + append_answers + heartbeats + heartbeat_answers + notices + votes +
               vote_answers + other;
    }
    MessageCounts& operator+=(const MessageCounts& o) {
        appends += o.appends;
        append_answers += o.append_answers;
        heartbeats += o.heartbeats;
        heartbeat_answers += o.heartbeat_answers;
        notices += o.notices;
        votes += o.votes;
        vote_answers += o.vote_answers;
        other += o.other;
        return *this;
    }
};

struct NodeStatus {
    NodeId id = 0;
    // The cluster's id, 32 hex digits; "" while a joiner has not heard from
    // its cluster yet.
    std::string cluster_id;
    Role role = Role::follower;
    std::uint64_t term = 0;
    NodeId leader_id = 0;  // 0 when unknown
    std::uint64_t commit_index = 0;
    std::uint64_t applied_index = 0;
    std::uint64_t first_index = 0;  // first entry in memory (single mode: applied + 1)
    std::uint64_t last_index = 0;
    std::uint64_t snapshot_index = 0;
    Mode mode = Mode::single;
    bool quiescent = false;  // NodeOptions::quiesce: the group is quiet, no tick needed
    std::vector<MemberStatus> members;

    std::uint64_t timer_wakeups = 0;  // every wakeup of any timer the node owns
    std::uint64_t elections = 0;      // campaigns started by this node
    std::uint64_t proposals = 0;      // accepted proposals
    std::uint64_t commits = 0;        // entries applied
    // What replication costs in messages: those this node stepped into its
    // core since start, by kind (refused ones: peer_messages_rejected).
    MessageCounts messages_received;
    WalFigures wal;
    LatencyHistogram commit_latency;  // propose -> applied, on this node's proposals
    LatencyHistogram fsync_latency;   // WAL write + fdatasync

    // Conditions an operator must see, raised and cleared by keel itself,
    // sorted, each at most once.  Known names: kAlarmNoSpace.
    std::vector<std::string> alarms;
    // What arrived from other processes on the peer port and was refused
    // (never delivered to Raft), counted by reason since start: e.g. a
    // connection without a valid certificate, another cluster's hello, a
    // message from a node that is not a member, a field out of range.
    std::map<std::string, std::uint64_t> peer_messages_rejected;
    // Non-empty once the node has fail-stopped (a failed write or fsync of
    // data, never retried): why, naming the file where known.  A failed
    // node refuses every call; only a restart, which reads the disk afresh,
    // brings it back.
    std::string failure;
    // Snapshot files found damaged and not used since start: at start-up (a
    // bad trailer or data checksum; left in place for inspection) and
    // received from a leader (discarded; the leader sends it again).
    std::uint64_t snapshots_damaged = 0;
};

// Storage is full: writes are refused with ErrorCode::no_space, reads go on.
inline constexpr const char* kAlarmNoSpace = "no_space";

const char* mode_name(Mode mode);

}  // namespace keel
