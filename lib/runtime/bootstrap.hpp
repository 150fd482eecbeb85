// runtime/bootstrap.hpp — first start versus reopen.
//
// First start (the data dir holds no log record, no metadata and no
// snapshot): a founding member writes a new cluster id (cluster_identity.hpp),
// then the bootstrap configuration entry (index 1) and the hard state before
// the core starts, so a crash during bootstrap leaves either nothing or an id
// alone (bootstrap again, with that id) or a complete start; a joining node
// (NodeOptions::join) starts empty and waits for the leader, from which it
// learns the cluster id.
//
// Reopen: the newest valid snapshot restores the state machine (on the
// calling thread, before any keel thread exists), the log after it and the
// hard state are read back, and the core re-commits and the runtime
// re-applies the entries after the snapshot.  Every acknowledged entry was
// durable in the log before it was acknowledged, so it is there again.
#pragma once

#include <memory>

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
    bool first_start = false;
    // Unset only for a joiner that has not heard from its cluster yet.
    transport::ClusterId cluster_id;
};

Result<Recovered> recover_or_bootstrap(const NodeOptions& options, StateMachine& sm,
                                       const wal::Options& wal_options);

// mkdir -p
Status create_directories(const std::string& path);

}  // namespace keel::runtime
