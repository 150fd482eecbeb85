// wal_impl.hpp — the state behind keel::wal::Wal and who may touch it.
//
// Threads:
//  - callers: append/truncate_after/reset enqueue under queue_mu_;
//    compact_before, release and save_metadata write the meta file under
//    meta_mu_;
//    reads take state_mu_ briefly, then pread without locks.
//  - the flusher (flusher.cpp): the only writer of segment data; owns
//    active_ and the write buffer without locks; publishes durable records
//    under state_mu_ before running callbacks.
//  - the background thread (segment_files.cpp): zero-fills the next segment
//    ahead of time (retrying while the disk is full) and deletes compacted
//    segments.
// Lock order: queue_mu_ -> meta_mu_ -> state_mu_; bg_mu_, health_mu_ and
// failure_mu_ are leaves.  Options::on_health_change runs with no lock held.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aligned_buffer.hpp"
#include "format.hpp"
#include "keel/spare_vectors.hpp"
#include "keel/wal/wal.hpp"

namespace keel::wal {

namespace detail {

// Zero-filling a segment (background thread) writes this much at a time and
// keeps at most two such chunks in flight to the disk: the log's own
// fdatasync queues behind the disk's outstanding writes, so a whole-segment
// write-out stalls it for as long as that takes, where a chunk delays it
// little (docs/decisions/0004-runtime-write-path-tuning.md).
inline constexpr std::uint64_t kZeroFillChunkBytes = 1u << 20;

// One segment file.  first_index, start_crc, flush_align_bytes and file
// never change; the writer alone advances end_offset/last_crc of the active
// segment and sets `direct`.  group_last is under Wal::Impl::state_mu_.
struct Segment {
    std::uint64_t sequence = 0;
    std::uint64_t first_index = 0;
    std::uint32_t start_crc = 0;
    std::uint32_t flush_align_bytes = 0;  // 0: layout version 1 (SegmentHeader)
    bool batch_headers = false;           // layout version 3: every flush starts with one
    bool groups = false;                  // layout version 4: records carry a group id
    std::uint64_t record_header_bytes = kRecordHeaderBytes;  // of its layout version
    std::string name;
    std::shared_ptr<File> file;    // buffered: reads, zeroing, and the buffered path's writes
    std::shared_ptr<File> direct;  // OpenMode::write_direct: the direct path's writes
    std::atomic<std::uint64_t> end_offset{kSegmentHeaderBytes};  // past the last record
    std::uint32_t last_crc = 0;                                  // chain value at end_offset
    // Every group with records in this segment, and the index of its last
    // one here (at least: a truncation leaves it as high as the cut).
    std::map<std::uint64_t, std::uint64_t> group_last;
};

// Where a durable record lives (its segment is found by index).
struct Entry {
    std::uint64_t term = 0;
    std::uint64_t offset = 0;
    std::uint32_t payload_bytes = 0;
    std::uint32_t crc = 0;
};

struct RecoveryPlan;  // recovery.cpp

struct Op {
    enum class Kind { append, truncate, reset } kind = Kind::append;
    std::vector<Record> records;  // append
    std::uint64_t index = 0;      // truncate: keep <= index; reset: next index
    std::uint64_t bytes = 0;      // payload bytes, counted against max_queue_bytes
    Wal::Callback done;
};

}  // namespace detail

class Wal::Impl {
public:
    Impl(std::string dir, Options options);
    ~Impl();

    // recovery.cpp
    // Takes the directory lock (busy if another Wal holds it), then recovers.
    Status recover();
    Status lock_directory();
    Status apply_recovery(detail::RecoveryPlan& plan);
    // fdatasyncs the kept segments and `meta`, fsyncs the directory.
    Status sync_recovered();
    // Starts the flusher and background threads.  REQUIRES: recover() ok.
    void start();

    // wal.cpp: the public operations.
    Status append(std::vector<Record> records, Callback done, Wal::Writer writer);
    bool write_queued();
    std::vector<Record> record_buffer() { return spare_records_.take(); }
    Status enqueue_truncate(std::uint64_t index, Callback done);
    Status enqueue_reset(std::uint64_t next_index, Callback done);
    // compaction.cpp
    Status compact_before(std::uint64_t index);
    Status release(std::uint64_t group, std::uint64_t index);
    std::vector<SegmentPin> oldest_segment_pins() const;
    Status save_metadata(const Metadata& m);
    Metadata metadata() const;
    Result<std::vector<Record>> read(std::uint64_t from, std::uint64_t to,
                                     std::uint64_t max_bytes) const;
    std::uint64_t first_index() const;
    std::uint64_t reclaimable_from() const;
    std::uint64_t last_index() const;
    std::uint64_t next_index() const;
    Result<std::uint64_t> term_at(std::uint64_t index) const;
    bool has_queued() const { return queue_ready_.load(std::memory_order_acquire); }
    bool failed() const { return failed_.load(); }
    bool no_space() const { return no_space_.load(); }
    // ok while not failed.
    Status failure() const { return failed() ? failed_status() : Status(); }
    Stats stats() const;
    WritePath write_path() const { return write_path_; }

