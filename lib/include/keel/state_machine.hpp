// keel/state_machine.hpp — what an application implements to be replicated.
//
// keel applies committed log entries to the StateMachine, in log order, on
// its apply thread, so that a slow apply cannot hold up the network or the
// WAL.  One exception, inline apply (NodeOptions::inline_apply, on by
// default): a small batch, predicted from measured apply times to be quick,
// is applied by the thread that committed it, saving the proposer a thread
// handoff, while the apply thread is idle.  A lone voter (single-node mode)
// applies such a batch (up to about one write's time to durability, at
// least 50 us) on the WAL's flusher thread right after the fsync that made
// it durable; a cluster member (up to 20 us) on its I/O thread right after
// the message that committed it.  A batch predicted to take longer, or one
// that would take a snapshot, goes to the apply thread, and a batch on the
// I/O thread that takes over 1 ms turns inline apply there off for good.
// Either way the three member functions are called one at a time, never
// concurrently with each other, each call seeing the effects of the
// previous ones; the function returned by snapshot() is the one exception
// (see below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.hpp"

namespace keel {

// One committed entry handed to the state machine.
struct CommittedEntry {
    std::uint64_t index = 0;  // log index: unique, strictly increasing; usable as a revision
    std::uint64_t term = 0;
    std::string_view data;    // what was proposed; valid only during apply()
};

// Streams a snapshot out.  Implemented by keel (writes a file, fsynced once
// the writer function returns ok).
class SnapshotWriter {
public:
    virtual ~SnapshotWriter() = default;
    virtual Status write(std::string_view bytes) = 0;
};

// Streams a snapshot in.  read() returns the number of bytes read, 0 at end.
class SnapshotReader {
public:
    virtual ~SnapshotReader() = default;
    virtual Result<std::size_t> read(char* buffer, std::size_t capacity) = 0;
    virtual std::uint64_t size_bytes() const = 0;
};

// Writes a snapshot; returned by StateMachine::snapshot().
using SnapshotFunction = std::function<Status(SnapshotWriter&)>;

class StateMachine {
public:
    virtual ~StateMachine() = default;

    // Apply `entries` (in index order; only the application's own entries:
    // Raft's no-op and membership entries are not passed, so indexes may
    // skip, but never repeat or go back).  Write one result per
    // entry into `results` (resized by keel to entries.size()); the result
    // of an entry is handed back to whoever proposed it (e.g. "ok" or a
    // compare-and-set failure).  Must be deterministic: every replica applies
    // the same entries and must reach the same state.  Entries are durable
    // on a quorum before they are applied; apply is never undone.
    virtual void apply(const std::vector<CommittedEntry>& entries,
                       std::vector<std::string>& results) = 0;

    // Capture the state as of the last applied entry and return a function
    // that writes it.  snapshot() itself runs on the apply thread between two
    // apply() calls and should be quick (take a copy or an immutable view);
    // the returned function runs on a background thread *concurrently with
    // later apply() calls*, so it must not touch mutable state.  This split
    // is what keeps snapshots from stalling the write path.
    virtual SnapshotFunction snapshot() = 0;

    // Replace the whole state with the snapshot's (on restart, or when the
    // leader sends a snapshot to a follower that fell too far behind).
    virtual Status restore(SnapshotReader& reader) = 0;
};

}  // namespace keel
