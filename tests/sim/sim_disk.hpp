// sim/sim_disk.hpp — one simulated process's stable storage: the runtime's
// files, written the way the runtime writes them (docs/runtime.md, "What is
// durable, and the saved commit index"), for every Raft group the process
// hosts (docs/simulator.md, "Several groups per process").
//
// SimDrive is the process's disk: one fsync stream shared by its groups.
// SimDisk is one group's files on it:
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
//   WAL        the log's records.  Appends, truncations and resets of every
//              group queue in one FIFO on the drive; each becomes durable
//              fsync_min_us..fsync_max_us after the one before it, and
//              completes only once every earlier one has.  With batching
//              (several groups), an operation queued while an earlier batch
//              is being synced joins the batch queued behind it, and the
//              whole batch becomes durable at once: one fsync for several
//              groups' records.
//
// A crash of the drive loses every queued write of every group that has not
// completed.  The WAL batch in progress (the head of the queue) may be torn
// (SwarmParams::torn_write_p): a prefix of its operations reaches the disk,
// the last of them an append cut to a prefix of its records, or a
// truncation or reset that reached its commit point (the fence in meta) or
// did not.  Synchronous writes are atomic (rename over the old file): a
// crash leaves the old or the new one.
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
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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

    std::uint64_t group = 0;    // the group whose files it writes (set by SimDisk::submit)
    std::uint64_t id = 0;       // assigned by submit(), increasing across both queues
    std::uint64_t batch = 0;    // WAL: the fsync that makes it durable (increasing)
    std::uint64_t done_us = 0;  // when it becomes durable (unless the drive is held)
};

class SimDrive;

// One group's files on its process's drive.  Queued writes and faults
// belong to the drive (drive()); the calls below that take them are
// shorthands for the drive's.
class SimDisk {
public:
    SimDisk(SimDrive& drive, std::uint64_t group) : drive_(drive), group_(group) {}
    SimDisk(const SimDisk&) = delete;
    SimDisk& operator=(const SimDisk&) = delete;

    SimDrive& drive() const { return drive_; }
    std::uint64_t group() const { return group_; }

    // A founding member's disk starts out holding raft::bootstrap()'s state.
    void format(const raft::RestoredState& initial);

    // ---- queued writes (on the drive's queues) ----
    // Queues a write of this group at time now_us (a WAL operation on the
    // drive's WAL queue, a snapshot file on its background queue); returns
    // it with its id and completion time.  The caller schedules the
    // completion of the head of each queue (head()).
    const DiskOp& submit(DiskOp op, std::uint64_t now_us);
    // The drive's oldest pending write (of any group) on the WAL's queue
    // (background = false) or on the background queue; null if it is empty.
    const DiskOp* head(bool background) const;
    // The drive's WAL operations queued, of every group, oldest first.
    const std::deque<DiskOp>& wal_queue() const;
    // The drive's oldest pending write (which must be `id`) becomes durable.
    std::optional<std::string> complete(std::uint64_t id, DiskOp* done);
    // Where this group's next append goes, counting queued WAL operations
    // (the runtime's wal::Wal::next_index).
    raft::Index wal_next_submitted() const { return wal_submit_next_; }
    // The id of this group's newest WAL operation queued, and whether every
    // WAL operation of the drive up to `id` has completed.
    std::uint64_t wal_last_submitted() const { return wal_last_submitted_; }
    bool wal_completed_through(std::uint64_t id) const;
    bool wal_idle() const;

    // ---- synchronous writes (durable on return) ----
    void save_hard_state(const raft::HardState& hs);
    // A leader's snapshot, in two writes: the file, then meta (the snapshot
    // marker; the commit index raised to the snapshot's).
    void install_snapshot_file(const raft::SnapshotMeta& meta, const std::string& data);
    void save_snapshot_marker(const raft::SnapshotMeta& meta);

    // ---- faults: the drive's, so every group of the process at once ----
    void crash();
    void calm(std::uint64_t fsync_max_us);
    void hold();
    void release();
    bool held() const;

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
    friend class SimDrive;
    std::optional<std::string> apply(const DiskOp& op);
    void changed(raft::Index from);
    void flushed();  // a real flush point (all of it, unless lying)
    // The drive crashed: the files are what reached the disk.
    void crashed(std::uint64_t last_id);

