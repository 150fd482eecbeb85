// runtime/snapshot_store.hpp — state machine snapshots on disk.
//
// Snapshots live in <data_dir>/snapshots, one file each, named
// snapshot-<index:016x>-<term:016x>.snap.  The directory is made when the
// first snapshot is written or adopted, not at open (a group that never
// snapshots costs no inode for it: docs/decisions/0047).  File format (little endian):
//   data:     what StateMachine's SnapshotFunction wrote (data_bytes)
//   config:   raft::encode_configuration of the snapshot's configuration
//   trailer:  u64 index | u64 term | u64 data_bytes | u32 config_bytes |
//             u32 crc32 of the data | u32 version (=1) |
//             u32 crc32 of config + the trailer fields before it | "KEELSNAP"
// The metadata travels inside the file, so a byte copy streamed from the
// leader is itself a complete snapshot file (adopt()).
//
// Every byte goes through wal::FileSystem (tests inject faults there).
//
// Checks: list()/open() read each trailer (magic, version, lengths, the
// trailer's CRC, the configuration decodes); a file that fails is damaged:
// reported (damaged()), never used, left in place for inspection.  verify()
// also reads the whole data against its CRC: the runtime calls it before it
// adopts a snapshot received from a leader and before it restores one at
// start-up, so a damaged file is refused while the state it would replace
// is still intact.  (Whether the bytes mean anything is the state
// machine's to say, in restore().)
//
// Writing: the file is written back a megabyte at a time as it is written
// (wal::WriteBackPacer), so that its flush never sends the disk the whole
// file at once (docs/decisions/0052-large-snapshot-files.md).
//
// Durability: a snapshot is written to <name>.tmp, then either made durable
// at once (fdatasync, rename to <name>, fsync of the directory) or renamed
// without a flush (Durability::deferred) and made durable later by flush(),
// one directory fsync for all.  Only durable snapshots count for the log's
// compaction (fallback_index()): an unflushed one may be lost, or be a
// damaged file, after a power loss, so the log keeps reaching back to the
// durable ones until it is flushed (docs/decisions/0027).
//
// The directory's name is made durable (mkdir, fsync of the parent) before
// the first file is created in it (ensure_dir): a crash between the two
// leaves at most an empty directory, which the next open treats as not yet
// durable and fsyncs the parent of again before its first snapshot.
//
// Crash windows: a visible .snap is complete unless it was unflushed at a
// power loss (then its checks fail, or its name is gone: the runtime starts
// from an older one, which the log continues); leftover .tmp files are
// deleted by open().  Kept: the two newest durable snapshots (the older is
// the fallback if the newest turns out to be damaged: the runtime compacts
// the log only up to the older, so that it can restart from either) and the
// newest snapshot if it is unflushed; the others are pruned when a
// snapshot is published, adopted or flushed.  Files found by open() are of
// unknown durability until make_durable() or flush().
//
// Pruning (snapshot_pruning.cpp): a file whose data is at most one removal
// step (wal::kRemovalStepBytes) is unlinked at once.  A larger one would
// hand a file system that discards online one discard of its whole size,
// which stalls the log's writes
// (docs/decisions/0052-large-snapshot-files.md): it is renamed to
// <name>.deleting.tmp at once (no reader finds it any more), and the
// remover (set_remover; without one, the pruning thread) fsyncs the
// directory, shortens it a step at a time (wal::remove_in_steps) and
// removes it.  Crash windows: the rename is durable before the first byte
// goes, so a crash never leaves a shortened file under a .snap name (it
// would be reported damaged); open() deletes the .tmp.  A file someone is
// reading is pinned (pin(), open_reader()): pruned, it is unlinked at once,
// and the open descriptors keep its bytes whole until they close.
//
// Threads: every member may be called from any thread (one mutex guards the
// list of files); a writer or reader object is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keel/state_machine.hpp"
#include "keel/status.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/write_back_pacer.hpp"
#include "raft/types.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

