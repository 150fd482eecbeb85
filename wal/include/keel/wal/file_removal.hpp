// keel/wal/file_removal.hpp — deleting a large file without stalling the
// durable writes beside it.  A file system that discards freed blocks online
// (ext4 mounted -o discard) hands the disk a whole file's discard at once on
// unlink, and every O_DSYNC write or fdatasync queued behind it waits
// (docs/decisions/0051-disk-stalls.md).  Shortened a step at a time, each
// step synced (its journal commit issues that step's discard), the writes
// beside it wait behind one step's discard at most.
//
// Used by the WAL for compacted segments and by the runtime's snapshot store
// for pruned snapshot files.
#pragma once

#include <cstdint>
#include <string>

#include "keel/status.hpp"
#include "keel/wal/file_system.hpp"

namespace keel::wal {

// How much one step of remove_in_steps gives back.
inline constexpr std::uint64_t kRemovalStepBytes = 1u << 20;

// Shortens the file at `path` to nothing, `step_bytes` (> 0) at a time with
// an fdatasync after each step, then removes its name (the directory is not
// synced: the caller syncs it once for all it removed).
//
// REQUIRES: nothing reads the file any more (a reader holding it open sees
// it shrink), and a crash part-way leaves nothing that would be read as
// data: the caller renames the file out of its readers' names, and makes
// the rename durable, before it calls this.
// Errors: the FileSystem's, as they are (the file may be left shortened
// under `path`; removing it again finishes the job).
Status remove_in_steps(FileSystem& fs, const std::string& path,
                       std::uint64_t step_bytes = kRemovalStepBytes);

}  // namespace keel::wal
