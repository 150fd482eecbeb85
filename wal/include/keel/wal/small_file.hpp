// keel/wal/small_file.hpp — small files replaced whole and read whole
// through a FileSystem: the WAL's `meta`, the cluster id in a data dir.
//
// replace_file writes `bytes` to `<dir>/<name>.tmp` (removing a stale one
// first), fdatasyncs it, renames it over `<dir>/<name>` and fsyncs the
// directory.  Crash windows: before the rename, the old file stands and the
// temp file is garbage (the next replace removes it); between the rename
// and the directory fsync, either name may survive, each whole.  A reader
// never sees a mix of old and new.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "keel/status.hpp"
#include "keel/wal/file_system.hpp"

namespace keel::wal {

// Errors: no_space while nothing refers to the temp file yet (it is removed
// again, so the caller may retry later: docs/wal.md, "Failure policy");
// io_error for a failed fdatasync, rename or directory fsync (fail-stop:
// whether the new contents are durable is unknown).
Status replace_file(FileSystem& fs, const std::string& dir, const std::string& name,
                    std::string_view bytes);

// The whole file.  not_found if it does not exist; corruption if it holds
// more than max_bytes (nothing that large was ever written by keel).
Result<std::string> read_file(FileSystem& fs, const std::string& path, std::size_t max_bytes);

}  // namespace keel::wal
