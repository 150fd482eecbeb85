// runtime/snapshot_file.hpp — snapshot files as the public API shows them
// (keel/snapshot_file.hpp): their description, and a stream over one.
#pragma once

#include <cstdint>
#include <memory>

#include "keel/snapshot_file.hpp"
#include "keel/wal/file_system.hpp"
#include "runtime/snapshot_store.hpp"

namespace keel::runtime {

// The public description of `file` (whose whole size is `size_bytes`).
SnapshotFileInfo snapshot_file_info(const SnapshotFile& file, std::uint64_t size_bytes);

// Opens `file` for streaming out whole.  The open file stays readable if the
// store deletes it meanwhile (POSIX unlink semantics).
Result<std::unique_ptr<SnapshotFileSource>> open_snapshot_source(wal::FileSystem& fs,
                                                                 const SnapshotFile& file);

}  // namespace keel::runtime
