// keel/backup_archive.hpp — a backup of a Host's groups in one file: each
// group's snapshot file (keel/snapshot_file.hpp) with its group id.  A
// BackupArchiveWriter makes one from snapshot files (keelctl snapshot save
// of a raftd with --groups), verify_backup_archive checks one, and
// restore_host_data_dir (keel/host_restore.hpp) builds a Host's data dir
// from one.  A one-group backup stays a plain snapshot file.
//
// Format, version 1 (little endian; CRC-32 as zlib's crc32(): polynomial
// 0x04C11DB7 reflected, initial value and final XOR 0xFFFFFFFF):
//   header, 24 bytes:   "KEELBKUP" | u32 version (1) | u32 group count N |
//                       u32 flags (0) | u32 CRC-32 of the 20 bytes before
//   N sections, group ids strictly ascending, each:
//     section header, 40 bytes: u64 group id | u64 snapshot file bytes S |
//                       u64 index | u64 term | u32 data CRC (the
//                       snapshot's, as its trailer has them) |
//                       u32 CRC-32 of the 36 bytes before
//     S bytes:          the group's snapshot file, byte for byte
//   footer, 24 bytes:   u64 archive bytes (the whole file) | u32 N |
//                       u32 CRC-32 of every section header, in order |
//                       "KEELBEND"
// The snapshot files check themselves (their trailer and data CRCs); the
// archive's own checks tie them to their group ids and catch a truncated,
// padded or spliced file.  Each group's snapshot is as of its
// own index: the groups are not cut at one instant (they are independent
// logs).  docs/operations.md, "Backup and restore with groups".
//
// Threads: the functions and a writer from any one thread at a time; they
// block on the disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "keel/snapshot_file.hpp"
#include "keel/status.hpp"
#include "keel/transport.hpp"

namespace keel {

inline constexpr std::uint32_t kBackupArchiveVersion = 1;
// At most this many groups in one archive (a header claiming more is refused
// before anything is read for them).
inline constexpr std::uint32_t kBackupArchiveMaxGroups = 1u << 16;
// At most this many bytes in one group's snapshot file.
inline constexpr std::uint64_t kBackupArchiveMaxSnapshotBytes = 1ull << 40;

struct BackupArchiveGroup {
    GroupId group = 0;
    SnapshotFileInfo snapshot;  // its snapshot file, checked
    std::uint64_t offset = 0;   // where that file starts in the archive
};

struct BackupArchiveInfo {
    std::uint32_t version = 0;
    std::uint64_t size_bytes = 0;
    std::vector<BackupArchiveGroup> groups;  // ascending by group id
};

// Reads the archive at `path` whole and checks it: header, section headers,
// footer, every group's snapshot file (trailer, configuration, data CRC,
// and that it holds the index, term and data CRC its section header
// announces), the group ids (at most 2^62, the WAL's largest; strictly
// ascending: a group twice is refused), the count.  corruption naming what is wrong and at
// which byte; unsupported for another version; too_large past a limit
// above; not_found or io_error when it cannot be read.  Never asserts.
Result<BackupArchiveInfo> verify_backup_archive(const std::string& path);

// Writes an archive to `path` + ".part", then (finish) renames it to `path`:
// `path` is either absent (or what it was) or a complete, checked archive.
class BackupArchiveWriter {
public:
    // Creates `path`.part (replacing a leftover one) for `groups` groups.
    // invalid_argument unless 1 <= groups <= kBackupArchiveMaxGroups.
    static Result<std::unique_ptr<BackupArchiveWriter>> create(const std::string& path,
                                                               std::size_t groups);
    // Deletes `path`.part unless finish() succeeded.
    virtual ~BackupArchiveWriter() = default;

    // Appends group `group`'s snapshot file, copied from `snapshot_path`
    // after verifying it whole (verify_snapshot_file); returns what it
    // holds.  invalid_argument for a group not above the previous one (or
    // past 2^62), or more groups than create() was told; corruption when the file
    // is not a sound snapshot (nothing appended); too_large past
    // kBackupArchiveMaxSnapshotBytes.
    virtual Result<SnapshotFileInfo> add_group(GroupId group, const std::string& snapshot_path) = 0;
    // Writes the footer, verifies the whole file (verify_backup_archive),
    // fdatasyncs it, renames it to `path` and fsyncs the directory.  invalid_argument when fewer
    // groups were added than create() was told.
    virtual Result<BackupArchiveInfo> finish() = 0;
};

}  // namespace keel
