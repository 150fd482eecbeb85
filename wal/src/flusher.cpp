// The flusher: group commit.
//
// One thread takes everything queued (up to Options::max_batch_bytes),
// encodes the appends into one reused buffer, writes it with one pwritev and
// issues one fdatasync, publishes the records, then runs the callbacks in
// order.  Appends that arrive meanwhile wait in the queue and form the next
// batch: no timers, no fixed delays.  Truncations and resets are executed in
// queue order between batches of appends.  A caller may write a batch itself
// (Wal::write_queued) when none is in progress: one batch at a time, whoever
// writes it (batch_owner_).
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
    const std::uint32_t spin_us = idle_spin_us_.load(std::memory_order_relaxed);
    if (spin_us == 0) return;
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
    // Pause, never sched_yield: a yielding thread that gives its core to a
    // CPU-bound process is not woken when work arrives, it waits out that
    // process's time slice (milliseconds).
    while (!queue_ready_.load(std::memory_order_acquire)) {
        for (int i = 0; i < 64; ++i) cpu_relax();
        if (std::chrono::steady_clock::now() >= until) return;
    }
}

void Wal::Impl::flusher_main() {
    std::vector<Op> batch;
    for (;;) {
        spin_for_work();
        {
            std::unique_lock lock(queue_mu_);
            // The previous batch, this thread's, is over: after_batch ran.
            if (batch_owner_ == BatchOwner::flusher) batch_owner_ = BatchOwner::none;
            // A caller's batch: wait for its end (it notifies), even when
            // stopping, so the WAL is not torn down under it.
            queue_cv_.wait(lock, [&] {
                return batch_owner_ == BatchOwner::none && (!queue_.empty() || stopping_);
            });
            if (queue_.empty()) return;  // stopping, and everything is drained
            take_batch_locked(batch);
            batch_owner_ = BatchOwner::flusher;
        }
        write_batch(batch);
    }
}

bool Wal::Impl::write_queued() {
    std::vector<Op> batch;
    {
        std::lock_guard lock(queue_mu_);
        // A batch in progress: its writer (the flusher, or a caller that
        // notifies the flusher at its end) takes the queue afterwards.
        // Stopping: the flusher drains it.
        if (batch_owner_ != BatchOwner::none || queue_.empty() || stopping_) return false;
        take_batch_locked(batch);
        batch_owner_ = BatchOwner::caller;
    }
    write_batch(batch);
    {
        std::lock_guard lock(queue_mu_);
        batch_owner_ = BatchOwner::none;
    }
    queue_cv_.notify_one();  // the flusher may wait for this batch's end
    return true;
}

void Wal::Impl::take_batch_locked(std::vector<Op>& batch) {
    std::uint64_t bytes = 0;
    while (!queue_.empty() && (batch.empty() || bytes < options_.max_batch_bytes)) {
        bytes += queue_.front().bytes;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
    }
    queued_bytes_ -= bytes;
    queue_ready_.store(!queue_.empty() || stopping_, std::memory_order_relaxed);
}

void Wal::Impl::write_batch(std::vector<Op>& batch) {
    process_batch(batch);
    // Written and completed: the record vectors go back for the next
    // appends (record_buffer()) before after_batch, whose work may append.
    for (Op& op : batch)
        if (op.kind == Op::Kind::append) spare_records_.give(std::move(op.records));
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
        if (abandoned_) {
            s = closing_while_waiting();
        } else if (failed()) {
            s = failed_status();
        } else if (batch[i].kind == Op::Kind::append) {
            s = write_appends(batch, i, j);
            if (s.ok()) publish(batch, i, j);
        } else {
            s = batch[i].kind == Op::Kind::truncate ? do_truncate(batch[i].index)
                                                    : do_reset(batch[i].index);
        }
        // Closed while waiting for disk space: not a failure of the disk,
        // but nothing after this operation may be written either.
        if (s.code() == ErrorCode::aborted) abandoned_ = true;
        if (!s.ok() && !abandoned_ && !failed()) enter_failed(s);
        // Callbacks in submission (= index) order, no lock held.
        const Status outcome = s.ok() || abandoned_ ? s : failed_status();
        for (std::size_t k = i; k < j; ++k)
            if (batch[k].done) batch[k].done(outcome);
        i = j;
    }
}

