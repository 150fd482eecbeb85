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

// Single-node mode: how long the WAL flusher looks for the next append
// before sleeping (wal::Options::idle_spin_us).  A closed-loop client's next
// proposal comes microseconds after its answer, a network client's one
// loopback round trip later; finding the flusher awake saves a thread
// wakeup per write.  The spin holds its core, never yields (a yielding
// spinner waits out a CPU-bound process's whole time slice when its work
// arrives), and costs at most this much CPU per write; an idle node
// sleeps.  Zero in cluster mode, where more threads share the cores.
inline constexpr std::uint32_t kSingleModeFlusherSpinUs = 250;

// A durable state machine's compaction point as LogStore::floor() keeps it
// in the WAL metadata's opaque blob (empty: none).  corruption, naming
// `dir`, when the blob does not decode.
Result<std::optional<raft::SnapshotMeta>> decode_floor(std::string_view blob,
                                                       const std::string& dir);

// A group's Raft log and hard state.  Two stores implement it: one on a WAL
// of its own (keel::Node's, below: LogStore::open), and one on the WAL its
// process shares among its groups (shared_wal.hpp).
class LogStore {
public:
    // The store on a WAL of its own in `dir` (the layout keel::Node always had).
    static Result<std::unique_ptr<LogStore>> open(const std::string& dir, wal::Options options);
    virtual ~LogStore() = default;

    // ---- recovery ----
    virtual bool fresh() const = 0;  // nothing was ever stored (no record, no metadata)
    virtual raft::HardState hard_state() const = 0;
    // The stored entries after `snapshot_index` (all of them when 0),
    // consistent with a snapshot at (snapshot_index, snapshot_term): if the
    // log holds that index with another term, nothing after it is valid.
    virtual Result<std::vector<raft::Entry>> entries_after(raft::Index snapshot_index,
                                                           raft::Term snapshot_term) const = 0;
    // Whether the log holds `index` with another term than `term`: an old
    // log that a snapshot at (index, term) replaced.
    virtual Result<bool> replaced_by_snapshot(raft::Index index, raft::Term term) const = 0;
    // The first index the log still holds (what is before it was compacted
    // into a snapshot), and the index the next append must start at.
    virtual raft::Index first_index() const = 0;
    virtual raft::Index next_index() const = 0;
    // Holds no entry (a reset or a compaction may have moved its indexes).
    virtual bool empty() const = 0;
    // Recovery is over: what the store kept only to answer it may go.
    virtual void forget_recovered() {}

    // ---- writes (under the core lock) ----
    // Appends `entries`, first truncating a conflicting suffix when
    // entries.front().index is not the next index.  `done` runs on the
    // thread that writes them (`writer`: see wal::Wal::append) once they are
    // durable.  The entries' payloads are moved out; the caller may reuse
    // the vector.
    virtual Status append(std::vector<raft::Entry>& entries, wal::Wal::Writer writer,
                          wal::Wal::Callback done) = 0;
    // Durable before returning (term/vote changes must be, Figure 2).
    // no_space (nothing saved) when the disk has no room for the metadata
    // file: the caller must not act on the new term or vote until a later
    // call succeeds.
    virtual Status save_hard_state(const raft::HardState& hs) = 0;
    // Whether the store queues a hard state as a write of its WAL
    // (queue_hard_state), as a shared WAL's groups do; false: only
    // save_hard_state, a metadata write.
    virtual bool queues_hard_state() const { return false; }
    // Queues `hs` after every write queued so far, like append: `done`
    // runs on the writing thread once it is durable, and no message that
    // depends on it may leave before (Figure 2).  On a restart the latest
    // durable one wins over any earlier one.  Any error: nothing queued.
    // REQUIRES: queues_hard_state().
    virtual Status queue_hard_state(const raft::HardState& hs, wal::Wal::Callback done) {
        (void)hs;
        (void)done;
        return Status(ErrorCode::unsupported, "this store saves its hard state in its metadata");
    }
    // Drops the whole log: the next append is at snapshot.index + 1.
    virtual Status reset_after_snapshot(raft::Index index, raft::Term term,
                                        wal::Wal::Callback done) = 0;
    std::uint64_t generation() const { return generation_.load(); }
    // Single-node mode (a lone voter, no timer) or not: the WAL's flusher
    // may spin for the next write in the former.
    virtual void set_single_mode(bool single) = 0;

    // ---- compaction (background thread) ----
    // Drops records up to `index` if no reset happened since `generation`,
    // and only once that deletes at least one segment file (until then the
    // records stay; every reader skips what a snapshot covers).  The runtime
    // passes the older kept snapshot's index (SnapshotStore::fallback_index),
    // so that a restart can fall back to it.  no_space (nothing changed)
    // when the metadata update finds no room.
    virtual Status compact_through(raft::Index index, std::uint64_t generation) = 0;
    // Whether compact_through(index) would now let a segment file go (a
    // compaction short of that only costs a metadata write).
    virtual bool compaction_frees(raft::Index index) const = 0;

    // ---- a durable state machine's compaction point ----
    // Where the log may be (or was) compacted on a durable state machine's
    // word, behind no snapshot (raft::Core::on_state_machine_durable): the
    // index, its term and the configuration as of it, kept in the WAL's
    // metadata (docs/wal.md, "Metadata").  nullopt when none was recorded;
    // corruption when it does not decode.
    virtual Result<std::optional<raft::SnapshotMeta>> floor() const = 0;
    // Records the point, durable before returning (under the core lock);
    // compact_through(floor.index) may follow.  no_space: nothing saved.
    virtual Status save_floor(const raft::SnapshotMeta& floor) = 0;

    // The WAL underneath (shared with other groups or not): its health,
    // statistics and write_queued().
    virtual wal::Wal& wal() = 0;
    virtual const wal::Wal& wal() const = 0;

protected:
    LogStore() = default;
    mutable Mutex shape_mu_;  // serialises reset with compaction
    std::atomic<std::uint64_t> generation_{0};
};

// The floor's encoding (decode_floor), for the stores.
std::string encode_floor(const raft::SnapshotMeta& floor);

}  // namespace keel::runtime
