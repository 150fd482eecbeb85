// daemon/identity.hpp — what raftd keeps beside keel's files in the data dir,
// so that a restart needs only --data-dir: the node id ("raftd.id", one
// decimal line) and, with --groups N, the group count ("raftd.groups", one
// decimal line: the key space's sharding, fixed at bootstrap).  On a first
// start both are written before anything else, keel's files included (the
// group count first): a crash after keel's first files but before the id
// would leave a directory that a restart without --id opens as node 1, and
// a data dir with an id but no group count is one made without --groups.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "keel/options.hpp"
#include "keel/status.hpp"

namespace keel::daemon {

inline constexpr const char* kIdentityFileName = "raftd.id";
inline constexpr const char* kGroupsFileName = "raftd.groups";
// With --groups in a cluster: the processes of the cluster (keel::Host's
// peers when it opens; group_peer_sync.hpp keeps it equal to the groups'
// members), one "ID,RAFT,HTTP" line each.
inline constexpr const char* kMembersFileName = "raftd.members";

// nullopt when there is no id file yet; an error when it exists but is bad.
Result<std::optional<NodeId>> read_node_id(const std::string& data_dir);
// Creates data_dir if missing (each directory it creates 0700), then writes
// the id file atomically and 0600 (temp file, fsync, rename, fsync the dir).
Status write_node_id(const std::string& data_dir, NodeId id);

// The same for the group count: nullopt without the file (a data dir made
// without --groups, or none yet); corruption unless it holds 1..kGroupsMax.
Result<std::optional<std::size_t>> read_group_count(const std::string& data_dir);
Status write_group_count(const std::string& data_dir, std::size_t count);

// The same for the members file: empty without it; corruption on a bad line.
Result<std::vector<MemberSpec>> read_members(const std::string& data_dir);
Status write_members(const std::string& data_dir, const std::vector<MemberSpec>& members);

}  // namespace keel::daemon