    SimDrive& drive_;
    std::uint64_t group_;
    DiskFiles files_;
    DiskFiles flushed_;  // lying disk only: what a crash rolls back to
    raft::Index wal_submit_next_ = 1;
    std::uint64_t wal_last_submitted_ = 0;
    std::uint64_t version_ = 0;
    raft::Index changed_from_ = 0;
};

// One process's disk: the queues, their timing and the faults, shared by
// the files of every group the process hosts.
class SimDrive {
public:
    // Writes a drive may have queued at once; more means a node is stuck.
    static constexpr std::size_t kPendingOpsMax = 100'000;

    // `batching`: WAL operations queued during an fsync share the next one
    // (several groups); without it each has an fsync of its own.
    // `early_ack` (Bug::group_commit_early_ack): the completion of a batch
    // counts the batch queued behind it as completed too.
    SimDrive(const SwarmParams& params, bool lying, Rng rng, bool batching = false,
             bool early_ack = false);
    SimDrive(const SimDrive&) = delete;
    SimDrive& operator=(const SimDrive&) = delete;

    // The files of `group`, created empty on first use.
    SimDisk& group(std::uint64_t group);
    const std::map<std::uint64_t, std::unique_ptr<SimDisk>>& groups() const { return groups_; }

    const DiskOp& submit(std::uint64_t group, DiskOp op, std::uint64_t now_us);
    const DiskOp* head(bool background) const;
    const std::deque<DiskOp>& wal_queue() const { return wal_; }
    // The oldest pending write (which must be `id`) becomes durable in its
    // group's files.  Returns an error message if applying it breaks the
    // storage contract.
    std::optional<std::string> complete(std::uint64_t id, DiskOp* done);
    std::uint64_t wal_last_submitted() const { return wal_last_submitted_; }
    bool wal_completed_through(std::uint64_t id) const { return wal_last_completed_ >= id; }
    bool wal_idle() const { return wal_.empty(); }

    // ---- faults ----
    // Every group's unsynced writes are lost at once (see above).
    void crash();
    // From now on no write takes longer than fsync_max_us (the liveness phase).
    void calm(std::uint64_t fsync_max_us) { calm_fsync_max_us_ = fsync_max_us; }
    // A script or the swarm stalls the WAL: nothing on it completes until release().
    void hold() { held_ = true; }
    void release() { held_ = false; }
    bool held() const { return held_; }
    // The head's completion came while the WAL was held; whoever releases it
    // schedules it again.  Cleared by a crash.
    void set_stalled() { stalled_ = true; }
    bool take_stalled() { return std::exchange(stalled_, false); }

    // WAL batches (fsyncs) queued so far, and those that carried the
    // writes of more than one group.
    std::uint64_t batches() const { return batches_; }
    std::uint64_t shared_batches() const { return shared_batches_; }

private:
    friend class SimDisk;
    std::uint64_t latency_us();

    const SwarmParams& params_;
    bool lying_;
    bool batching_;
    bool early_ack_;
    Rng rng_;
    std::map<std::uint64_t, std::unique_ptr<SimDisk>> groups_;
    std::deque<DiskOp> wal_;
    std::deque<DiskOp> background_;
    std::uint64_t next_id_ = 1;
    std::uint64_t next_batch_ = 1;
    std::uint64_t wal_last_submitted_ = 0;
    std::uint64_t wal_last_completed_ = 0;
    std::uint64_t wal_last_done_us_ = 0;
    std::uint64_t background_last_done_us_ = 0;
    std::uint64_t calm_fsync_max_us_ = 0;  // 0: params_.fsync_max_us
    bool held_ = false;
    bool stalled_ = false;
    std::uint64_t batches_ = 0;
    std::uint64_t shared_batches_ = 0;
    std::uint64_t tail_group_ = 0;  // the group of the newest batch's first write
    bool tail_shared_ = false;      // the newest batch holds several groups' writes
};

}  // namespace keel::sim
