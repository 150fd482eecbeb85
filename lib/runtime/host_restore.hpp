// runtime/host_restore.hpp — keel::restore_host_data_dir
// (keel/host_restore.hpp) on a given file system (tests inject faults and
// take the state a crash would leave at each step).
#pragma once

#include <string>

#include "keel/host_restore.hpp"
#include "keel/wal/file_system.hpp"

namespace keel::runtime {

// restore_host_data_dir with every file of keel's (the archive, the
// snapshots, the cluster ids, the WAL) through `fs`.
Result<BackupArchiveInfo> restore_host_data_dir_on(wal::FileSystem& fs,
                                                   const HostRestoreOptions& options,
                                                   const std::string& archive_path);

}  // namespace keel::runtime
