// runtime/bootstrap.hpp — first start versus reopen.
//
// Before opening anything, the data dir is checked (read only): the WAL's
// metadata and segment headers, and every snapshot, whose trailer and data
// are read against their checksums.  The snapshot to start from is the
// newest one that is intact and that the log continues (the log's first
// index is at most its index + 1); a newer damaged one is reported (logged,
// counted in SnapshotStore::damaged()) and skipped.  A log compacted past
// every usable snapshot is refused with an error naming the files: the
// state before its first entry is gone.
//
// First start (the data dir holds no log record, no metadata and no
// snapshot): a founding member writes a new cluster id (cluster_identity.hpp),
// then the bootstrap configuration entry (index 1) and the hard state before
// the core starts, so a crash during bootstrap leaves either nothing or an id
// alone (bootstrap again, with that id) or a complete start; a joining node
// (NodeOptions::join) starts empty and waits for the leader, from which it
// learns the cluster id.
//
// Reopen: the chosen snapshot is made durable (it may have been in the page
// cache only) and restores the state machine (on the calling thread, before
// any keel thread exists), the log after it and the hard state are read
// back, and the core re-commits and the runtime re-applies the entries
// after the snapshot.  Every acknowledged entry was durable in the log
// before it was acknowledged, so it is there again.  A durable state machine
// (StateMachine::applied_index, asked once, first) that holds the snapshot's
// state and the compaction point saved on its word (LogStore::floor) is not
// restored: applying resumes after its index.  An index the log cannot back
// fails the open with an error.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "keel/options.hpp"
#include "keel/state_machine.hpp"
#include "raft/core.hpp"
#include "runtime/log_store.hpp"
#include "runtime/snapshot_store.hpp"
#include "transport/cluster_id.hpp"

namespace keel::runtime {

struct Recovered {
    std::unique_ptr<LogStore> log;
    std::unique_ptr<SnapshotStore> snapshots;
    raft::RestoredState state;
    raft::SnapshotMeta applied;  // what the state machine reflects now
    // The index of the keel snapshot the node starts from (0: none; a
    // durable state machine's compaction point is none).
    raft::Index last_snapshot_index = 0;
    bool first_start = false;
    // Unset only for a joiner that has not heard from its cluster yet.
    transport::ClusterId cluster_id;
};

using LogFunction = std::function<void(LogLevel, const std::string&)>;

// wal_options.fs (null: the POSIX file system) holds the snapshots too.
// `shared_log`: the group's store on its process's shared WAL
// (SharedWal::open_group), or null for a WAL of its own in
// options.data_dir/wal, opened with `wal_options`.
Result<Recovered> recover_or_bootstrap(const NodeOptions& options, StateMachine& sm,
                                       const wal::Options& wal_options, const LogFunction& log,
                                       std::unique_ptr<LogStore> shared_log = nullptr);

// mkdir -p, each new directory 0700.  With `created_parents`, the parent
// of every directory it created is added there: the directories to fsync
// for the new ones to survive a crash (Host::open_groups).
Status create_directories(const std::string& path,
                          std::set<std::string>* created_parents = nullptr);

}  // namespace keel::runtime