// Durable snapshots kept (the newest and its fallback).
inline constexpr std::size_t kSnapshotsKept = 2;
inline constexpr std::size_t kMaxSnapshotConfigBytes = 16 << 20;

struct SnapshotFile {
    raft::SnapshotMeta meta;
    std::string path;
    std::uint64_t data_bytes = 0;
    std::uint32_t data_crc32 = 0;  // as the trailer records it
    // The store made the file and its name durable (fdatasync, directory
    // fsync) in this process; false for files listed from disk.
    bool durable = false;
};

// When publish() makes a snapshot durable: before it returns, or at the
// next flush().
enum class Durability { now, deferred };

// Which snapshot files are being read (SnapshotPin).  Shared by the store
// and its pins, which may outlive it.
struct SnapshotPinTable {
    Mutex mu;
    std::map<std::string, std::size_t> readers GUARDED_BY(mu);  // path -> pins
};

// Keeps a snapshot file's bytes whole while it is read: if the store prunes
// the file meanwhile, it unlinks it at once instead of shortening it in
// steps.  Take the pin before opening the file.  Move-only; a default one
// pins nothing.  Any thread.
class SnapshotPin {
public:
    SnapshotPin() = default;
    SnapshotPin(SnapshotPin&& other) noexcept;
    SnapshotPin& operator=(SnapshotPin&& other) noexcept;
    SnapshotPin(const SnapshotPin&) = delete;
    SnapshotPin& operator=(const SnapshotPin&) = delete;
    ~SnapshotPin() { release(); }

private:
    friend class SnapshotStore;
    SnapshotPin(std::shared_ptr<SnapshotPinTable> table, std::string path);
    void release();
    std::shared_ptr<SnapshotPinTable> table_;
    std::string path_;
};

// A snapshot file that failed its checks, and why (the Status names the
// file and what is wrong).
struct DamagedSnapshot {
    std::string path;
    Status why;
};

// Writes the data of one snapshot to a temporary file; the file is deleted
// unless published.  A write that finds the disk full fails with no_space.
class SnapshotFileWriter final : public SnapshotWriter {
public:
    ~SnapshotFileWriter() override;
    Status write(std::string_view bytes) override;
    std::uint64_t data_bytes() const { return data_bytes_; }
    // A write found the disk full (whatever status the state machine's
    // snapshot function made of it).
    bool out_of_space() const { return out_of_space_; }
    // A write, fsync or rename of the file failed otherwise (an I/O error:
    // the runtime fail-stops, docs/runtime.md "Failure").
    bool io_failed() const { return io_failed_; }

private:
    friend class SnapshotStore;
    SnapshotFileWriter(wal::FileSystem& fs, std::unique_ptr<wal::File> file, std::string temp_path);
    Status flush_buffer();
    // Appends the trailer and closes the file (SnapshotStore::publish
    // makes it durable and visible: wal::install_file).
    Status finish(const raft::SnapshotMeta& meta);

    wal::FileSystem& fs_;
    std::unique_ptr<wal::File> file_;
    std::string temp_path_;
    std::string buffer_;
    std::uint64_t file_bytes_ = 0;  // written to the file so far
    std::uint64_t data_bytes_ = 0;
    std::uint32_t crc_state_ = 0;  // running crc32 of the data
    wal::WriteBackPacer pacer_;    // the file written back as it grows
    bool finished_ = false;
    bool failed_ = false;
    bool published_ = false;  // renamed into place: nothing to delete
    bool out_of_space_ = false;
    bool io_failed_ = false;
};

