// transport/snapshot_files.hpp — the file side of snapshot streaming: reading
// the sender's snapshot in chunks, and staging an incoming one durably.
//
// Standard library, POSIX, and the WAL's file layer for the one durable
// rename keel has (wal::install_file).  Both do blocking disk I/O on the caller's
// thread (the transport's io_context thread); chunks are bounded, so one
// call blocks for one chunk at most.
//
// Staging protocol (crash windows): chunks are appended to
// <dir>/<name>.part; on the final chunk the file is fdatasynced, renamed to
// <dir>/<name>.snap and the directory fsynced (wal::install_file), and only then is the path
// handed to the runtime.  A crash leaves at most a .part file, never a
// .snap that looks complete but is not; remove_partial_snapshots() deletes
// leftovers at start-up.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "keel/status.hpp"

namespace keel::transport {

class SnapshotReader {
public:
    static Result<SnapshotReader> open(const std::string& path);
    SnapshotReader(SnapshotReader&& other) noexcept;
    SnapshotReader& operator=(SnapshotReader&& other) noexcept;
    ~SnapshotReader();

    std::uint64_t size_bytes() const { return size_bytes_; }
    // Reads min(max_bytes, size - offset) bytes at `offset`.  A file that
    // shrank since open() is an error (corruption), not a short chunk.
    Result<std::string> read(std::uint64_t offset, std::size_t max_bytes);

private:
    SnapshotReader(int fd, std::uint64_t size, std::string path)
        : fd_(fd), size_bytes_(size), path_(std::move(path)) {}
    int fd_ = -1;
    std::uint64_t size_bytes_ = 0;
    std::string path_;
};

class StagingFile {
public:
    // Creates (truncating) <dir>/<name>.part, and `dir` with its missing
    // parents (0700) if it does not exist yet.
    static Result<StagingFile> create(const std::string& dir, const std::string& name);
    StagingFile(StagingFile&& other) noexcept;
    StagingFile& operator=(StagingFile&& other) noexcept;
    // Deletes the partial file unless finish() succeeded.
    ~StagingFile();

    std::uint64_t size_bytes() const { return size_bytes_; }
    Status append(std::string_view data);
    // fdatasync, rename to <dir>/<name>.snap, fsync the directory
    // (wal::install_file); returns the final path.  On error the file is
    // deleted (the sender streams it again).
    Result<std::string> finish();
    // Closes and deletes the partial file.  Idempotent.
    void abort();

private:
    StagingFile(int fd, std::string dir, std::string name)
        : fd_(fd), dir_(std::move(dir)), name_(std::move(name)) {}
    std::string part_path() const;
    int fd_ = -1;
    std::string dir_;
    std::string name_;
    std::uint64_t size_bytes_ = 0;
};

// Deletes every "*.part" file left in `dir` by an earlier run.
void remove_partial_snapshots(const std::string& dir);

}  // namespace keel::transport
