// sim/sim_disk.hpp — one node's simulated stable storage: the runtime's
// files, written the way the runtime writes them (docs/runtime.md, "What is
// durable, and the saved commit index").
//
//   meta       the hard state (term, vote, commit).  Written synchronously:
//              save_hard_state() is durable when it returns, as
//              wal::Wal::save_metadata is, and is NOT ordered with the WAL
//              queue: it may reach the disk before appends and truncations
//              queued ahead of it.
//   snapshot   the newest snapshot file.  A leader's snapshot is installed
//              synchronously (file, then meta with the snapshot marker),
//              before the WAL reset that follows it; the node's own
//              snapshots are written on a background queue of their own.
//   WAL        the log's records.  Appends, truncations and resets queue in
//              one FIFO; each becomes durable fsync_min_us..fsync_max_us
//              after the one before it, and completes only once every
//              earlier one has.
//
// A crash loses every queued write that has not completed.  The WAL write
// in progress (the head of the queue) may be torn (SwarmParams::torn_write_p):
// an append leaves a prefix of its records, a truncation or reset either
// reached its commit point (the fence in meta) or did not.  Synchronous
// writes are atomic (rename over the old file): a crash leaves the old or
// the new one.
//
// What a restarted node reads is what the runtime's recovery makes of these
// files (runtime/bootstrap.cpp): the newest snapshot, the WAL's records
// after it (none if the WAL holds the snapshot's index with another term:
// an old log the snapshot replaced), the commit index clamped into the log.
// durable() answers with that recovered view; raw() with the files.
//
// A lying disk (Bug::lying_disk) reports writes durable but only flushes
// now and then: a crash rolls it back to its last real flush.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "raft/core.hpp"
#include "rng.hpp"
#include "swarm.hpp"

namespace keel::sim {

// The files as they are on disk.
struct DiskFiles {
    raft::HardState hard_state;                  // meta
    std::optional<raft::SnapshotMeta> snapshot;  // the newest snapshot file
    std::string snapshot_data;
    std::vector<raft::Entry> wal;  // the WAL's records, contiguous
    raft::Index wal_next = 1;      // where the next record goes (after a reset: the reset point)
};

// What recovery makes of the files (see above).
class DurableState {
public:
    explicit DurableState(const DiskFiles& files) : f_(files) {}

    const raft::HardState& hard_state() const { return f_.hard_state; }
    const std::optional<raft::SnapshotMeta>& snapshot() const { return f_.snapshot; }
    raft::Index snapshot_index() const { return f_.snapshot ? f_.snapshot->index : 0; }
    // The last index recovery finds: the last record it keeps, or the snapshot's.
    raft::Index last_index() const;
    // The term of the entry at `index`, if recovery keeps it as an entry.
    std::optional<raft::Term> term_at(raft::Index index) const;
    // REQUIRES: term_at(index).
    const raft::Entry& at(raft::Index index) const;
    // The records recovery keeps.
    std::vector<raft::Entry> entries() const;
    // The WAL holds the snapshot's index with another term: an old log the
    // snapshot replaced, none of whose records recovery keeps.
    bool wal_replaced() const { return !wal_agrees(); }

private:
    bool wal_agrees() const;
    const DiskFiles& f_;
};

enum class DiskOpKind : std::uint8_t {
    append,         // WAL: records `entries` at wal_next
    truncate,       // WAL: drop the records after `index`
    reset,          // WAL: drop every record; the next goes at `index`
    snapshot_file,  // background queue: the node's own snapshot (`meta`, `data`) is written
};

struct DiskOp {
    DiskOpKind kind = DiskOpKind::append;
    std::vector<raft::Entry> entries;  // append
    raft::WriteId write_id = 0;        // append: the core's name for the write
    raft::Index index = 0;             // truncate, reset
    raft::SnapshotMeta meta;           // snapshot_file
    std::string data;                  // snapshot_file

    std::uint64_t id = 0;       // assigned by submit(), increasing across both queues
    std::uint64_t done_us = 0;  // when it becomes durable (unless the disk is held)
};

class SimDisk {
public:
    // Writes a node may have queued at once; more means the node is stuck.
    static constexpr std::size_t kPendingOpsMax = 100'000;

