// raft/progress.hpp — the leader's view of one follower's log (etcd's
// tracker.Progress): how far it matches, what to send next, and how much
// may be in flight.
//
//   probe:     we do not know where the follower's log ends; send one append
//              and wait for its answer before sending another.
//   replicate: the follower is keeping up; pipeline appends optimistically,
//              at most max_inflight_messages unacknowledged at once.
//   snapshot:  the follower needs a snapshot; send nothing until the
//              runtime reports the snapshot streamed (or it failed).
// Invariant: match < next.
#pragma once

#include <cstddef>
#include <cstdint>

#include "keel/ring_queue.hpp"
#include "raft/peer_progress.hpp"
#include "raft/types.hpp"

namespace keel::raft {

// The last entry index of each append message in flight, oldest first.
class Inflights {
public:
    explicit Inflights(std::size_t capacity) : capacity_(capacity) {}
    bool full() const { return queue_.size() >= capacity_; }
    std::size_t count() const { return queue_.size(); }
    void add(Index last_index);
    // A response acknowledged everything up to index.
    void free_up_to(Index index);
    void free_first_one();
    void reset() { queue_.clear(); }

private:
    std::size_t capacity_;
    RingQueue<Index> queue_;
};

struct Progress {
    using State = ProgressState;  // shared with PeerProgress (peer_progress.hpp)

    explicit Progress(Index next_index, std::size_t max_inflight_messages)
        : next(next_index), inflights(max_inflight_messages) {}

    Index match = 0;
    Index next = 1;
    State state = State::probe;
    bool probe_sent = false;     // probe: an append is out, wait for its answer
    Index pending_snapshot = 0;  // snapshot: index of the snapshot being sent
    bool recent_active = false;  // heard from it since the last CheckQuorum
    // An append (or a commit notice) left for it since the leader's last
    // heartbeat tick: it need not be heartbeaten at the next one
    // (replication.cpp, heartbeat_needed).
    bool append_since_heartbeat = false;
    // Answered since this leader was elected, last woke from quiescence, or
    // was told its process is down (Core::peer_down): a leader quiesces only
    // once every follower has (quiescence.cpp).
    bool heard_since_wake = false;
    Index commit_sent = 0;  // the highest commit index sent to it (appends, heartbeats)
    // The last index sent to it (next - 1) at the leader's latest heartbeat
    // tick and at the one before: entries still unacknowledged after a whole
    // heartbeat interval may have been lost (replication.cpp,
    // append_due_on_answer).
    Index sent_at_tick = 0;
    Index sent_at_previous_tick = 0;
    // What every heartbeat tick does to it, whether a heartbeat leaves or
    // not (tick_heartbeat, and count_quiet_ticks for one that sends nothing).
    void end_heartbeat_interval() {
        append_since_heartbeat = false;
        sent_at_previous_tick = sent_at_tick;
        sent_at_tick = next - 1;
    }
    // The latest heartbeat it acknowledged (its sequence number and the tick
    // it was sent at): ReadIndex rounds and the lease (read_index.cpp).
    std::uint64_t acked_heartbeat_seq = 0;
    std::int64_t acked_heartbeat_tick = kNeverTick;
    static constexpr std::int64_t kNeverTick = INT64_MIN / 4;
    // Bumped by every change of state.  Appends carry it (Message::context)
    // and the follower's answer echoes it, so a rejection of an append sent
    // in an earlier phase is known stale: on a link that reorders, the late
    // rejections of an abandoned window would otherwise knock a follower
    // back to probe again and again, each time followed by a fresh window
    // (a message storm).
    std::uint64_t phase = 0;
    Inflights inflights;

    void become_probe();
    void become_replicate();
    void become_snapshot(Index snapshot_index);
    // A successful append response acknowledged `index`; false if stale.
    bool maybe_update(Index index);
    // Replicate: entries up to last are on their way.
    void optimistic_update(Index last) { next = last + 1; }
    // A rejection of prevLogIndex `rejected` with the probe hint; false if stale.
    bool maybe_decrease_to(Index rejected, Index hint_index);
    bool is_paused() const;
};

}  // namespace keel::raft
