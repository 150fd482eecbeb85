// metadata_file.hpp — reading and atomically replacing the `meta` side file.
//
// Crash windows of write_metadata_file(): until the rename is durable the old
// `meta` is intact (a leftover meta.tmp is ignored and overwritten); after the
// directory fsync the new one is.  rename(2) replaces the name atomically, so
// no instant exposes a partial file under the name `meta`.
#pragma once

#include <string>

#include "format.hpp"
#include "keel/status.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/reader.hpp"

namespace keel::wal::detail {

// present == false when there is no `meta`; corruption if it is damaged.
Result<MetadataInfo> read_metadata_file(FileSystem& fs, const std::string& dir);

// write meta.tmp, fdatasync, rename over meta, fsync the directory.
// no_space only when meta.tmp could not be created or written (then nothing
// changed and meta.tmp is gone); any error after that is io_error.
Status write_metadata_file(FileSystem& fs, const std::string& dir, const MetadataFile& m);

}  // namespace keel::wal::detail
