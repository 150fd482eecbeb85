// runtime/status_board.hpp — what status() and member() report, published
// so that they never take the core lock.
//
// The core lock's holder publishes the core's view after each batch
// (publish); other threads count what they see (the counters, the refusals
// of peers' messages).  status() copies the board and adds what other
// parts of the node know at read time (the apply thread's index, the WAL's
// statistics).  A reader holding the core lock would strand work other
// threads leave for the holder (core_lock.hpp): in single-node mode, where
// nothing else runs the core, a proposal for good.
//
// Threads: publish and the set_* calls under the replica's core lock; the
// rest from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "keel/node.hpp"
#include "raft/core.hpp"
#include "runtime/latency_histogram.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

// The public name of a core role (NodeStatus::role, the observer's events).
Role public_role(raft::Role role);

class StatusBoard {
public:
    explicit StatusBoard(raft::NodeId self) { status_.id = self; }

    // The core's view after a batch: role, term, leader, indexes, mode, and
    // the leader's view of each member's log (0 on a follower).
    void publish(const raft::Core& core) EXCLUDES(mu_);
    void set_members(std::vector<MemberStatus> members) EXCLUDES(mu_);
    void set_cluster_id(std::string hex) EXCLUDES(mu_);
    void set_failure(std::string why) EXCLUDES(mu_);
    // The newest snapshot is at least `index` (only ever raised, except by
    // set_snapshot_index: a leader's snapshot installed).
    void raise_snapshot_index(raft::Index index) EXCLUDES(mu_);
    void set_snapshot_index(raft::Index index) EXCLUDES(mu_);

    // The published status, with the refusals counted so far.
    NodeStatus read() const EXCLUDES(mu_, rejected_mu_);
    Result<MemberSpec> member(raft::NodeId id) const EXCLUDES(mu_);

    // A peer's message was refused for `reason`; returns the count so far.
    std::uint64_t count_rejection(std::string_view reason) EXCLUDES(rejected_mu_);

    // A message from a peer is stepped into the core: counted by kind
    // (NodeStatus::messages_received).  Under the core lock: one writer.
    void count_received(const raft::Message& m);
    MessageCounts received() const;

    // Counters, written by whoever sees the event, read by status().
    std::atomic<std::uint64_t> elections{0};
    std::atomic<std::uint64_t> proposals_accepted{0};  // written under the core lock only
    std::atomic<std::uint64_t> snapshots_rejected{0};  // received ones found damaged
    LatencyHistogramRecorder commit_latency;
    LatencyHistogramRecorder fsync_latency;

private:
    // MessageCounts' fields, in its order.
    static constexpr std::size_t kMessageKinds = 8;
    std::array<std::atomic<std::uint64_t>, kMessageKinds> received_{};
    mutable Mutex mu_;
    NodeStatus status_ GUARDED_BY(mu_);
    mutable Mutex rejected_mu_;
    std::map<std::string, std::uint64_t, std::less<>> rejected_ GUARDED_BY(rejected_mu_);
};

}  // namespace keel::runtime
