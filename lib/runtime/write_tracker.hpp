// runtime/write_tracker.hpp — which of the replica's WAL writes are durable,
// what that tells the core, and which held messages it releases.
//
// Every append and reset the replica queues on the WAL gets a sequence
// number; the WAL completes them in that order (docs/wal.md: truncations,
// appends and resets run in submission order).  Messages the core wants
// sent only once its writes are durable (Actions::messages_after_persist)
// wait here for every write queued before them.
//
// Threads: all of it under the replica's core lock.  The WAL's completion
// callbacks only publish the highest durable sequence number (an atomic in
// the replica); the lock holder hands it to durable_through().
#pragma once

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "raft/core.hpp"

namespace keel::runtime {

class WriteTracker {
public:
    // An append of the core's entries (Actions::write_id `write`) was queued.
    // Returns its sequence number.
    std::uint64_t appended(raft::WriteId write);
    // A reset of the whole log (after a snapshot install) was queued.
    std::uint64_t reset();

    bool all_durable() const { return in_flight_.empty(); }

    // Messages to send once every write queued so far is durable: held here,
    // or left in `messages` (for the caller to send at once) when no write
    // is in flight.
    void hold_until_durable(std::vector<raft::Message>& messages);

    // Writes up to and including `seq` are durable: tells `core` the latest
    // of the core's writes among them (by its write id: never by the
    // (index, term) of its last entry, which an earlier write overwritten
    // since may share: raft/actions.hpp), and moves the messages that waited
    // for them to the end of `released`, in order.
    void durable_through(std::uint64_t seq, raft::Core& core, std::vector<raft::Message>& released);

private:
    struct InFlight {
        std::uint64_t seq = 0;
        raft::WriteId write = 0;  // the core's name for it (0 for a reset)
    };

    std::uint64_t last_seq_ = 0;
    std::deque<InFlight> in_flight_;
    std::deque<std::pair<std::uint64_t, std::vector<raft::Message>>> held_;
};

}  // namespace keel::runtime
