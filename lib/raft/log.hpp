// raft/log.hpp — the in-memory Raft log of one node and its four indexes.
//
// Holds every entry after the compaction point (prev_index): entries
// (prev_index, last_index].  The term of prev_index itself is remembered so
// an append after it can still be checked (Figure 2, prevLogTerm).
// Alongside the entries it tracks, with assertions on how each may move:
//   committed  — known committed (never decreases; never truncated)
//   persisted  — durable on this node's storage (may drop on truncation)
//   handed     — committed entries handed to the runtime to apply
//   applied    — applied by the state machine (never decreases)
//   unstable   — first index not yet handed to the runtime to persist
// Invariants: prev_index <= applied <= handed <= committed <= last_index,
//             handed <= persisted <= last_index, persisted < unstable.
//
// Durability is reported per write, never per (index, term).  Each batch
// of entries handed out for persistence is one write, named by a WriteId
// that grows by one per write.  A write's report vouches for the entries
// it wrote only as far as no later truncation (or snapshot install) has
// replaced them in this log since: a follower overwritten back and forth
// by leaders of successive terms can hold the same (index, term) twice,
// written by two writes with a truncation between them, and the report of
// the first must not vouch for the second
// (docs/decisions/0001-durability-report-ids.md).
#pragma once

#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "keel/ring_queue.hpp"
#include "raft/types.hpp"

namespace keel::raft {

class RaftLog {
public:
    // Start from a compaction point (0/0 for an empty log) and the entries
    // after it, which must be contiguous and start at prev_index + 1.  All of
    // them count as durable (they come from storage).
    void reset(Index prev_index, Term prev_term, std::vector<Entry> entries);

    Index prev_index() const { return prev_index_; }
    Term prev_term() const { return prev_term_; }
    Index first_index() const { return prev_index_ + 1; }
    Index last_index() const { return prev_index_ + entries_.size(); }
    Term last_term() const { return entries_.empty() ? prev_term_ : entries_.back().term; }
    // nullopt when index is compacted away (< prev_index) or beyond the log.
    std::optional<Term> term_at(Index index) const;
    bool matches(Index index, Term term) const { return term_at(index) == term; }
    // REQUIRES: first_index() <= index <= last_index().
    const Entry& at(Index index) const;
    // Entries in [from, to_exclusive), stopping once max_bytes of data would
    // be exceeded (but always at least one entry when the range is non-empty).
    // REQUIRES: first_index() <= from.
    std::vector<Entry> slice(Index from, Index to_exclusive, std::size_t max_bytes) const;
    // The same, appended to `out` (whose capacity a caller may reuse).
    void slice(Index from, Index to_exclusive, std::size_t max_bytes,
               std::vector<Entry>& out) const;

    // Leader: append one entry at last_index() + 1.
    void append(Entry entry);
    // Follower (Figure 2, AppendEntries receiver rules 3 and 4): "If an
    // existing entry conflicts with a new one (same index but different
    // terms), delete the existing entry and all that follow it.  Append any
    // new entries not already in the log."  REQUIRES: entries contiguous,
    // entries.front().index <= last_index() + 1.  Returns the index of the
    // first entry that was truncated, or 0 if nothing was.
    Index merge(const std::vector<Entry>& entries);
    // For fast backtracking: the largest index <= index whose term is <= term,
    // and that term (etcd's findConflictByTerm).  Falls back to prev_index.
    std::pair<Index, Term> find_conflict_by_term(Index index, Term term) const;
    // Drop entries up to and including index.  REQUIRES: index <= applied.
    void compact(Index index);

    Index committed() const { return committed_; }
    Index persisted() const { return persisted_; }
    Index handed() const { return handed_; }
    Index applied() const { return applied_; }
    Index unstable() const { return unstable_; }

    void commit_to(Index index);
    // Write `write` and every earlier one are durable (REQUIRES: it was
    // handed out).  Raises persisted to the last entry that write left in
    // the log, as far as no later truncation has replaced it since (the
    // disk as that write left it agrees with this log up to there); false
    // if that raises nothing (an old or repeated report, or everything it
    // wrote replaced meanwhile).
    bool persisted_to(WriteId write);
    void applied_to(Index index);
    // Committed and durable entries not yet handed out, up to max_bytes
    // (at least one); marks them handed.
    std::vector<Entry> take_committed(std::size_t max_bytes);
    void take_committed(std::size_t max_bytes, std::vector<Entry>& out);  // appended to out
    bool has_committed_to_hand() const;
    // Appends to `out` the entries not yet handed to the runtime to persist,
    // marks them handed and returns the id of that write (0 if there were
    // none).
    WriteId take_unstable(std::vector<Entry>& out);
    bool has_unstable() const { return unstable_ <= last_index(); }
    // After a snapshot install: everything up to index is committed, durable
    // and applied (the state machine was restored from the snapshot).
    void restore_snapshot(Index index, Term term);
    // After restart: the state machine reflects entries up to applied.
    void restore_indexes(Index committed, Index applied);

private:
    // A write handed out and not yet reported durable.
    struct PendingWrite {
        WriteId id = 0;
        // The last entry it wrote that this log still holds as written:
        // its last entry, lowered by every truncation since.
        Index vouches_to = 0;
    };

    // Entries after `index` were replaced (a truncation, a snapshot install):
    // no write handed out so far vouches for them any more.
    void writes_vouch_to_at_most(Index index);
    void check_invariants() const;

    Index prev_index_ = 0;
    Term prev_term_ = 0;
    // A deque, not a RingQueue: a leader's log grows to thousands of
    // entries, which a single block would copy as it grows and shrinks.
    std::deque<Entry> entries_;
    Index committed_ = 0;
    Index persisted_ = 0;
    Index handed_ = 0;
    Index applied_ = 0;
    Index unstable_ = 1;
    WriteId last_write_ = 0;
    // Oldest first; as many as the runtime has writes in flight.
    RingQueue<PendingWrite> pending_writes_;
};

}  // namespace keel::raft
