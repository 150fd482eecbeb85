// keel/wal/file_system.hpp — the file layer keel does all its storage I/O
// through: the WAL's segments and metadata, and the runtime's snapshots.
//
// Production uses default_file_system() (POSIX: pread/pwritev/fdatasync, and
// O_DIRECT|O_DSYNC for the WAL's direct write path).
// Tests inject a wrapper to fail fdatasync, run out of space, count
// operations or copy the directory at chosen instants (simulated crashes).
// Every method returns errors as values; none throws.  Implementations must
// be thread-safe for concurrent calls on different File objects; one File
// is used by one thread at a time except pread, which may run concurrently
// with writes.
//
// Error codes: a file system that is full (ENOSPC) or over its quota
// (EDQUOT) reports ErrorCode::no_space, so that callers can tell "no room
// for a new file" (recoverable, docs/wal.md "Failure policy") from a failed
// I/O (io_error); a missing file is not_found.  Every message names the
// path, and a read or write also the byte offset.
//
// Files and directories are created private to the user that runs keel
// (0600 and 0700 in the POSIX implementation, further narrowed by umask).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "keel/status.hpp"

namespace keel::wal {

class File {
public:
    virtual ~File() = default;
    // Reads up to `size` bytes at `offset`; returns the count (short only at EOF).
    virtual Result<std::size_t> pread(void* buf, std::size_t size, std::uint64_t offset) = 0;
    // Writes all of `iov` at `offset` (retrying short writes) or fails.
    virtual Status pwritev(const struct iovec* iov, int iovcnt, std::uint64_t offset) = 0;
    // fdatasync(2).  An error here is fatal to the WAL (see docs/wal.md).
    virtual Status datasync() = 0;
    // Writes all of `iov` at `offset` and returns once it is durable.  The
    // default is pwritev() then datasync(); a file opened with
    // OpenMode::write_direct is durable on each write (O_DSYNC), in one
    // system call.  An error is fatal to the WAL, like datasync()'s.
    virtual Status write_durable(const struct iovec* iov, int iovcnt, std::uint64_t offset) {
        if (Status s = pwritev(iov, iovcnt, offset); !s.ok()) return s;
        return datasync();
    }
    // Starts writing the byte range [offset, offset + size) back to the disk
    // (wait = false), or waits until that has finished (wait = true).  A
    // pacing hint for bulk writes, never a durability promise (datasync()
    // is).  Optional: the default does nothing.
    virtual Status write_back(std::uint64_t offset, std::uint64_t size, bool wait) {
        (void)offset;
        (void)size;
        (void)wait;
        return Status();
    }
    // Reserves disk space for [offset, offset + size) without writing it
    // (fallocate(2)), so that running out of space shows at once, before
    // any byte is written.  Optional: the default says `unsupported` and
    // callers simply write.
    virtual Status allocate(std::uint64_t offset, std::uint64_t size) {
        (void)offset;
        (void)size;
        return Status(ErrorCode::unsupported, "this File does not preallocate");
    }
    virtual Result<std::uint64_t> size() = 0;
    virtual Status truncate(std::uint64_t size) = 0;
};

// Direct I/O (OpenMode::write_direct): every buffer address, offset and
// length must be a multiple of this.
inline constexpr std::uint64_t kDirectIoAlignBytes = 4096;

enum class OpenMode {
    read_only,   // the file must exist
    read_write,  // the file must exist
    create_new,  // create; fails if it exists
    // The file must exist; opened for writing only, past the page cache
    // (O_DIRECT) and durable on every write (O_DSYNC): write_durable() or
    // pwritev() of buffers aligned to kDirectIoAlignBytes, never pread().
    // ErrorCode::unsupported where the file system refuses direct I/O.
    write_direct,
    // The file must exist; opened for writing only, past the page cache
    // (O_DIRECT) but durable only at datasync(): for writing a large range
    // (zero-filling a segment) without copying it through the page cache.
    // The same alignment rules and ErrorCode::unsupported as write_direct.
    fill_direct,
};

class FileSystem {
public:
    virtual ~FileSystem() = default;
    virtual Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) = 0;
    virtual Status rename(const std::string& from, const std::string& to) = 0;
    virtual Status remove(const std::string& path) = 0;
    // fsync(2) of the directory itself, after a create, rename or remove.
    virtual Status sync_dir(const std::string& dir) = 0;
    // Names (not paths) of the regular files in `dir`, unsorted.
    virtual Result<std::vector<std::string>> list(const std::string& dir) = 0;
    virtual Result<bool> exists(const std::string& path) = 0;
    virtual Status create_dir(const std::string& dir) = 0;  // ok if it exists
    // Bytes an unprivileged writer may still use on the file system holding
    // `path` (statvfs(2)).  A hint for deciding when to retry after
    // no_space (a quota may refuse less).  Optional: the default says
    // `unsupported`.
    virtual Result<std::uint64_t> available_bytes(const std::string& path) {
        (void)path;
        return Status(ErrorCode::unsupported, "this FileSystem does not report free space");
    }
};

// The process-wide POSIX implementation.  Never null; lives forever.
FileSystem* default_file_system();

}  // namespace keel::wal
