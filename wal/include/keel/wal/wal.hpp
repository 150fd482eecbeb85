// keel/wal/wal.hpp — the group-commit write-ahead log.
//
// An index-addressed log of Records in a directory of segment files, plus a
// small durable Metadata record.  Concurrent appends are batched: one flusher
// thread writes everything queued with one write and one fdatasync, then
// completes the whole batch.  The on-disk format, recovery rules and crash
// windows are specified in docs/wal.md.  The WAL knows nothing about Raft.
// Many streams (groups) may share it: every record carries its group, and
// old segments go once every group in them has released its records
// (release(), docs/wal.md "Groups").
//
// Threads: every public method may be called from any thread.  Completion
// callbacks run on the thread that writes the batch (the WAL's flusher
// thread, or a caller of write_queued()), in submission (= index) order,
// with no WAL lock held; they may call append()/truncate_after()/reset(), but
// must not block waiting for another WAL operation (that would deadlock the
// writer), so the *_sync helpers below must not be called from a callback;
// and they must not throw.
//
// Failure policy (docs/wal.md): if a write or fdatasync of data fails, the
// WAL enters the failed state (fail-stop): pending operations complete with
// ErrorCode::failed and every later mutating call returns ErrorCode::failed.
// The only way out is to close it and open it again (recovery decides what
// is durable).  Running out of space for a new file (the next segment, a
// metadata update) before any data is at stake is not a failure: the WAL
// waits for space and retries by itself (no_space() meanwhile), or, for
// save_metadata() and compact_before(), returns ErrorCode::no_space.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "keel/status.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/metadata.hpp"
#include "keel/wal/record.hpp"

