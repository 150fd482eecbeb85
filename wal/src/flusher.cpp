// The flusher: group commit.
//
// One thread takes everything queued (up to Options::max_batch_bytes),
// encodes the appends into one reused buffer, writes it with one pwritev and
// issues one fdatasync, publishes the records, then runs the callbacks in
// order.  Appends that arrive meanwhile wait in the queue and form the next
// batch: no timers, no fixed delays.  Truncations and resets are executed in
// queue order between batches of appends.  A caller may write a batch itself
// (Wal::write_queued) when none is in progress: one batch at a time, whoever
// writes it (queue_.batch_owner).
#include <fmt/format.h>

#include <chrono>
#include <cstring>

#include "format.hpp"
#include "keel/assert.hpp"
#include "wal_impl.hpp"

namespace keel::wal {

using detail::Op;

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

}  // namespace

// Options::idle_spin_us: look at the queue for a little while before
// sleeping.  Bounded by the clock, so an idle WAL goes to sleep right after.
void Wal::Impl::spin_for_work() {
    const std::uint32_t spin_us = queue_.idle_spin_us.load(std::memory_order_relaxed);
    if (spin_us == 0) return;
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
    // Pause, never sched_yield: a yielding thread that gives its core to a
    // CPU-bound process is not woken when work arrives, it waits out that
    // process's time slice (milliseconds).
    while (!queue_.ready.load(std::memory_order_acquire)) {
        for (int i = 0; i < 64; ++i) cpu_relax();
        if (std::chrono::steady_clock::now() >= until) return;
    }
}

void Wal::Impl::flusher_main() {
    std::vector<Op> batch;
    for (;;) {
        spin_for_work();
        {
            std::unique_lock lock(queue_.mu);
            // The previous batch, this thread's, is over: after_batch ran.
            if (queue_.batch_owner == detail::BatchOwner::flusher)
                queue_.batch_owner = detail::BatchOwner::none;
            // A caller's batch: wait for its end (it notifies), even when
            // stopping, so the WAL is not torn down under it.
            queue_.cv.wait(lock, [&] {
                return queue_.batch_owner == detail::BatchOwner::none &&
                       (!queue_.ops.empty() || queue_.stopping);
            });
            if (queue_.ops.empty()) return;  // stopping, and everything is drained
            queue_.take_batch_locked(batch, options_.max_batch_bytes);
            queue_.batch_owner = detail::BatchOwner::flusher;
        }
        write_batch(batch);
    }
}

bool Wal::Impl::write_queued() {
    std::vector<Op> batch;
    {
        std::lock_guard lock(queue_.mu);
        // A batch in progress: its writer (the flusher, or a caller that
        // notifies the flusher at its end) takes the queue afterwards.
        // Stopping: the flusher drains it.
        if (queue_.batch_owner != detail::BatchOwner::none || queue_.ops.empty() || queue_.stopping)
            return false;
        queue_.take_batch_locked(batch, options_.max_batch_bytes);
        queue_.batch_owner = detail::BatchOwner::caller;
    }
    write_batch(batch);
    bool flusher_has_work;
    {
        std::lock_guard lock(queue_.mu);
        queue_.batch_owner = detail::BatchOwner::none;
        flusher_has_work = !queue_.ops.empty() || queue_.stopping;
    }
    // The flusher may wait for this batch's end, but only to take what was
    // queued meanwhile (or to stop).  With nothing queued its wait goes on
    // either way, and waking it would cost a context switch per write: an
    // append that wakes the flusher, and stop(), notify it themselves.
    if (flusher_has_work) queue_.cv.notify_one();
    return true;
}

void Wal::Impl::write_batch(std::vector<Op>& batch) {
    process_batch(batch);
    // Written and completed: the record vectors go back for the next
    // appends (record_buffer()) before after_batch, whose work may append.
    for (Op& op : batch)
        if (op.kind == Op::Kind::append) queue_.spare_records.give(std::move(op.records));
    if (options_.after_batch) options_.after_batch();
    batch.clear();
}

void Wal::Impl::process_batch(std::vector<Op>& batch) {
    std::size_t i = 0;
    while (i < batch.size()) {
        std::size_t j = i + 1;
        Status s;
        if (batch[i].kind == Op::Kind::append) {
            while (j < batch.size() && batch[j].kind == Op::Kind::append) ++j;
        }
        if (writer_.abandoned) {
            s = closing_while_waiting();
        } else if (failed()) {
            s = health_.failure();
        } else if (batch[i].kind == Op::Kind::append) {
            s = write_appends(batch, i, j);
            if (s.ok()) publish(batch, i, j);
        } else {
            s = batch[i].kind == Op::Kind::truncate ? do_truncate(batch[i].index)
                                                    : do_reset(batch[i].index);
        }
        // Closed while waiting for disk space: not a failure of the disk,
        // but nothing after this operation may be written either.
        if (s.code() == ErrorCode::aborted) writer_.abandoned = true;
        if (!s.ok() && !writer_.abandoned && !failed()) enter_failed(s);
        // Callbacks in submission (= index) order, no lock held.
        const Status outcome = s.ok() || writer_.abandoned ? s : health_.failure();
        for (std::size_t k = i; k < j; ++k)
            if (batch[k].done) batch[k].done(outcome);
        i = j;
    }
}

