// writer_state.hpp — what the writer of a batch owns: the active segment,
// the encode buffer, where the batch's records went; and the write counters
// it keeps for Wal::stats().
//
// Threads: WriterState belongs to whoever writes the batch in progress (the
// flusher, or a Wal::write_queued() caller: AppendQueue::batch_owner), and to
// recovery before the threads start; no lock.  WriteCounters are atomics
// the writer adds to and Wal::stats() reads.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "aligned_buffer.hpp"
#include "published_log.hpp"

namespace keel::wal::detail {

// Where a written record went, until it is published.
struct Placed {
    std::uint64_t offset;
    std::uint32_t crc;
    // The one it was written into (a batch may roll).  Alive until publish:
    // compaction never drops a segment past the published records
    // (Wal::Impl::released_floor_locked).
    Segment* segment;
};

struct WriterState {
    SegmentPtr active;                // the segment records are written into
    std::uint64_t next_sequence = 1;  // of the next segment file
    AlignedBuffer buffer;             // one flush, encoded
    std::vector<Placed> placed;       // the current batch's records, in order
    bool next_requested = false;      // the next segment's preparation was asked for
    // The WAL closed while the writer waited for space: every operation
    // left completes with aborted (records of the interrupted batch may be
    // on disk, unpublished; the next open finds them).
    bool abandoned = false;
};

struct WriteCounters {
    std::atomic<std::uint64_t> fsyncs{0};
    std::atomic<std::uint64_t> batches{0};
    std::atomic<std::uint64_t> records_written{0};
    std::atomic<std::uint64_t> bytes_written{0};
};

}  // namespace keel::wal::detail
