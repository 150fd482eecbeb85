// runtime/durability_gate.hpp — what may leave this node, or be reported
// durable to its core, after which write.  Pure: no thread, no I/O, no
// clock; the replica feeds it what it queued and what the disk completed.
//
// Two rules of Raft's Figure 2, as the runtime carries them out:
//   - a term or vote change is durable before any message that depends on
//     it leaves.  The replica saves it at once (a commit-only change waits
//     for the next save).  On a WAL of the group's own it is a metadata
//     write, durable on return; when the disk has no room, nothing leaves
//     (messages are dropped: Raft retransmits) until a retry saves it.  On
//     a shared WAL it is a write like an append (hard_state_queued): every
//     message leaves only once it is durable (held here meanwhile, not
//     dropped);
//   - an acknowledgement of entries leaves only once every write queued
//     before it is durable, and the core hears which of its writes is
//     durable by write id (never by the (index, term) of its last entry,
//     which an earlier write overwritten since may share: raft/actions.hpp).
//
// Every append and reset the replica queues on the WAL gets a sequence
// number here; the WAL completes them in that order (docs/wal.md).
//
// Threads: none of its own; the replica calls it under its core lock.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "keel/ring_queue.hpp"
#include "raft/core.hpp"

namespace keel::runtime {

class DurabilityGate {
public:
    // ---- the WAL's writes ----
    // An append of the core's entries (Actions::write_id `write`) was queued.
    // Returns its sequence number.
    std::uint64_t appended(raft::WriteId write);
    // A reset of the whole log (after a snapshot install) was queued.
    std::uint64_t reset();
    // A hard state was queued as a WAL write (LogStore::queue_hard_state).
    // Until it is durable every message waits in hold_until_durable.  Returns its
    // sequence number.
    std::uint64_t hard_state_queued();

    bool all_durable() const { return in_flight_.empty(); }
    // A queued hard state is not durable yet: no message may leave now.
    bool hard_state_in_flight() const { return hard_state_seq_ != 0; }

    // Messages to send once every write queued so far is durable: held here,
    // or left in `messages` (for the caller to send at once) when no write
    // is in flight.
    void hold_until_durable(std::vector<raft::Message>& messages);

    // Writes up to and including `seq` are durable: tells `core` the latest
    // of the core's writes among them (by its write id), and moves the
    // messages that waited for them to the end of `released`, in order.
    void durable_through(std::uint64_t seq, raft::Core& core, std::vector<raft::Message>& released);

    // ---- the term and vote ----
    // The hard state the node started from (on disk already).
    void start_from(const raft::HardState& saved) { hard_state_ = saved; }
    // The core's hard state after a batch.  Returns true when it must be
    // saved now, before the batch's messages leave: its term or vote
    // changed, or an earlier change is still unsaved.  A commit-only change
    // is only recorded (saved with the next one, or at stop).
    bool needs_save(const raft::HardState& hs);
    // The latest hard state, saved or not: what a save writes.
    const raft::HardState& hard_state() const { return hard_state_; }
    // The save succeeded.  Returns true if messages were held back until now.
    bool saved();
    // The save found no room: no message may leave until saved() is called.
    void save_failed() { unsaved_ = true; }
    // False while a term or vote change is not on disk.
    bool may_send() const { return !unsaved_; }

private:
    struct InFlight {
        std::uint64_t seq = 0;
        raft::WriteId write = 0;  // the core's name for it (0 for a reset)
    };

    std::uint64_t last_seq_ = 0;
    std::uint64_t hard_state_seq_ = 0;  // the latest queued hard state's, 0 once durable
    RingQueue<InFlight> in_flight_;
    RingQueue<std::pair<std::uint64_t, std::vector<raft::Message>>> held_;
    raft::HardState hard_state_;
    bool unsaved_ = false;
};

}  // namespace keel::runtime
