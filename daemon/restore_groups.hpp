// daemon/restore_groups.hpp — raftd --restore FILE --groups N: a new data
// dir of N groups from the backup archive keelctl snapshot save makes of a
// raftd with --groups (keel/host_restore.hpp), with raftd's own files in it
// (identity.hpp), then exit.
//
// Part of the raftd executable only (it needs keel's implementation).
#pragma once

#include <string>

#include <spdlog/logger.h>

#include "flags.hpp"
#include "keel/options.hpp"

namespace keel::daemon {

// `options`: the node's (node_options: id, data dir, Raft address, founding
// members, cluster id, WAL segment size).  Before anything is written, the
// archive is checked whole and must hold groups 1..config.groups exactly;
// a plain snapshot file is refused with what to do instead.  The node id,
// the group count and the --member list are written into the data dir
// before it appears (a crash leaves none of it, or all).  The exit code:
// 0, or 1 with the reason logged.
int run_restore_groups(const DaemonConfig& config, const NodeOptions& options, spdlog::logger& log);

// For --restore without --groups: " (FILE is the backup archive of N
// groups ...: restore it with --groups N)" when `file` is one, else "".
std::string archive_hint(const std::string& file);

}  // namespace keel::daemon