Status Wal::Impl::write_appends(std::vector<Op>& ops, std::size_t begin, std::size_t end) {
    Flush f = begin_flush(active_->last_crc);
    placed_.clear();
    for (std::size_t k = begin; k < end; ++k) {
        for (const Record& r : ops[k].records) {
            std::uint64_t bytes =
                detail::record_bytes(r.payload.size(), active_->record_header_bytes);
            const std::uint64_t align = active_->flush_align_bytes;
            const std::uint64_t at = f.at + f.bytes;
            const bool full = detail::align_up(at + bytes, align) > options_.segment_bytes &&
                              at > detail::records_start(align) + flush_header_bytes();
            // A segment of an older layout cannot hold a group id: the first
            // record of another group than 0 starts a version-4 segment.
            if (full || (r.group != 0 && !active_->groups)) {
                // Roll: the old segment must be durable before the new one
                // holds anything (recovery requires a contiguous chain).
                if (Status s = flush_buffer(f); !s.ok()) return s;
                if (Status s = install_segment(r.index, f.chain); !s.ok()) return s;
                f = begin_flush(f.chain);
                bytes = detail::record_bytes(r.payload.size(), active_->record_header_bytes);
            }
            if (f.first_index == 0) f.first_index = r.index;
            // Room for the record and the zeros up to the end of its block.
            buffer_.reserve(detail::align_up(f.bytes + bytes, detail::kFlushAlignBytes), f.bytes);
            f.chain = detail::encode_record({r.index, r.term, r.type, r.group}, r.payload, f.chain,
                                            active_->record_header_bytes, buffer_.data() + f.bytes);
            placed_.push_back({f.at + f.bytes, f.chain, active_.get()});
            f.bytes += bytes;
        }
    }
    return flush_buffer(f);
}

std::uint64_t Wal::Impl::flush_start() const {
    return detail::align_up(active_->end_offset.load(), active_->flush_align_bytes);
}

std::uint64_t Wal::Impl::flush_header_bytes() const {
    return active_->batch_headers ? detail::kBatchHeaderBytes : 0;
}

Wal::Impl::Flush Wal::Impl::begin_flush(std::uint32_t chain) const {
    Flush f;
    f.at = flush_start();
    f.bytes = flush_header_bytes();
    f.prev_crc = chain;
    f.chain = chain;
    return f;
}

// One durable write of buffer_[0, f.bytes) at f.at (flush_start()) in the
// active segment: in layout version 3 behind its batch header, in versions
// 2 and 3 padded with zeros to the end of its last block.  The direct path
// writes it with O_DIRECT|O_DSYNC (one system call), the buffered path with
// pwritev + fdatasync.  A flush without records writes nothing.
Status Wal::Impl::flush_buffer(const Flush& f) {
    if (f.first_index == 0) return Status();
    const std::uint64_t header = flush_header_bytes();
    if (header != 0) {
        detail::encode_batch_header({f.first_index, f.bytes - header, f.prev_crc}, buffer_.data());
    }
    const std::uint64_t write_bytes = detail::align_up(f.bytes, active_->flush_align_bytes);
    std::memset(buffer_.data() + f.bytes, 0, write_bytes - f.bytes);
    struct iovec iov {
        buffer_.data(), write_bytes
    };
    KEEL_ASSERT(active_->direct == nullptr ||
                    (f.at % kDirectIoAlignBytes == 0 && write_bytes % kDirectIoAlignBytes == 0),
                "a direct write covers whole blocks");
    File& out = active_->direct != nullptr ? *active_->direct : *active_->file;
    if (Status s = out.write_durable(&iov, 1, f.at); !s.ok()) return s;
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
    bytes_written_.fetch_add(f.bytes, std::memory_order_relaxed);
    active_->end_offset.store(f.at + f.bytes);
    active_->last_crc = f.chain;
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
            KEEL_ASSERT(r.index == last_ + 1, "durable records are contiguous");
            entries_.push_back(detail::Entry{r.term, placed_[p].offset,
                                             static_cast<std::uint32_t>(r.payload.size()),
                                             placed_[p].crc});
            if (placed_[p].segment != seg || r.group != group || group_last == nullptr) {
                seg = placed_[p].segment;
                group = r.group;
                group_last = &seg->group_last[group];
            }
            *group_last = r.index;
            ++p;
            last_ = r.index;
            if (options_.cache_bytes != 0) {
                cache_bytes_ += r.payload.size() + sizeof(Record);
                cache_.push_back(std::move(r));
            }
            ++count;
        }
    }
    trim_cache_locked();
    batches_.fetch_add(1, std::memory_order_relaxed);
    records_written_.fetch_add(count, std::memory_order_relaxed);
}

void Wal::Impl::trim_cache_locked() {
    while (!cache_.empty() && cache_bytes_ > options_.cache_bytes) {
        cache_bytes_ -= cache_.front().payload.size() + sizeof(Record);
        cache_.pop_front();
    }
}

void Wal::Impl::enter_failed(const Status& why) {
    {
        std::lock_guard lock(failure_mu_);
        if (failed_.load()) return;
        failure_ = Status(ErrorCode::failed, fmt::format("WAL {} is in the failed state after: {}",
                                                         dir_, why.to_string()));
        failed_.store(true);
    }
    notify_health();
}

Status Wal::Impl::failed_status() const {
    std::lock_guard lock(failure_mu_);
    return failure_;
}

}  // namespace keel::wal
