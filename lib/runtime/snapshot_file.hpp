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

// Opens `file` for streaming out whole.  `pin` (taken before the call) keeps
// its bytes whole if the store prunes it meanwhile; the source holds it.
Result<std::unique_ptr<SnapshotFileSource>> open_snapshot_source(wal::FileSystem& fs,
                                                                 const SnapshotFile& file,
                                                                 SnapshotPin pin);

}  // namespace keel::runtime
