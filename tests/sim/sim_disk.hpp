// sim/sim_disk.hpp — one node's simulated stable storage.
//
// It holds what survives a crash: the hard state, the latest snapshot (its
// metadata and data) and the log after it.  Writes queue up in one FIFO,
// like a write-ahead log, and each becomes durable at its own completion
// time, after every write queued before it.  A crash throws away every write
// not yet durable; what was durable stays exactly as it was.
//
// A lying disk (Bug::lying_disk) reports writes durable but only flushes
// now and then: a crash rolls it back to its last real flush, losing writes
// the core was told were safe.
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

struct DurableState {
    raft::HardState hard_state;
    std::optional<raft::SnapshotMeta> snapshot;
    std::string snapshot_data;
    std::vector<raft::Entry> log;  // contiguous, right after the snapshot

    raft::Index last_index() const;
    // The term of the entry at `index`, if this state holds it as an entry.
    std::optional<raft::Term> term_at(raft::Index index) const;
};

// `batch` is one atomic WAL write: the entries of an Actions batch and its
// hard state (a real runtime writes both in one record group), so a term can
// never be durable without the entries appended in it or the reverse.
enum class DiskOpKind : std::uint8_t { batch, install_snapshot, save_snapshot };

struct DiskOp {
    DiskOpKind kind = DiskOpKind::batch;
    std::optional<raft::HardState> hard_state;  // batch
    std::vector<raft::Entry> entries;           // batch
    raft::WriteId write_id = 0;                 // batch with entries: the core's name for it
    raft::SnapshotMeta meta;                    // install_snapshot, save_snapshot
    std::string data;                           // install_snapshot, save_snapshot

    std::uint64_t id = 0;       // assigned by submit(), increasing
    std::uint64_t done_us = 0;  // when it becomes durable
};

class SimDisk {
public:
    // Writes a node may have queued at once; more means the node is stuck.
    static constexpr std::size_t kPendingOpsMax = 100'000;

    SimDisk(const SwarmParams& params, bool lying, Rng rng);

    // A founding member's disk starts out holding raft::bootstrap()'s state.
    void format(const raft::RestoredState& initial);

    // Queues a write at time now_us; returns it with its id and completion time.
    const DiskOp& submit(DiskOp op, std::uint64_t now_us);
    // The oldest pending write (which must be `id`) becomes durable.  Returns
    // an error message if applying it breaks the storage contract.
    std::optional<std::string> complete(std::uint64_t id, DiskOp* done);
    void crash();
    // From now on no write takes longer than fsync_max_us (the liveness phase).
    void calm(std::uint64_t fsync_max_us) { calm_fsync_max_us_ = fsync_max_us; }

    const DurableState& durable() const { return durable_; }
    std::uint64_t last_submitted() const { return next_id_ - 1; }
    std::uint64_t last_completed() const { return last_completed_; }
    bool idle() const { return pending_.empty(); }

    // What a restarted node begins with.
    raft::RestoredState restored() const;

private:
    std::optional<std::string> apply(const DiskOp& op);

    const SwarmParams& params_;
    bool lying_;
    Rng rng_;
    DurableState durable_;
    DurableState flushed_;  // lying disk only: what a crash rolls back to
    std::deque<DiskOp> pending_;
    std::uint64_t next_id_ = 1;
    std::uint64_t last_completed_ = 0;
    std::uint64_t last_done_us_ = 0;
    std::uint64_t calm_fsync_max_us_ = 0;  // 0: params_.fsync_max_us
};

}  // namespace keel::sim
