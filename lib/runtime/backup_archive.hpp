// runtime/backup_archive.hpp — keel/backup_archive.hpp's codec on a
// wal::FileSystem (tests inject faults), and a group's snapshot file inside
// an archive as a file of its own (for SnapshotStore's checks and readers).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "keel/backup_archive.hpp"
#include "keel/wal/file_system.hpp"

namespace keel::runtime {

// verify_backup_archive on `fs`.
Result<BackupArchiveInfo> read_backup_archive(wal::FileSystem& fs, const std::string& path);

// BackupArchiveWriter::create on `fs`.
Result<std::unique_ptr<BackupArchiveWriter>> create_backup_archive(wal::FileSystem& fs,
                                                                   const std::string& path,
                                                                   std::size_t groups);

// Bytes [offset, offset + size) of `file` as a read-only file of `size`
// bytes (writes fail with unsupported).  A read past the slice's end reads
// short, as at the end of a file.
std::unique_ptr<wal::File> file_slice(std::shared_ptr<wal::File> file, std::uint64_t offset,
                                      std::uint64_t size);

// How a group's snapshot inside the archive at `path` is named in messages.
std::string archived_snapshot_name(const std::string& path, const BackupArchiveGroup& group);

}  // namespace keel::runtime