// Streams the data of one snapshot; fails with corruption at the end if the
// data does not match its checksum.
class SnapshotFileReader final : public SnapshotReader {
public:
    Result<std::size_t> read(char* buffer, std::size_t capacity) override;
    std::uint64_t size_bytes() const override { return data_bytes_; }
    std::uint64_t index() const override { return index_; }

private:
    friend class SnapshotStore;
    SnapshotFileReader(std::unique_ptr<wal::File> file, std::string path, std::uint64_t data_bytes,
                       std::uint32_t expected_crc);
    SnapshotPin pin_;  // a store's file: whole while read
    std::unique_ptr<wal::File> file_;
    std::string path_;
    std::uint64_t offset_ = 0;
    std::uint64_t data_bytes_;
    std::uint32_t expected_crc_;
    std::uint32_t crc_state_;
    std::uint64_t index_ = 0;
};

class SnapshotStore {
public:
    struct Listing {
        std::vector<SnapshotFile> valid;  // trailers check out; ascending by index
        std::vector<DamagedSnapshot> damaged;
    };
    // Read-only: the .snap files in `dir` (none if it does not exist), each
    // trailer checked.  Fails only if the directory cannot be read.
    static Result<Listing> list(const std::string& dir, wal::FileSystem& fs);

    // Creates nothing: `dir` (and its staging subdirectory) may not exist
    // until the first snapshot.  Deletes leftover temporary and staged
    // files, and indexes the snapshots (list()).
    static Result<std::unique_ptr<SnapshotStore>> open(const std::string& dir, wal::FileSystem& fs);

    // The newest valid snapshot, if any.
    std::optional<SnapshotFile> latest() const;
    // Every valid snapshot, ascending by index.
    std::vector<SnapshotFile> all() const;
    // The index of the durable snapshot before the newest durable one (the
    // fallback), if any: the log must reach back to it.
    std::optional<raft::Index> fallback_index() const;
    // The index of the newest durable snapshot, if any.
    std::optional<raft::Index> durable_index() const;
    // Snapshots published with Durability::deferred since the last flush
    // (or durable publish or adoption).
    std::size_t deferred_publishes() const;
    // Damaged files found so far: at open, by verify() and mark_damaged().
    std::vector<DamagedSnapshot> damaged() const;
    // `file` failed a check after open (its data CRC, or restore()): it is
    // no longer offered (latest(), all()) and is reported by damaged().
    void mark_damaged(const SnapshotFile& file, Status why);

    // Reads `path` completely: trailer, configuration, data CRC, and, when
    // `expected` is given, that it holds that snapshot.  corruption (or
    // unsupported) naming the file and offset when it does not; io_error if
    // it cannot be read.
    static Result<SnapshotFile> verify(wal::FileSystem& fs, const std::string& path,
                                       const raft::SnapshotMeta* expected = nullptr);
    // verify() of a file opened already, named `path` in the messages: a
    // snapshot file inside a backup archive (keel/backup_archive.hpp).
    static Result<SnapshotFile> verify_file(wal::File& file, const std::string& path,
                                            const raft::SnapshotMeta* expected = nullptr);
    // fdatasyncs `file` and fsyncs the directory: a snapshot found at start-up
    // may have been in the page cache only.  The store then counts it as
    // durable.
    Status make_durable(const SnapshotFile& file);
    // Makes every kept snapshot that is not durable yet durable: one
    // fdatasync each, then one fsync of the directory; then deletes what is
    // no longer kept.  io_error (the caller fail-stops) if a flush failed.
    Status flush();

    // Starts writing a snapshot; the first one creates the directory
    // (ensure_dir): no_space if the disk is full, io_error if the mkdir
    // failed otherwise or the parent's fsync failed.
    Result<std::unique_ptr<SnapshotFileWriter>> begin();
    // Finishes `writer` with `meta` and renames it into place; with
    // Durability::now it fdatasyncs the file first and fsyncs the directory
    // after, so that once this returns ok the snapshot survives a crash;
    // with deferred, flush() does that later (a power loss before may lose
    // it).  latest() then returns it (or a newer one), and what is no longer
    // kept is deleted.  The writer is finished either way.  no_space when
    // the trailer found no room (nothing was published); io_error if a
    // write, fdatasync, rename or directory fsync failed.
    Result<SnapshotFile> publish(SnapshotFileWriter& writer, const raft::SnapshotMeta& meta,
                                 Durability durability = Durability::now);

