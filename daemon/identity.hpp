// daemon/identity.hpp — the node id raftd keeps beside keel's files in the data
// dir ("raftd.id", one decimal line), so that a restart needs only --data-dir.
// On a first start it is written before anything else, keel's files
// included: a crash after keel's first files but before the id would leave
// a directory that a restart without --id opens as node 1.
#pragma once

#include <optional>
#include <string>

#include "keel/options.hpp"
#include "keel/status.hpp"

namespace keel::daemon {

inline constexpr const char* kIdentityFileName = "raftd.id";

// nullopt when there is no id file yet; an error when it exists but is bad.
Result<std::optional<NodeId>> read_node_id(const std::string& data_dir);
// Creates data_dir if missing (each directory it creates 0700), then writes
// the id file atomically and 0600 (temp file, fsync, rename, fsync the dir).
Status write_node_id(const std::string& data_dir, NodeId id);

}  // namespace keel::daemon
