// daemon/identity.hpp — the node id raftd keeps beside keel's files in the data
// dir ("raftd.id", one decimal line), so that a restart needs only --data-dir.
// Written once, after keel has opened the directory for the first time.
#pragma once

#include <optional>
#include <string>

#include "keel/options.hpp"
#include "keel/status.hpp"

namespace keel::daemon {

inline constexpr const char* kIdentityFileName = "raftd.id";

// nullopt when there is no id file yet; an error when it exists but is bad.
Result<std::optional<NodeId>> read_node_id(const std::string& data_dir);
// Writes the id file atomically (temp file, fsync, rename).
Status write_node_id(const std::string& data_dir, NodeId id);

}  // namespace keel::daemon