namespace keel::wal {

// While the disk is full, how often the WAL tries again to make the file it
// needs (the next segment; a truncation's or reset's metadata update).
inline constexpr std::uint32_t kNoSpaceRetryMs = 100;

// How the WAL writes records (docs/wal.md, "Write paths").
enum class WritePath {
    // pwritev into the page cache, then fdatasync; segment layout version 1.
    buffered,
    // O_DIRECT|O_DSYNC: one block-aligned write per batch from an aligned
    // buffer, durable when it returns; every batch starts on a fresh block,
    // behind a batch header (segment layout version 3).  Open fails with ErrorCode::unsupported
    // where the file system refuses O_DIRECT.
    direct,
    // direct where the file system accepts O_DIRECT (probed at open),
    // buffered elsewhere (tmpfs on older kernels, some network file systems).
    automatic,
};
// "buffered", "direct", "auto".
const char* write_path_name(WritePath path) noexcept;

struct Options {
    // A segment is rolled when the next record does not fit (a single record
    // larger than this gets a segment of its own that grows past it).
    std::uint64_t segment_bytes = 64ull << 20;
    // Appends with a larger payload are refused with ErrorCode::too_large.
    std::uint64_t max_record_bytes = 64ull << 20;
    // Zero-fill the active segment and prepare the next one ahead of time on
    // a background thread (once the active one is half full), so appends
    // overwrite zeroed blocks (the fast fdatasync floor on ext4).  Off:
    // segments are created empty and appends extend the file.
    bool preallocate = true;
    // On corruption (a bad record followed by valid ones, a gap, a broken
    // chain) truncate the log at the first bad record instead of failing.
    // Reported in OpenReport::repaired.  Loses every record after that point.
    bool repair = false;
    // Recent records kept in memory so reads of the tail need no I/O (0: none,
    // for a user that keeps its own copy).
    std::uint64_t cache_bytes = 16ull << 20;
    // Bytes of payload queued but not yet written; append() beyond it
    // returns ErrorCode::busy.
    std::uint64_t max_queue_bytes = 1ull << 30;
    // Upper bound for one flusher batch (one write + one fdatasync); a batch
    // always takes at least one operation.
    std::uint64_t max_batch_bytes = 32ull << 20;
    // After a batch, when the queue is empty, the flusher keeps checking it
    // for this long before it sleeps (0 = sleep at once).  A writer that
    // submits its next record microseconds after a completion (a closed loop
    // whose completions are handed to another thread) then finds the flusher
    // awake instead of paying a thread wakeup.  The flusher holds its core
    // meanwhile (it never yields: see flusher.cpp), so keep this short.
    // Costs up to this much CPU per batch; never delays a write.
    // Changeable with set_idle_spin_us().
    std::uint32_t idle_spin_us = 0;
    // Runs the flusher under SCHED_BATCH (sched(7)): woken, by a queued
    // append or its fdatasync's end, it does not preempt the thread running
    // on its core but waits for that thread to block or use up its slice.
    // With a core idle it runs at once as before, so a lone writer's latency
    // is unchanged; in a process whose threads hand each other small pieces
    // of work on few cores (a keel::Host) it saves a pair of context
    // switches per wakeup (docs/decisions/0054).  Best effort: where the
    // system refuses the policy the flusher runs as before.
    bool flusher_sched_batch = false;
    // Called on the writing thread (the flusher, or a caller of
    // Wal::write_queued()) after the callbacks of each batch (one
    // group commit) have all run.  Lets a user that records progress in its
    // per-append callbacks act once per batch.  Must not block; whatever it
    // runs delays the next batch (it may append: that lands in the next).
    std::function<void()> after_batch;
    // Called when no_space() or failed() changes, on the thread that saw the
    // change (the flusher, the background thread, or a caller of
    // compact_before/save_metadata), with no WAL lock held.  It only says
    // "look again": read no_space() and failed().  Must not block or call
    // the WAL's blocking helpers; it may be called during open().
    std::function<void()> on_health_change;
    // Index of the first record of a brand-new WAL (an existing one keeps its own).
    std::uint64_t initial_index = 1;
    // Null = default_file_system().  Not owned; must outlive the Wal.
    FileSystem* fs = nullptr;
    // Wal::write_path() says which one `automatic` chose.  Either path
    // reads what the other wrote.
    WritePath write_path = WritePath::buffered;
};

// What open() found and fixed.
struct OpenReport {
    bool created = false;           // the directory held no WAL; a new one was made
    std::uint64_t segments = 0;     // segment files after recovery
    std::uint64_t records = 0;      // records after recovery (physically present)
    bool torn_tail = false;         // an incomplete last write was cut away
    std::string torn_file;          // segment file name of the torn tail
    std::uint64_t torn_offset = 0;  // byte offset in that file where it began
    std::uint64_t torn_bytes = 0;   // non-zero bytes that were zeroed there
    bool repaired = false;          // Options::repair cut away corruption
    std::string repair_detail;      // what was found (class, file, offset, index)
    bool redid_truncation = false;  // a truncate_after/reset interrupted by a crash was finished
    std::uint64_t removed_segments = 0;  // segments deleted to finish a compaction/truncation
};

// Counters since open(), for monitoring.
struct Stats {
    std::uint64_t segments = 0;    // segment files in use
    std::uint64_t disk_bytes = 0;  // bytes of records and headers in them
    std::uint64_t fsyncs = 0;      // durable writes of segments (fdatasync, or O_DSYNC writes)
    std::uint64_t batches = 0;     // flusher batches written
    std::uint64_t records_written = 0;
    std::uint64_t bytes_written = 0;  // record bytes (headers, payloads, padding)
    bool next_segment_ready = false;  // the next segment is zero-filled and waiting
    double records_per_fsync() const {
        return fsyncs == 0 ? 0.0
                           : static_cast<double>(records_written) / static_cast<double>(fsyncs);
    }
};

// A group that keeps the oldest segment from being deleted
// (Wal::oldest_segment_pins): it has records there that it has not released.
struct SegmentPin {
    std::uint64_t group = 0;
    std::uint64_t segment_first_index = 0;  // the oldest segment
    std::uint64_t last_index = 0;           // of the group's last record in it
    // What the group has released so far (Wal::release), or the log floor
    // if that is higher: it must release past last_index to unpin it.
    std::uint64_t released_below = 0;
};

// One group's release (Wal::release of several groups at once).
struct Release {
    std::uint64_t group = 0;
    std::uint64_t index = 0;
};

class Wal {
public:
    // Who writes an append: the flusher thread, woken for it (the default),
    // or the caller, who calls write_queued() next on the same thread.
    enum class Writer { flusher, caller };

    // Called once, on the writing thread, when the operation is durable (ok)
    // or could not be made durable (ErrorCode::failed: the WAL is now in its
    // failed state; the message names the original error).
    using Callback = std::function<void(Status)>;