    SimDisk(const SwarmParams& params, bool lying, Rng rng);

    // A founding member's disk starts out holding raft::bootstrap()'s state.
    void format(const raft::RestoredState& initial);

    // ---- queued writes ----
    // Queues a write at time now_us (a WAL operation on the WAL's queue, a
    // snapshot file on the background queue); returns it with its id and
    // completion time.  The caller schedules the completion of the head of
    // each queue (head()).
    const DiskOp& submit(DiskOp op, std::uint64_t now_us);
    // The oldest pending write of the WAL's queue (background = false) or of
    // the background queue; null if it is empty.
    const DiskOp* head(bool background) const;
    // The WAL operations queued, oldest first (the head is in progress).
    const std::deque<DiskOp>& wal_queue() const { return wal_; }
    // The oldest pending write (which must be `id`) becomes durable.  Returns
    // an error message if applying it breaks the storage contract.
    std::optional<std::string> complete(std::uint64_t id, DiskOp* done);
    // Where the next append goes, counting queued WAL operations (the
    // runtime's wal::Wal::next_index).
    raft::Index wal_next_submitted() const { return wal_submit_next_; }
    // The id of the newest WAL operation queued, and whether every WAL
    // operation up to `id` has completed.
    std::uint64_t wal_last_submitted() const { return wal_last_submitted_; }
    bool wal_completed_through(std::uint64_t id) const { return wal_last_completed_ >= id; }
    bool wal_idle() const { return wal_.empty(); }

    // ---- synchronous writes (durable on return) ----
    void save_hard_state(const raft::HardState& hs);
    // A leader's snapshot, in two writes: the file, then meta (the snapshot
    // marker; the commit index raised to the snapshot's).
    void install_snapshot_file(const raft::SnapshotMeta& meta, const std::string& data);
    void save_snapshot_marker(const raft::SnapshotMeta& meta);

    // ---- faults ----
    void crash();
    // From now on no write takes longer than fsync_max_us (the liveness phase).
    void calm(std::uint64_t fsync_max_us) { calm_fsync_max_us_ = fsync_max_us; }
    // A script stalls the WAL: nothing on it completes until release().
    void hold() { held_ = true; }
    void release() { held_ = false; }
    bool held() const { return held_; }

    // ---- what survives ----
    DurableState durable() const { return DurableState(files_); }
    const DiskFiles& raw() const { return files_; }
    // Bumped at every change of the files; changed_from() is the lowest
    // index whose recovered entry may differ since the last reset_changes().
    std::uint64_t version() const { return version_; }
    raft::Index changed_from() const { return changed_from_; }
    void reset_changes() { changed_from_ = UINT64_MAX; }
    // What a restarted node begins with, after the repairs recovery makes
    // on the files (an interrupted reset is finished).
    raft::RestoredState recover();
    // The same, without touching the files (for the checkers).
    raft::RestoredState restored() const;

private:
    std::optional<std::string> apply(const DiskOp& op);
    void changed(raft::Index from);
    void flushed();  // a real flush point (all of it, unless lying)
    std::uint64_t latency_us();

    const SwarmParams& params_;
    bool lying_;
    Rng rng_;
    DiskFiles files_;
    DiskFiles flushed_;  // lying disk only: what a crash rolls back to
    std::deque<DiskOp> wal_;
    std::deque<DiskOp> background_;
    std::uint64_t next_id_ = 1;
    raft::Index wal_submit_next_ = 1;
    std::uint64_t wal_last_submitted_ = 0;
    std::uint64_t wal_last_completed_ = 0;
    std::uint64_t wal_last_done_us_ = 0;
    std::uint64_t background_last_done_us_ = 0;
    std::uint64_t calm_fsync_max_us_ = 0;  // 0: params_.fsync_max_us
    bool held_ = false;
    std::uint64_t version_ = 0;
    raft::Index changed_from_ = 0;
};

}  // namespace keel::sim
