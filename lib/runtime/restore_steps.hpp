// runtime/restore_steps.hpp — the steps a Node's restore (restore.cpp) and
// a Host's (host_restore.cpp) share: a new data dir is built in
// <data_dir>.restoring, each snapshot copied in with the new cluster's
// configuration, and the whole renamed into place last (the crash windows
// are in keel/snapshot_file.hpp and keel/host_restore.hpp).
#pragma once

#include <string>

#include "keel/status.hpp"
#include "keel/wal/file_system.hpp"
#include "raft/types.hpp"
#include "runtime/snapshot_store.hpp"

namespace keel::runtime {

// ok when `data_dir` does not exist or is an empty directory;
// invalid_argument otherwise (a restore never writes over state).
Status check_restore_target(const std::string& data_dir);

// Creates `building` (<data_dir>.restoring); invalid_argument when it
// exists: an earlier restore stopped half way, and what it left is the
// operator's to delete.
Status start_building(const std::string& building);

// Copies the backup's state machine data (`data`: its reader, which checks
// the data's CRC at the end) into a new snapshot of `store` with `meta`
// (the backup's index and term, the new configuration), durable.
Status write_restored_snapshot(SnapshotStore& store, SnapshotFileReader& data,
                               const raft::SnapshotMeta& meta);

// Renames `building` to `data_dir` (absent or empty) and fsyncs the parent.
Status publish_restored(wal::FileSystem& files, const std::string& building,
                        const std::string& data_dir);

}  // namespace keel::runtime