    // Opens (creating if needed) the WAL in `dir` and recovers it: verifies
    // every CRC and the chain, cuts a torn tail, finishes an interrupted
    // truncation or compaction.  On corruption it fails with
    // ErrorCode::corruption naming the file, offset and index, and modifies
    // nothing (unless options.repair).  Only one Wal may have a directory open
    // at a time (flock on <dir>/LOCK): a second open returns ErrorCode::busy.
    static Result<std::unique_ptr<Wal>> open(const std::string& dir, Options options = {});

    // Completes every queued operation (their callbacks run), then stops the
    // threads.  Does not throw.
    ~Wal();
    Wal(const Wal&) = delete;
    Wal& operator=(const Wal&) = delete;

    // ---- writes (queued, executed by the flusher in submission order) ----

    // Appends consecutive records: records[0].index must equal
    // next_index() and each next one must be +1.  If the returned Status is
    // not ok (invalid_argument, too_large, busy, failed, aborted) nothing was
    // queued and `done` is never called; otherwise `done` is called exactly
    // once, after all the records are durable, and they are readable by then.
    //
    // Writer::caller does not wake the flusher: the caller promises to call
    // write_queued() next (until then the records wait, unless something
    // else wakes the flusher).  For a thread that has nothing to do but wait
    // for the write anyway (a Raft follower's network thread, whose answer
    // waits for it): writing itself saves the flusher's wakeup.
    Status append(std::vector<Record> records, Callback done, Writer writer = Writer::flusher);
    Status append(Record record, Callback done);
    // An empty vector for the next append(records), with the capacity of one
    // the flusher has finished with when there is one (keel/spare_vectors.hpp:
    // a writer that fills it spares malloc a large request per batch).
    // Thread-safe.
    std::vector<Record> record_buffer();

    // Removes every record with index > `index` (a Raft follower whose log
    // conflicts with the leader's).  Ordered with appends: operations
    // submitted earlier are written and completed first (their callbacks get
    // ok even if this then removes their records); operations submitted later
    // run after it, so truncate_after(k) followed by append(k+1, ...) is
    // valid immediately, without waiting.  `done` fires once it is durable.
    // REQUIRES: index + 1 >= first_index(); index >= last: a no-op.
    Status truncate_after(std::uint64_t index, Callback done);

    // Throws the whole log away; the next append must be `next_index`
    // (a follower that installed a snapshot ending at next_index - 1).
    // Ordered like truncate_after.  Crash-safe: recovers to before or after.
    Status reset(std::uint64_t next_index, Callback done);

    // Makes records with index < `index` unreadable (after a snapshot) and
    // deletes the segment files that hold only such records, on a background
    // thread (never the flusher).  Returns once the new first index is
    // durable (one metadata write); first_index() == index afterwards.
    // index <= first_index() is a no-op; index > last_index() + 1 is
    // invalid_argument (use reset() to move past the end).  The term of the
    // record at index - 1 is no longer available: keep it with the snapshot
    // (Metadata::snapshot_term).  no_space (nothing changed) when the disk
    // has no room for the metadata update.
    Status compact_before(std::uint64_t index);

    // Many groups, one log: `group` no longer needs its records with index
    // < `index` (a group that took a snapshot).  A segment file is deleted
    // (on a background thread) once every group with records in it has
    // released them, oldest first: the log floor (first_index()) moves to
    // the first segment some group still needs, so an idle group pins
    // every segment from its oldest record on (oldest_segment_pins() says
    // which).  compact_before(i) is a release by every group.  Returns once
    // the release is durable (one metadata write, which also holds the new
    // floor): a crash keeps it, and never loses a record a group has not
    // released.  A group with no records below `index` has nothing to
    // release: ok, nothing written.  index <= what the group released
    // before: a no-op.  invalid_argument when index > last_index() + 1 or
    // group > kMaxGroup; too_large when kMaxReleasedGroups groups already
    // hold releases of records still on disk; no_space as compact_before.
    Status release(std::uint64_t group, std::uint64_t index);
    // The releases of several groups as one metadata write (the groups
    // of a shared log that moved their records forward at once): each as
    // release(group, index) would do it alone, durable together, or none
    // (on an error nothing changed).  Empty, or nothing to release: ok,
    // nothing written.
    Status release(std::span<const Release> releases);
    // The same, with `metadata` replacing the saved metadata in the same
    // write (a shared log's user that keeps per-group state there: what it
    // knew of the records it releases).  Nothing released and the same
    // metadata: ok, nothing written.  too_large as save_metadata.
    Status release(std::span<const Release> releases, const Metadata& metadata);
    // The groups that keep the oldest segment from being deleted, in
    // group order.  Empty while the oldest segment is the active one, or
    // when nothing keeps it (it goes at the next release or compact_before).
    std::vector<SegmentPin> oldest_segment_pins() const;

