// runtime/cluster_identity.hpp — the cluster id in the data dir: which
// cluster this node belongs to (transport/cluster_id.hpp), kept in
// DATA_DIR/cluster_id as 32 hex digits and a newline.
//
// Written once: at bootstrap (before the first log entry, so a crash in
// between only leaves an id that the next bootstrap reuses), or by a
// joiner when its first valid hello arrives (before anything from that
// connection reaches Raft, so it is durable before the node acknowledges
// anything), or when NodeOptions::cluster_id sets it explicitly.  Through
// the data dir's wal::FileSystem, replaced whole (keel/wal/small_file.hpp):
// it is either absent or whole.
#pragma once

#include <optional>
#include <string>

#include "keel/options.hpp"
#include "keel/status.hpp"
#include "keel/wal/file_system.hpp"
#include "transport/cluster_id.hpp"

namespace keel::runtime {

inline constexpr const char* kClusterIdFileName = "cluster_id";

// nullopt when the file does not exist; corruption when it is not an id.
Result<std::optional<transport::ClusterId>> read_cluster_id(wal::FileSystem& fs,
                                                            const std::string& data_dir);
Status write_cluster_id(wal::FileSystem& fs, const std::string& data_dir,
                        const transport::ClusterId& id);

// The id this node starts with, given whether data_dir holds Raft state
// (a log or a snapshot) and what the options say:
//   stored id                  -> it (NodeOptions::cluster_id, if set, must equal it)
//   none, cluster_id set       -> that one, stored now
//   none, state                -> invalid_argument: a data dir from a keel before
//                                 cluster ids; the message says how to set one
//   none, no state, join       -> unset: learned from the first valid hello
//   none, no state, bootstrap  -> a new random id, stored now, for a lone
//                                 founder; several founders need cluster_id set
//                                 (invalid_argument), as they cannot agree on
//                                 a random one without talking
Result<transport::ClusterId> resolve_cluster_id(const NodeOptions& options, bool has_state,
                                                wal::FileSystem& fs);

}  // namespace keel::runtime
