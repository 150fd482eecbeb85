// daemon/group_host.hpp — raftd --groups N: one keel::Host (the process's
// WAL, threads and transport) and N Raft groups on it, each with its own
// KV map (the keys' shards, kv_shards.hpp).  Group g's files are in
// data_dir/groups/g (keel/host.hpp), the shared WAL in data_dir/wal.
//
// Part of the raftd executable only (it needs keel's implementation).
// Threads: open and stop from main's thread.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "group_peer_sync.hpp"
#include "keel/host.hpp"
#include "keel/node.hpp"
#include "kv_shards.hpp"
#include "kv_state_machine.hpp"

namespace keel::daemon {

struct GroupHost {
    std::unique_ptr<Host> host;
    std::vector<std::shared_ptr<KvStateMachine>> maps;  // maps[g - 1]: group g's
    // The Host's peers follow the groups' members (every group's observer).
    // After `host` and before `groups`: it outlives the groups' events and
    // stops before the Host.
    std::unique_ptr<GroupPeerSync> peers;
    // groups[g - 1]: group g.  Declared after `host`, so destroyed before it
    // (a group must not outlive its Host).
    std::vector<std::unique_ptr<Node>> groups;

    // The groups as the handlers see them (HandlerContext::groups).
    std::vector<KvGroup> kv_groups() const;
};

// Opens a Host in options.data_dir and groups 1..count on it, each with
// `options` but its own data dir (the Host's choice) and map.  The Host
// runs keel's TCP transport at options.listen_address, with `peers` (the
// other processes: id -> Raft address, when it opens; GroupPeerSync keeps
// them in step with the groups' members from then on) and options' id,
// cluster id and security; options' WAL fields and max_entry_bytes become
// the Host's.  options.join: every group joins (an empty log, waiting to be
// added); options.force_new_cluster: every group makes this process its
// only voter (bootstrap's rules, per group).  `log`: where the peer
// changes are reported.
// REQUIRES: count >= 1.
Result<std::unique_ptr<GroupHost>> open_group_host(const NodeOptions& options,
                                                   const std::map<NodeId, std::string>& peers,
                                                   std::size_t count, GroupPeerSync::Log log);

}  // namespace keel::daemon
