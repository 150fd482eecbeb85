// runtime/snapshot_store.hpp — state machine snapshots on disk.
//
// Snapshots live in <data_dir>/snapshots, one file each, named
// snapshot-<index:016x>-<term:016x>.snap.  File format (little endian):
//   data:     what StateMachine's SnapshotFunction wrote (data_bytes)
//   config:   raft::encode_configuration of the snapshot's configuration
//   trailer:  u64 index | u64 term | u64 data_bytes | u32 config_bytes |
//             u32 crc32 of the data | u32 version (=1) |
//             u32 crc32 of config + the trailer fields before it | "KEELSNAP"
// The metadata travels inside the file, so a byte copy streamed from the
// leader is itself a complete snapshot file (adopt()).
// Crash windows: a snapshot is written to <name>.tmp, fdatasynced, renamed
// to <name> and the directory fsynced, so a visible .snap is always
// complete; leftover .tmp files are deleted by open().  The two newest
// snapshots are kept (the older is the fallback if the newest turns out to
// be damaged); older ones are deleted after a new one is published.
//
// Threads: every member may be called from any thread (one mutex guards the
// list of files); a writer or reader object is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "keel/state_machine.hpp"
#include "keel/status.hpp"
#include "raft/types.hpp"

namespace keel::runtime {

inline constexpr std::size_t k_snapshots_kept = 2;
inline constexpr std::size_t k_max_snapshot_config_bytes = 16 << 20;

struct SnapshotFile {
    raft::SnapshotMeta meta;
    std::string path;
    std::uint64_t data_bytes = 0;
};

// Writes the data of one snapshot to a temporary file; the file is deleted
// unless published.
class SnapshotFileWriter final : public SnapshotWriter {
public:
    ~SnapshotFileWriter() override;
    Status write(std::string_view bytes) override;
    std::uint64_t data_bytes() const { return data_bytes_; }

private:
    friend class SnapshotStore;
    SnapshotFileWriter(int fd, std::string temp_path);
    Status flush_buffer();
    // Appends the trailer and makes the file durable (not yet visible).
    Status finish(const raft::SnapshotMeta& meta);

    int fd_;
    std::string temp_path_;
    std::string buffer_;
    std::uint64_t data_bytes_ = 0;
    std::uint32_t crc_state_ = 0;  // running crc32 of the data
    bool finished_ = false;
    bool failed_ = false;
};

// Streams the data of one snapshot; fails with corruption at the end if the
// data does not match its checksum.
class SnapshotFileReader final : public SnapshotReader {
public:
    ~SnapshotFileReader() override;
    Result<std::size_t> read(char* buffer, std::size_t capacity) override;
    std::uint64_t size_bytes() const override { return data_bytes_; }

private:
    friend class SnapshotStore;
    SnapshotFileReader(int fd, std::uint64_t offset, std::uint64_t data_bytes,
                       std::uint32_t expected_crc);
    int fd_;
    std::uint64_t offset_;
    std::uint64_t remaining_;
    std::uint64_t data_bytes_;
    std::uint32_t expected_crc_;
    std::uint32_t crc_state_ = 0;
};

class SnapshotStore {
public:
    // Creates `dir` if needed, deletes leftover temporary files and indexes
    // the valid snapshots (damaged ones are skipped and left for inspection).
    static Result<std::unique_ptr<SnapshotStore>> open(const std::string& dir);

    // The newest valid snapshot, if any.
    std::optional<SnapshotFile> latest() const;

    // Starts writing a snapshot.
    Result<std::unique_ptr<SnapshotFileWriter>> begin();
    // Finishes `writer` with `meta`, fdatasyncs it, renames it into place,
    // fsyncs the directory and deletes all but the k_snapshots_kept newest.
    // Once this returns ok the snapshot survives a crash and latest()
    // returns it (or a newer one).  The writer is finished either way.
    Result<SnapshotFile> publish(SnapshotFileWriter& writer, const raft::SnapshotMeta& meta);

    // Takes over a complete snapshot file received from the leader (already
    // fsynced at `path`, same file system): checks that it holds `expected`,
    // renames it into place and fsyncs the directory.
    Result<SnapshotFile> adopt(const std::string& path, const raft::SnapshotMeta& expected);

    // Checks a file received from another member before anything acts on
    // it: a complete snapshot file (trailer, configuration, checksums, the
    // data's included, read through once) holding exactly `expected`.
    // corruption or unsupported says what is wrong.  Any thread.
    Status verify(const std::string& path, const raft::SnapshotMeta& expected) const;

    // Where the transport stages incoming snapshots (a subdirectory).
    std::string staging_dir() const { return dir_ + "/incoming"; }

    Result<std::unique_ptr<SnapshotFileReader>> open_reader(const SnapshotFile& file) const;

    const std::string& dir() const { return dir_; }

private:
    explicit SnapshotStore(std::string dir) : dir_(std::move(dir)) {}
    void prune_locked();
    void add_locked(SnapshotFile f);

    const std::string dir_;
    mutable std::mutex mu_;
    std::vector<SnapshotFile> files_;  // GUARDED_BY(mu_), ascending by index
};

}  // namespace keel::runtime
