// runtime/log_store.hpp — the Raft log and hard state on top of keel::wal.
//
// Mapping: a raft::Entry is a wal::Record with the same index and term,
// type = EntryType's value, payload = data.  The hard state (term, vote,
// commit) and the latest snapshot's index/term are the WAL's Metadata.
// The WAL knows nothing of Raft; this adapter is the only place that maps.
//
// Crash windows handled here:
//   - truncate_after() for a conflicting suffix is ordered by the WAL with
//     later appends, so "truncate then append" needs no wait;
//   - save_hard_state() is durable on return but not ordered with the WAL's
//     queue: it can land before appends and truncations queued ahead of it.
//     The commit index it records must be covered by completed writes alone
//     (the core hands out min(commit, persisted), by write id: see
//     raft/log.hpp), never by writes still queued;
//   - reset() (snapshot installed from the leader) is called only after the
//     snapshot file is published, so a crash in between leaves a snapshot
//     plus an old log, which recover() reconciles (entries not matching
//     the snapshot's term at its index are ignored);
//   - compaction runs only for snapshots published before the latest reset
//     (a generation counter), so it never races a reset;
//   - a durable state machine's compaction point (save_floor) is durable in
//     the metadata before the log is compacted to it, so a crash in between
//     leaves the point with the entries still behind it (skipped at open).
//
// Threads: append/truncate/reset/save_hard_state under the replica's core
// lock (whichever thread holds it);
// compact() from the background thread; reads at open only.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.hpp"
#include "keel/wal/wal.hpp"
#include "raft/types.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

// A durable state machine's compaction point as LogStore::floor() keeps it
// in the WAL metadata's opaque blob (empty: none).  corruption, naming
// `dir`, when the blob does not decode.
Result<std::optional<raft::SnapshotMeta>> decode_floor(std::string_view blob,
                                                       const std::string& dir);

class LogStore {
public:
    static Result<std::unique_ptr<LogStore>> open(const std::string& dir, wal::Options options);

    // ---- recovery ----
    bool fresh() const;  // nothing was ever stored (no record, no metadata)
    raft::HardState hard_state() const;
    // The stored entries after `snapshot_index` (all of them when 0),
    // consistent with a snapshot at (snapshot_index, snapshot_term): if the
    // log holds that index with another term, nothing after it is valid.
    Result<std::vector<raft::Entry>> entries_after(raft::Index snapshot_index,
                                                   raft::Term snapshot_term) const;
    // Whether the log holds `index` with another term than `term`: an old
    // log that a snapshot at (index, term) replaced.
    Result<bool> replaced_by_snapshot(raft::Index index, raft::Term term) const;

    // ---- writes (under the core lock) ----
    // Appends `entries`, first truncating a conflicting suffix when
    // entries.front().index is not the next index.  `done` runs on the
    // thread that writes them (`writer`: see wal::Wal::append) once they are
    // durable.  The entries' payloads are moved out; the caller may reuse
    // the vector.
    Status append(std::vector<raft::Entry>& entries, wal::Wal::Writer writer,
                  wal::Wal::Callback done);
    // Durable before returning (term/vote changes must be, Figure 2).
    // no_space (nothing saved) when the disk has no room for the metadata
    // file: the caller must not act on the new term or vote until a later
    // call succeeds.
    Status save_hard_state(const raft::HardState& hs);
    // Drops the whole log: the next append is at snapshot.index + 1.
    Status reset_after_snapshot(raft::Index index, raft::Term term, wal::Wal::Callback done);
    std::uint64_t generation() const { return generation_.load(); }

    // ---- compaction (background thread) ----
    // Drops records up to `index` if no reset happened since `generation`,
    // and only once that deletes at least one segment file (until then the
    // records stay; every reader skips what a snapshot covers).  The runtime
    // passes the older kept snapshot's index (SnapshotStore::fallback_index),
    // so that a restart can fall back to it.  no_space (nothing changed)
    // when the metadata update finds no room.
    Status compact_through(raft::Index index, std::uint64_t generation);

    // ---- a durable state machine's compaction point ----
    // Where the log may be (or was) compacted on a durable state machine's
    // word, behind no snapshot (raft::Core::on_state_machine_durable): the
    // index, its term and the configuration as of it, kept in the WAL
    // metadata's opaque blob (docs/wal.md, "Metadata").  nullopt when none
    // was recorded; corruption when the blob does not decode.
    Result<std::optional<raft::SnapshotMeta>> floor() const;
    // Records the point, durable before returning (under the core lock);
    // compact_through(floor.index) may follow.  no_space: nothing saved.
    Status save_floor(const raft::SnapshotMeta& floor);

    wal::Wal& wal() { return *wal_; }
    const wal::Wal& wal() const { return *wal_; }

private:
    explicit LogStore(std::unique_ptr<wal::Wal> wal);

    std::unique_ptr<wal::Wal> wal_;
    Mutex shape_mu_;  // serialises reset with compaction
    std::atomic<std::uint64_t> generation_{0};
    wal::Metadata meta_;  // last saved (under the core lock)
};

}  // namespace keel::runtime