    const std::string dir_;
    const Options options_;
    FileSystem* const fs_;
    OpenReport report_;

    void set_idle_spin_us(std::uint32_t us) { idle_spin_us_.store(us, std::memory_order_relaxed); }

private:
    using Segment = detail::Segment;
    using SegmentPtr = std::shared_ptr<Segment>;

    // flusher.cpp
    void flusher_main();
    void spin_for_work();
    // REQUIRES: queue_mu_ held.  Moves the next batch (up to
    // Options::max_batch_bytes, at least one operation) out of the queue.
    void take_batch_locked(std::vector<detail::Op>& batch);
    // Writes, completes and recycles a batch, then runs after_batch.
    // REQUIRES: this thread owns the batch (batch_owner_).
    void write_batch(std::vector<detail::Op>& batch);
    void process_batch(std::vector<detail::Op>& batch);
    Status write_appends(std::vector<detail::Op>& ops, std::size_t begin, std::size_t end);
    // Where the next flush into the active segment starts: its end, or the
    // next block (layout versions 2 and 3).
    std::uint64_t flush_start() const;
    // One flush being encoded into buffer_: where it goes in the active
    // segment, its bytes so far (with room for its batch header in layout
    // version 3), and what the header says.
    struct Flush {
        std::uint64_t at = 0;
        std::uint64_t bytes = 0;
        std::uint64_t first_index = 0;  // of its first record; 0 while it has none
        std::uint32_t prev_crc = 0;     // chain value before its first record
        std::uint32_t chain = 0;        // CRC of its last record
    };
    // A new, empty flush at flush_start() continuing the chain from `chain`.
    Flush begin_flush(std::uint32_t chain) const;
    // Bytes in front of a flush's records in the active segment (its batch header).
    std::uint64_t flush_header_bytes() const;
    Status flush_buffer(const Flush& f);
    void publish(std::vector<detail::Op>& ops, std::size_t begin, std::size_t end);
    Status do_truncate(std::uint64_t index);
    Status do_reset(std::uint64_t next_index);
    void enter_failed(const Status& why);
    Status failed_status() const;

    // segment_files.cpp
    void background_main();
    // Creates the temporary next segment file (zero-filled when
    // options_.preallocate), synced along with the directory.  On failure
    // the file is deleted again; no_space when the disk is full.
    Result<std::shared_ptr<File>> prepare_segment_file();
    Status fill_segment_file(File& file);
    // Gets a prepared file (from the background thread when preallocating).
    // After start(), waits while the disk is full (no_space() is then
    // true) and returns aborted if the WAL closes meanwhile.
    Result<std::shared_ptr<File>> take_prepared_file();
    // Sleeps kNoSpaceRetryMs; false if the WAL started closing.
    bool wait_for_space_retry();
    Status closing_while_waiting() const;
    // Writes the header into a prepared file and renames it into place;
    // makes it the active segment.  Flusher or recovery only.
    Status install_segment(std::uint64_t first_index, std::uint32_t start_crc);
    // write_path.cpp
    // Options::write_path automatic: probes whether the directory's file
    // system takes O_DIRECT and settles write_path_.  Recovery, first.
    Status choose_write_path();
    // The direct path: opens seg's O_DIRECT writer.  Buffered: nothing.
    Status attach_writer(Segment& seg);
    // Before the direct path writes into active_ (at open, after a
    // truncation): opens its O_DIRECT writer, or, where the direct path
    // cannot write into it without touching blocks that hold acknowledged
    // records (layout version 1, or aligned for less than
    // kDirectIoAlignBytes) or without batch headers (version 2), installs a
    // new segment starting at next_index.
    Status ready_active_segment(std::uint64_t next_index);
    void request_next_segment();
    // Zeroes [from, last non-zero byte) of a file and fdatasyncs it.
    Status zero_tail(File& file, std::uint64_t from, std::uint64_t* zeroed);
    // Zeroes [from, to) and fdatasyncs.
    Status zero_range(File& file, std::uint64_t from, std::uint64_t to);
    Status remove_files(const std::vector<std::string>& names);
    void delete_in_background(std::vector<std::string> names);

    // Meta file (REQUIRES: meta_mu_ held).
    Status write_meta_locked(const detail::MetadataFile& m);
    // The flusher's metadata writes (truncation and reset steps): writes
    // change(meta_), and while the disk is full waits and writes again
    // (meta_mu_ is not held while waiting).  aborted if the WAL closes.
    Status write_meta_retrying(const std::function<void(detail::MetadataFile&)>& change);

    // no_space() is the OR of these; Options::on_health_change runs when
    // it (or failed()) changes.
    enum class NoSpaceSource { preparation, flusher };
    void set_no_space(NoSpaceSource source, bool no_space);
    void notify_health() const;