Status Wal::Impl::write_appends(std::vector<Op>& ops, std::size_t begin, std::size_t end) {
    Flush f = begin_flush(writer_.active->last_crc);
    writer_.placed.clear();
    for (std::size_t k = begin; k < end; ++k) {
        for (const Record& r : ops[k].records) {
            std::uint64_t bytes =
                detail::record_bytes(r.payload.size(), writer_.active->record_header_bytes);
            const std::uint64_t align = writer_.active->flush_align_bytes;
            const std::uint64_t at = f.at + f.bytes;
            const bool full = detail::align_up(at + bytes, align) > options_.segment_bytes &&
                              at > detail::records_start(align) + flush_header_bytes();
            // A segment of an older layout cannot hold a group id: the first
            // record of another group than 0 starts a version-4 segment.
            if (full || (r.group != 0 && !writer_.active->groups)) {
                // Roll: the old segment must be durable before the new one
                // holds anything (recovery requires a contiguous chain).
                if (Status s = flush_buffer(f); !s.ok()) return s;
                if (Status s = install_segment(r.index, f.chain); !s.ok()) return s;
                f = begin_flush(f.chain);
                bytes = detail::record_bytes(r.payload.size(), writer_.active->record_header_bytes);
            }
            if (f.first_index == 0) f.first_index = r.index;
            // Room for the record and the zeros up to the end of its block.
            writer_.buffer.reserve(detail::align_up(f.bytes + bytes, detail::kFlushAlignBytes),
                                   f.bytes);
            f.chain = detail::encode_record({r.index, r.term, r.type, r.group}, r.payload, f.chain,
                                            writer_.active->record_header_bytes,
                                            writer_.buffer.data() + f.bytes);
            writer_.placed.push_back({f.at + f.bytes, f.chain, writer_.active.get()});
            f.bytes += bytes;
        }
    }
    return flush_buffer(f);
}

std::uint64_t Wal::Impl::flush_start() const {
    return detail::align_up(writer_.active->end_offset.load(), writer_.active->flush_align_bytes);
}

std::uint64_t Wal::Impl::flush_header_bytes() const {
    return writer_.active->batch_headers ? detail::kBatchHeaderBytes : 0;
}

Wal::Impl::Flush Wal::Impl::begin_flush(std::uint32_t chain) const {
    Flush f;
    f.at = flush_start();
    f.bytes = flush_header_bytes();
    f.prev_crc = chain;
    f.chain = chain;
    return f;
}

// One durable write of writer_.buffer[0, f.bytes) at f.at (flush_start()) in the
// active segment: in layout version 3 behind its batch header, in versions
// 2 and 3 padded with zeros to the end of its last block.  The direct path
// writes it with O_DIRECT|O_DSYNC (one system call), the buffered path with
// pwritev + fdatasync.  A flush without records writes nothing.
Status Wal::Impl::flush_buffer(const Flush& f) {
    if (f.first_index == 0) return Status();
    const std::uint64_t header = flush_header_bytes();
    if (header != 0) {
        detail::encode_batch_header({f.first_index, f.bytes - header, f.prev_crc},
                                    writer_.buffer.data());
    }
    const std::uint64_t write_bytes = detail::align_up(f.bytes, writer_.active->flush_align_bytes);
    std::memset(writer_.buffer.data() + f.bytes, 0, write_bytes - f.bytes);
    struct iovec iov {
        writer_.buffer.data(), write_bytes
    };
    KEEL_ASSERT(writer_.active->direct == nullptr ||
                    (f.at % kDirectIoAlignBytes == 0 && write_bytes % kDirectIoAlignBytes == 0),
                "a direct write covers whole blocks");
    File& out = writer_.active->direct != nullptr ? *writer_.active->direct : *writer_.active->file;
    if (Status s = out.write_durable(&iov, 1, f.at); !s.ok()) return s;
    counters_.fsyncs.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes_written.fetch_add(f.bytes, std::memory_order_relaxed);
    writer_.active->end_offset.store(f.at + f.bytes);
    writer_.active->last_crc = f.chain;
    if (f.at + f.bytes >= options_.segment_bytes / 2) request_next_segment();
    return Status();
}

// Makes the written records readable and moves them into the cache.
void Wal::Impl::publish(std::vector<Op>& ops, std::size_t begin, std::size_t end) {
    std::uint64_t count = 0;
    std::lock_guard lock(state_mu_);
    std::size_t p = 0;
    // The group map entry of the previous record: a batch is mostly one
    // group's, so most records need no map lookup.
    Segment* seg = nullptr;
    std::uint64_t group = 0;
    std::uint64_t* group_last = nullptr;
    for (std::size_t k = begin; k < end; ++k) {
        for (Record& r : ops[k].records) {
            KEEL_ASSERT(r.index == log_.last + 1, "durable records are contiguous");
            log_.entries.push_back(detail::Entry{r.term, writer_.placed[p].offset,
                                                 static_cast<std::uint32_t>(r.payload.size()),
                                                 writer_.placed[p].crc});
            if (writer_.placed[p].segment != seg || r.group != group || group_last == nullptr) {
                seg = writer_.placed[p].segment;
                group = r.group;
                group_last = &seg->group_last[group];
            }
            *group_last = r.index;
            ++p;
            log_.last = r.index;
            if (options_.cache_bytes != 0) log_.cache_push(std::move(r));
            ++count;
        }
    }
    log_.trim_cache(options_.cache_bytes);
    counters_.batches.fetch_add(1, std::memory_order_relaxed);
    counters_.records_written.fetch_add(count, std::memory_order_relaxed);
}

void Wal::Impl::enter_failed(const Status& why) {
    if (health_.enter_failed(
            Status(ErrorCode::failed,
                   fmt::format("WAL {} is in the failed state after: {}", dir_, why.to_string()))))
        notify_health();
}

}  // namespace keel::wal