    // Takes over a complete snapshot file received from the leader (already
    // fsynced at `path`, same file system, verified by verify()): checks its
    // trailer holds `expected`, renames it into place and fsyncs the
    // directory (it is durable), then deletes what is no longer kept.
    Result<SnapshotFile> adopt(const std::string& path, const raft::SnapshotMeta& expected);

    // Bytes free for snapshots (FileSystem::available_bytes of the
    // directory, or of its parent before the directory exists).
    Result<std::uint64_t> available_bytes() const;

    // Where the transport stages incoming snapshots (a subdirectory, which
    // the transport creates with its first stream; adopt() moves a staged
    // file out of it).
    std::string staging_dir() const { return dir_ + "/incoming"; }

    // Pinned (pin()) for as long as the reader lives.
    Result<std::unique_ptr<SnapshotFileReader>> open_reader(const SnapshotFile& file) const;
    // A reader over the snapshot file `file` (named `path` in the messages),
    // opened already: one inside a backup archive.  Its trailer is checked.
    static Result<std::unique_ptr<SnapshotFileReader>> open_reader(std::unique_ptr<wal::File> file,
                                                                   const std::string& path);

    const std::string& dir() const { return dir_; }
    wal::FileSystem& file_system() const { return fs_; }

    // Pins `file` (SnapshotPin): take it before opening the file by its
    // path, and keep it until the reading is done.  A file pruned already
    // is gone from its name; the open then fails with not_found.
    SnapshotPin pin(const SnapshotFile& file) const;

    // Queues a task (the stepped deletion of pruned files) on another
    // thread; false if it refuses, and the task then runs on the thread
    // that pruned.  The task refers to the file system and the paths only,
    // not to the store, so it may run after the store is gone.
    using Remover = std::function<bool(std::function<void()> task)>;
    // Where pruned files are deleted in steps from now on (the runtime: its
    // background thread, never the I/O thread that adopts snapshots).
    void set_remover(Remover remover) EXCLUDES(mu_);

private:
    SnapshotStore(std::string dir, wal::FileSystem& fs) : dir_(std::move(dir)), fs_(fs) {}
    // Creates the directory if needed and fsyncs its parent, once: called
    // before anything put in the directory can be relied on (begin, adopt,
    // make_durable, flush).  The mkdir's error as it is (no_space on a full
    // disk), io_error if the fsync failed.
    Status ensure_dir() EXCLUDES(dir_mu_);
    std::string parent_dir() const;
    // Takes the files no longer kept out of the list (the header says which
    // are): unlinks the small and the pinned ones, renames the others to
    // <name>.deleting.tmp and queues them for start_removals().
    void prune_locked() REQUIRES(mu_);
    // Hands what prune_locked queued to the remover (or deletes it here).
    void start_removals() EXCLUDES(mu_);
    bool listed(const std::string& path) const EXCLUDES(mu_);
    void add_locked(SnapshotFile f) REQUIRES(mu_);

    const std::string dir_;
    wal::FileSystem& fs_;
    // Held across ensure_dir's mkdir and fsync (never with mu_).
    Mutex dir_mu_;
    // The directory exists and its name in the parent is durable.
    bool dir_durable_ GUARDED_BY(dir_mu_) = false;
    mutable Mutex mu_;
    std::vector<SnapshotFile> files_ GUARDED_BY(mu_);  // ascending by index
    std::vector<DamagedSnapshot> damaged_ GUARDED_BY(mu_);
    std::size_t deferred_publishes_ GUARDED_BY(mu_) = 0;
    // Renamed away by prune_locked, for start_removals.
    std::vector<std::string> to_remove_ GUARDED_BY(mu_);
    Remover remover_ GUARDED_BY(mu_);
    const std::shared_ptr<SnapshotPinTable> pins_ = std::make_shared<SnapshotPinTable>();
};

}  // namespace keel::runtime
