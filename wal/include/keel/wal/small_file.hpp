// keel/wal/small_file.hpp — files replaced whole and read whole through a
// FileSystem: the WAL's `meta`, the cluster id in a data dir; and
// install_file, the one "fdatasync, rename, fsync the directory" sequence
// behind every file keel replaces whole (replace_file, the snapshot store's
// published and adopted snapshots, the transport's staged ones).
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

// Makes the whole, closed file `from` the file `<dir>/<name>`: fdatasyncs
// it, renames it over `<dir>/<name>` (atomic: a reader sees the old file or
// the new one) and fsyncs `dir`.  `from` must be on the same file system;
// it may be in another directory (whose entry for it is not synced: losing
// it in a crash loses nothing).  Errors: io_error for a failed fdatasync,
// rename or directory fsync (whether the new file is durable is unknown:
// the caller's data fail-stops, or, for a copy it can fetch again, drops
// it); `from` stays where it was unless the rename happened.
Status install_file(FileSystem& fs, const std::string& from, const std::string& dir,
                    const std::string& name);

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