    // REQUIRES: state_mu_ held.
    std::uint64_t first_index_locked() const;
    const SegmentPtr& segment_for_locked(std::uint64_t index) const;
    // compaction.cpp.  REQUIRES: state_mu_ held.
    // Whether every group with records in `seg` has released them (the log
    // floor counts as a release by every group).
    bool segment_released_locked(const Segment& seg, const detail::MetadataFile& m) const;
    // The log floor that `m`'s releases allow: the first index of the
    // oldest segment some group still needs (never past the active one),
    // and at least m.log_floor.
    std::uint64_t released_floor_locked(const detail::MetadataFile& m) const;
    // Drops the table entries that no longer hold anything back: at or
    // below the floor, or of a group with no records in any segment.
    void prune_releases_locked(detail::MetadataFile& m) const;
    // Raises floor_ to `floor` and unlinks (from segments_, entries_) the
    // segments wholly below it; returns their file names.
    std::vector<std::string> drop_segments_below_locked(std::uint64_t floor);
    // Writes `m` as the new metadata (the commit point of a compaction or
    // release), then drops the segments below its floor and hands their
    // files to the background thread.  REQUIRES: meta_mu_ held.
    Status commit_floor_locked(const detail::MetadataFile& m);
    void trim_cache_locked();

    // ---- queue (queue_mu_) ----
    mutable std::mutex queue_mu_;
    std::condition_variable queue_cv_;
    std::deque<detail::Op> queue_;
    std::uint64_t queued_bytes_ = 0;
    std::uint64_t submit_next_ = 1;  // index the next append must start at
    bool stopping_ = false;
    // Who writes the batch in progress, if any: batches never overlap, so
    // the "writer-owned" state below has one owner at a time.
    enum class BatchOwner { none, flusher, caller };
    BatchOwner batch_owner_ = BatchOwner::none;
    // Mirrors !queue_.empty() || stopping_ for the flusher's idle spin
    // (written under queue_mu_, read without it).
    std::atomic<bool> queue_ready_{false};
    std::atomic<std::uint32_t> idle_spin_us_{0};
    // Record vectors of written appends, for record_buffer() (own lock).
    SpareVectors<Record> spare_records_;

    // ---- metadata (meta_mu_) ----
    mutable std::mutex meta_mu_;
    detail::MetadataFile meta_;

    // ---- published log state (state_mu_) ----
    mutable std::mutex state_mu_;
    std::deque<SegmentPtr> segments_;
    std::deque<detail::Entry> entries_;  // entries_[i] is index phys_first_ + i
    std::uint64_t phys_first_ = 1;
    std::uint64_t last_ = 0;    // last durable index
    std::uint64_t floor_ = 1;   // compaction point; first_index = max(floor_, phys_first_)
    std::deque<Record> cache_;  // the newest records, ending at last_
    std::uint64_t cache_bytes_ = 0;

    // ---- writer-owned (the flusher, or a write_queued() caller: batch_owner_) ----
    SegmentPtr active_;
    std::uint64_t next_sequence_ = 1;
    detail::AlignedBuffer buffer_;
    struct Placed {
        std::uint64_t offset;
        std::uint32_t crc;
        // The one it was written into (a batch may roll).  Alive until
        // publish: compaction never drops a segment past the published
        // records (released_floor_locked).
        Segment* segment;
    };
    std::vector<Placed> placed_;
    bool next_requested_ = false;  // the next segment's preparation was asked for
    // The WAL closed while the writer waited for space: every operation
    // left completes with aborted (records of the interrupted batch may be
    // on disk, unpublished; the next open finds them).
    bool abandoned_ = false;

    // ---- background (bg_mu_) ----
    mutable std::mutex bg_mu_;
    std::condition_variable bg_cv_;
    bool bg_stop_ = false;
    bool want_prepared_ = false;
    std::shared_ptr<File> prepared_;
    Status prepared_error_;
    std::vector<std::string> to_delete_;

    // Set once the destructor begins (under bg_mu_, notified on bg_cv_):
    // a writer waiting for disk space gives up.
    std::atomic<bool> closing_{false};
    bool started_ = false;  // start() ran: the writer may wait for space
    // buffered or direct, settled by recovery (choose_write_path) before
    // any segment is written; fixed afterwards.
    WritePath write_path_ = WritePath::buffered;

    mutable std::mutex health_mu_;       // a leaf lock
    bool preparation_no_space_ = false;  // GUARDED_BY(health_mu_)
    bool flusher_no_space_ = false;      // GUARDED_BY(health_mu_)
    std::atomic<bool> no_space_{false};

    mutable std::mutex failure_mu_;  // a leaf lock
    std::atomic<bool> failed_{false};
    Status failure_;  // set once, under failure_mu_, before failed_
    std::atomic<std::uint64_t> fsyncs_{0}, batches_{0}, records_written_{0}, bytes_written_{0};
    // Smoothed duration of one write + fdatasync (flush_buffer); 0 before the first.
    std::thread flusher_;
    std::thread background_;
    int lock_fd_ = -1;  // flock(2) on <dir>/LOCK: one Wal per directory
};

}  // namespace keel::wal
