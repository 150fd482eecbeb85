// wal_impl.hpp — keel::wal::Wal's implementation: the operations, and the
// parts of state they work on, each in its own header saying who may touch
// it: AppendQueue (submitted operations, group commit), PublishedLog (the
// segments and durable records readers see), WriterState and WriteCounters
// (the batch writer's), BackgroundWork (segment preparation and deletion),
// WalHealth (failed and no-space).
//
// Threads:
//  - callers: append/truncate_after/reset enqueue under queue_.mu;
//    compact_before, release and save_metadata write the meta file under
//    meta_mu_;
//    reads take state_mu_ briefly, then pread without locks.
//  - the flusher (flusher.cpp): the only writer of segment data; owns
//    writer_ without locks; publishes durable records under state_mu_
//    before running callbacks.
//  - the background thread (segment_files.cpp): zero-fills the next segment
//    ahead of time (retrying while the disk is full) and deletes compacted
//    segments.
// Lock order: queue_.mu -> meta_mu_ -> state_mu_; bg_.mu and health_'s
// locks are leaves.  Options::on_health_change runs with no lock held.
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

#include "append_queue.hpp"
#include "background_work.hpp"
#include "format.hpp"
#include "keel/wal/wal.hpp"
#include "published_log.hpp"
#include "wal_health.hpp"
#include "writer_state.hpp"

namespace keel::wal {

namespace detail {

// Zero-filling a segment (background thread) writes this much at a time and
// keeps at most two such chunks in flight to the disk: the log's own
// fdatasync (or O_DSYNC write) waits for the disk's cache to take whatever
// the fill wrote before it, so a whole-segment write-out stalls the log for
// as long as that takes, and a chunk delays each log write by about one
// chunk's write.  Small, so that a fill slows the log's writes a little for
// a while instead of stopping them: docs/decisions/0004-runtime-write-path-tuning.md
// and 0051-disk-stalls.md have the figures.
inline constexpr std::uint64_t kZeroFillChunkBytes = 64u << 10;

struct RecoveryPlan;  // recovery.cpp

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
    std::vector<Record> record_buffer() { return queue_.spare_records.take(); }
    Status enqueue_truncate(std::uint64_t index, Callback done);
    Status enqueue_reset(std::uint64_t next_index, Callback done);
    // compaction.cpp
    Status compact_before(std::uint64_t index);
    Status release(std::span<const Release> releases, const Metadata* metadata);
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
    bool has_queued() const { return queue_.ready.load(std::memory_order_acquire); }
    bool failed() const { return health_.failed(); }
    bool no_space() const { return health_.no_space(); }
    // ok while not failed.
    Status failure() const { return health_.failure(); }
    Stats stats() const;
    WritePath write_path() const { return write_path_; }

    const std::string dir_;
    const Options options_;
    FileSystem* const fs_;
    OpenReport report_;

    void set_idle_spin_us(std::uint32_t us) {
        queue_.idle_spin_us.store(us, std::memory_order_relaxed);
    }

private:
    using Segment = detail::Segment;
    using SegmentPtr = detail::SegmentPtr;

    // flusher.cpp
    void flusher_main();
    void spin_for_work();
    // Writes, completes and recycles a batch, then runs after_batch.
    // REQUIRES: this thread owns the batch (queue_.batch_owner).
    void write_batch(std::vector<detail::Op>& batch);
    void process_batch(std::vector<detail::Op>& batch);
    Status write_appends(std::vector<detail::Op>& ops, std::size_t begin, std::size_t end);
    // Where the next flush into the active segment starts: its end, or the
    // next block (layout versions 2 and 3).
    std::uint64_t flush_start() const;
    // One flush being encoded into writer_.buffer: where it goes in the active
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
    // Enters the failed state after `why` (the first failure stays) and
    // runs Options::on_health_change.
    void enter_failed(const Status& why);

    // segment_files.cpp
    void background_main();
    // Creates the temporary next segment file (zero-filled when
    // options_.preallocate), synced along with the directory.  On failure
    // the file is deleted again; no_space when the disk is full.
    Result<std::shared_ptr<File>> prepare_segment_file();
    Status fill_segment_file(File& file);
    // The zeros of fill_segment_file: through a second, O_DIRECT descriptor
    // of the temporary file on the direct write path (returns how far it
    // got, synced), through the page cache otherwise (from `from` to the
    // end, not synced).
    Result<std::uint64_t> zero_fill_direct();
    Status zero_fill_buffered(File& file, std::uint64_t from);
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
    // Before the direct path writes into writer_.active (at open, after a
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
    // Background thread: a compacted segment, through kDeletingName a chunk
    // at a time, else at once (segment_files.cpp).
    void remove_compacted_segment(const std::string& name);
    Status remove_segment_gradually(const std::string& name);
    void delete_in_background(std::vector<std::string> names);

    // Meta file (REQUIRES: meta_mu_ held).
    Status write_meta_locked(const detail::MetadataFile& m);
    // The flusher's metadata writes (truncation and reset steps): writes
    // change(meta_), and while the disk is full waits and writes again
    // (meta_mu_ is not held while waiting).  aborted if the WAL closes.
    Status write_meta_retrying(const std::function<void(detail::MetadataFile&)>& change);

    // Options::on_health_change runs when no_space() (or failed()) changes.
    using NoSpaceSource = detail::WalHealth::NoSpaceSource;
    void set_no_space(NoSpaceSource source, bool no_space);
    void notify_health() const;

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
    // Writes `m` as the new metadata (the commit point of a compaction or
    // release), then drops the segments below its floor and hands their
    // files to the background thread.  REQUIRES: meta_mu_ held.
    Status commit_floor_locked(const detail::MetadataFile& m);

    detail::AppendQueue queue_;  // its own lock, queue_.mu

    mutable std::mutex meta_mu_;
    detail::MetadataFile meta_;  // under meta_mu_: what `meta` on disk says

    mutable std::mutex state_mu_;
    detail::PublishedLog log_;  // under state_mu_

    detail::WriterState writer_;  // the batch writer's (queue_.batch_owner), no lock
    detail::WriteCounters counters_;

    detail::BackgroundWork bg_;  // its own lock, bg_.mu
    bool started_ = false;       // start() ran: the writer may wait for space
    // buffered or direct, settled by recovery (choose_write_path) before
    // any segment is written; fixed afterwards.
    WritePath write_path_ = WritePath::buffered;

    detail::WalHealth health_;
    std::thread flusher_;
    std::thread background_;
    int lock_fd_ = -1;  // flock(2) on <dir>/LOCK: one Wal per directory
};

}  // namespace keel::wal
