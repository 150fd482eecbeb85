// runtime/storage_health.hpp — the replica's state of its disk: the
// no_space alarm (a bit per storage operation that found no room and is
// being retried) and the compactions and retries in flight.
// storage_health.cpp carries it out; docs/runtime.md, "A full disk".
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "raft/types.hpp"

namespace keel::runtime {

// Why the node refuses writes with ErrorCode::no_space (the no_space alarm).
enum NoSpaceCause : unsigned {
    kNoSpaceWal = 1u << 0,         // the WAL waits for room (wal::Wal::no_space)
    kNoSpaceHardState = 1u << 1,   // a term/vote change could not be saved
    kNoSpaceSnapshot = 1u << 2,    // a snapshot could not be written
    kNoSpaceCompaction = 1u << 3,  // the log could not be compacted behind one
};
// While the alarm is up, the runtime retries its own operations this often
// (the WAL retries its own at the same rate: wal::kNoSpaceRetryMs).
inline constexpr std::uint32_t kNoSpaceRetryMs = 100;
// A leader that cannot write hands leadership to another voter at most this
// many times per alarm (it cannot know which member has room; a bound keeps
// a cluster whose disks are all full from passing leadership round).
inline constexpr int kMaxNoSpaceTransfers = 3;
// Automatic snapshots are published without flushes and flushed together
// once the log's compaction would free a WAL segment file behind them, or
// after this many (which bounds what a power loss makes a restart replay,
// and lets groups sharing a WAL, none of which frees a segment alone,
// compact): docs/decisions/0027-deferred-snapshot-durability.md.
inline constexpr std::size_t kMaxDeferredSnapshots = 32;

// Threads: the atomics are read anywhere; everything is written under the
// replica's core lock (saved_floor also read by the background thread).
struct StorageHealth {
    // NoSpaceCause bits.
    std::atomic<unsigned> no_space_causes{0};
    // A WAL write failed (its writing thread): fail-stop.
    std::atomic<bool> wal_failed{false};
    int no_space_transfers = 0;  // leadership handed on during this alarm
    bool snapshot_retry_in_flight = false;
    bool compaction_retry_in_flight = false;
    bool floor_compaction_in_flight = false;
    // Bytes the last snapshot had written when the disk was full: the next
    // attempt waits until about that much is free.
    std::uint64_t snapshot_bytes_needed = 0;
    // The last durable index a durable state machine reported.
    raft::Index sm_durable_seen = 0;
    // The durable state machine's compaction point saved in the WAL's
    // metadata (LogStore::save_floor): the log may be compacted up to it.
    std::atomic<raft::Index> saved_floor{0};
};

}  // namespace keel::runtime
