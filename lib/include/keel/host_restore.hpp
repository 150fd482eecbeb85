// keel/host_restore.hpp — a new Host data dir whose groups' state is a
// backup archive (keel/backup_archive.hpp): restore_data_dir
// (keel/snapshot_file.hpp) for a process with many groups.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "keel/backup_archive.hpp"
#include "keel/options.hpp"
#include "keel/status.hpp"
#include "keel/transport.hpp"

namespace keel {

struct HostRestoreOptions {
    // As restore_data_dir takes them: data_dir is the Host's
    // (HostOptions::data_dir), absent or empty; id, listen_address,
    // initial_members and cluster_id found the new cluster (the same
    // members and cluster id on every founder: a cluster id is required
    // with several); wal_segment_bytes is the Host's.  Every group gets
    // the same members.  join is refused.
    NodeOptions node;
    // The groups the archive must hold, exactly (empty: whichever it
    // holds).  Another set is refused with invalid_argument naming the
    // difference, before anything is written.
    std::vector<GroupId> groups;
    // Called with the directory being built, once every group is in place
    // and before that directory becomes data_dir: the application's own
    // files go there (raftd's node id, group count and members), so that
    // data_dir appears with them or not at all.  An error stops the
    // restore.  Null: none.
    std::function<Status(const std::string& dir)> before_publish;
};

// Builds a new Host data dir from the archive at `archive_path`, after
// checking the archive whole (verify_backup_archive: a damaged one is
// refused with its error and nothing is written): group G's snapshot,
// with its index, term and state machine data and the new cluster's
// configuration, in data_dir/groups/G/snapshots (where Host::open_group
// looks by default), the cluster id in data_dir/cluster_id and in each
// group's directory, and the shared WAL (data_dir/wal) holding each
// group's empty log after its snapshot and its hard state (the snapshot's
// term, no vote, commit at its index).  Then open a Host on it as usual,
// with the same cluster and members, and each group with Host::open_group:
// its log continues after its snapshot's index, in a new term.
//
// Crash safety: everything is built in data_dir.restoring, made durable,
// and renamed to data_dir as the last step, so a crash leaves either no
// data_dir (and a .restoring directory that a new restore refuses until
// it is deleted) or a complete one; a failed restore deletes what it built.
// Returns what the archive held.
Result<BackupArchiveInfo> restore_host_data_dir(const HostRestoreOptions& options,
                                                const std::string& archive_path);

}  // namespace keel