    // Durably replaces the metadata (atomic: a crash leaves old or new).
    // no_space (nothing changed, the WAL is not failed) when the disk has no
    // room for the new file; the caller may try again later.
    // Blocks the caller for a file write + fdatasync + rename + directory
    // fsync (a few hundred µs); does not stall the flusher.  Raft needs the
    // term and vote durable before answering, so call it on every term/vote
    // change; the commit index need not be durable (Raft recovers it), so
    // include the latest commit when you save anyway rather than saving on
    // every commit advance.  opaque is limited to kMaxMetadataOpaqueBytes.
    Status save_metadata(const Metadata& metadata);
    // The last saved metadata (all zero for a new WAL).
    Metadata metadata() const;

    // ---- reads (durable records only: those whose append has completed) ----

    // Records [from, to_exclusive), stopping early once their payloads exceed
    // max_bytes (at least one record is returned if any is in range).
    // not_found if from < first_index() or to_exclusive > last_index() + 1.
    Result<std::vector<Record>> read(std::uint64_t from, std::uint64_t to_exclusive,
                                     std::uint64_t max_bytes = UINT64_MAX) const;
    // first_index() == last_index() + 1 when the log is empty.
    std::uint64_t first_index() const;
    // The smallest index i for which compact_before(i) deletes a segment
    // file (the first index of the second-oldest segment); 0 while there is
    // only one segment.  Compacting to less only moves the logical floor
    // (one metadata write and its fsyncs) and frees no disk space.
    std::uint64_t reclaimable_from() const;
    std::uint64_t last_index() const;
    // The index the next append must start at (counts queued appends,
    // truncations and resets, not only durable records).
    std::uint64_t next_index() const;
    // Term of a durable record; not_found outside [first_index, last_index].
    Result<std::uint64_t> term_at(std::uint64_t index) const;

    bool failed() const;
    // Why the WAL failed (ErrorCode::failed, naming the original error and
    // its file); ok while it has not.
    Status failure() const;
    // The disk is full: the WAL waits for space for a file it needs (the
    // next segment, prepared ahead of time once the active one is half
    // full, or a metadata update of a truncation or reset) and retries
    // every kNoSpaceRetryMs.  Appends are still queued; they are written
    // once space is back, unless a roll needs the missing segment first.
    // Turns false by itself when the retry succeeds.
    bool no_space() const;
    // Operations are queued that the flusher has not taken yet, or the WAL
    // is closing (lock-free; a hint: it may change at once).
    bool has_queued() const;
    // Writes and fdatasyncs what is queued as one batch on the calling
    // thread, exactly as the flusher would (the same batch limit; callbacks
    // and Options::after_batch run on this thread), and returns true.  If a
    // batch is being written already (by the flusher or another caller), or
    // the WAL is closing, it returns false at once and the flusher writes the
    // queue after that batch.  Blocks for the write; not from a callback or
    // after_batch (it returns false there: their batch is in progress).
    bool write_queued();
    // Options::idle_spin_us, from now on.  Thread-safe.
    void set_idle_spin_us(std::uint32_t us);
    Stats stats() const;
    // The path in use: buffered or direct (what Options::write_path
    // `automatic` chose at open; never automatic).
    WritePath write_path() const;
    const OpenReport& open_report() const;
    const std::string& dir() const;

    class Impl;

private:
    explicit Wal(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Blocking helpers (tests, tools).  Never call them from a WAL callback.
Status append_sync(Wal& wal, std::vector<Record> records);
Status truncate_after_sync(Wal& wal, std::uint64_t index);
Status reset_sync(Wal& wal, std::uint64_t next_index);

}  // namespace keel::wal
