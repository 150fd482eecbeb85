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
// the message that committed it.  A batch predicted to take longer goes to
// the apply thread, and a batch on the I/O thread that takes over 1 ms turns
// inline apply there off for good.  snapshot() always runs on the apply
// thread (an inline batch that makes one due leaves it to that thread).
// Either way the member functions are called one at a time, never
// concurrently with each other, each call seeing the effects of the
// previous ones; the function returned by snapshot() is the one exception
// (see below).
//
// Durable state machines.  A state machine that keeps its state on disk
// itself reports how far that state goes with applied_index() (the default,
// 0, means "in memory": keel restores it from keel's snapshot and replays the
// log after it at every open).  What such a state machine may assume:
//   - entries come once each, in index order, and never an entry at or
//     below the applied_index() it reported at open;
//   - after a crash, keel replays from its applied_index(): entries after
//     its last durable point come again (a state machine that made some of
//     them durable after it last answered skips them by index);
//   - keel compacts its own log (the WAL) up to what applied_index()
//     reports, so the state machine must never lose what it reported there:
//     at the next open, an applied_index() below the point keel compacted
//     to (with no keel snapshot to restore instead), or beyond the log's
//     last index, fails Node::open with an error;
//   - keel's own automatic snapshots are not needed to bound the log (set
//     NodeOptions::snapshot_every_entries = 0); a follower that lags behind
//     the compacted log still gets one, taken through snapshot() on the
//     leader and installed through restore() on the follower.
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
    std::string_view data;  // what was proposed; valid only during apply()
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
    // The index of the last entry the snapshot holds: what a durable state
    // machine's applied_index() reports once the restored state is durable.
    virtual std::uint64_t index() const { return 0; }
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

    // A durable state machine (see the top of this file): the index of the
    // last entry whose effects it has made durable in its own storage, so
    // that they survive a crash; 0 for a state machine that keeps nothing
    // (the default).  Never decreases (a restore() moves it on to
    // reader.index(), which is past it).  keel asks once at open, before anything is applied or
    // restored (on the thread that calls Node::open), and then after each
    // batch of apply() calls, like the other functions: one call at a time,
    // never concurrently with them.  If the state machine's own threads
    // change what it returns (it makes writes durable in the background),
    // it must synchronise with them.  Quick: it is on the apply path.
    // A state machine that keeps its state in memory must not override it
    // (mind a method of this name and signature kept for another purpose:
    // it overrides this one, and keel would compact its log behind it).
    virtual std::uint64_t applied_index() const { return 0; }
};

}  // namespace keel
