// append_queue.hpp — the operations callers have submitted and the flusher
// has not taken yet, and who writes the batch in progress (group commit).
//
// Threads: callers push (Wal::append, truncate_after, reset) and the writer
// of the next batch (the flusher, or a Wal::write_queued() caller) takes;
// everything but `ready`, `idle_spin_us` and `spare_records` is under `mu`.
// Lock order: `mu` is taken before Wal::Impl's meta and state locks.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "keel/spare_vectors.hpp"
#include "keel/wal/wal.hpp"

namespace keel::wal::detail {

// One submitted operation, executed by the writer in queue order.
struct Op {
    enum class Kind { append, truncate, reset } kind = Kind::append;
    std::vector<Record> records;  // append
    std::uint64_t index = 0;      // truncate: keep <= index; reset: next index
    std::uint64_t bytes = 0;      // payload bytes, counted against max_queue_bytes
    Wal::Callback done;
};

// Who writes the batch in progress, if any: batches never overlap, so the
// writer-owned state (WriterState) has one owner at a time.
enum class BatchOwner { none, flusher, caller };

struct AppendQueue {
    // REQUIRES: mu held.  Queues `op` and tells the flusher's idle spin.
    void push_locked(Op op) {
        ops.push_back(std::move(op));
        ready.store(true, std::memory_order_release);
    }
    // REQUIRES: mu held.  Moves the next batch (up to max_batch_bytes of
    // payload, at least one operation) out of the queue into `batch`.
    void take_batch_locked(std::vector<Op>& batch, std::uint64_t max_batch_bytes) {
        std::uint64_t taken = 0;
        while (!ops.empty() && (batch.empty() || taken < max_batch_bytes)) {
            taken += ops.front().bytes;
            batch.push_back(std::move(ops.front()));
            ops.pop_front();
        }
        queued_bytes -= taken;
        ready.store(!ops.empty() || stopping, std::memory_order_relaxed);
    }

    mutable std::mutex mu;
    std::condition_variable cv;
    std::deque<Op> ops;
    std::uint64_t queued_bytes = 0;  // payload bytes in `ops`
    std::uint64_t submit_next = 1;   // index the next append must start at
    bool stopping = false;
    BatchOwner batch_owner = BatchOwner::none;
    // Mirrors !ops.empty() || stopping for the flusher's idle spin (written
    // under mu, read without it).
    std::atomic<bool> ready{false};
    std::atomic<std::uint32_t> idle_spin_us{0};  // Options::idle_spin_us, adjustable
    // Record vectors of written appends, for Wal::record_buffer() (own lock).
    SpareVectors<Record> spare_records;
};

}  // namespace keel::wal::detail
