// raftd --groups: the Host and its groups.  See group_host.hpp.
#include "group_host.hpp"

#include <fmt/format.h>

namespace keel::daemon {

std::vector<KvGroup> GroupHost::kv_groups() const {
    std::vector<KvGroup> out;
    out.reserve(groups.size());
    for (std::size_t i = 0; i < groups.size(); ++i)
        out.push_back(KvGroup{static_cast<GroupId>(i + 1), groups[i].get(), maps[i].get()});
    return out;
}

Result<std::unique_ptr<GroupHost>> open_group_host(const NodeOptions& options,
                                                   const std::map<NodeId, std::string>& peers,
                                                   std::size_t count, GroupPeerSync::Log log) {
    KEEL_ASSERT(count >= 1, "the group count is validated at start-up");
    HostOptions host_options;
    host_options.data_dir = options.data_dir;
    host_options.id = options.id;
    host_options.listen_address = options.listen_address;
    host_options.peers = peers;
    host_options.cluster_id = options.cluster_id;
    host_options.peer_tls = options.peer_tls;
    host_options.peer_insecure = options.peer_insecure;
    host_options.logger = options.logger;
    host_options.wal_segment_bytes = options.wal_segment_bytes;
    host_options.wal_direct_io = options.wal_direct_io;
    host_options.max_entry_bytes = options.max_entry_bytes;
    Result<std::unique_ptr<Host>> host = Host::open(host_options);
    if (!host.ok()) return host.status();
    auto opened = std::make_unique<GroupHost>();
    opened->host = std::move(host.value());
    opened->peers = std::make_unique<GroupPeerSync>(*opened->host, options.id, count,
                                                    options.data_dir, std::move(log));
    // What is the Host's is not the group's (keel/host.hpp).
    NodeOptions group_options = options;
    group_options.data_dir.clear();  // the Host's data_dir/groups/<g>
    group_options.listen_address.clear();
    group_options.cluster_id.clear();
    group_options.peer_tls = PeerTls{};
    group_options.peer_insecure = false;
    // A joiner's --member list is the Host's peers, not a group's.
    if (group_options.join) group_options.initial_members.clear();
    // One batch (Host::open_groups): the groups open concurrently inside
    // keel and share the WAL's fsyncs.
    std::vector<GroupToOpen> batch;
    batch.reserve(count);
    for (std::size_t g = 1; g <= count; ++g) {
        group_options.observer = opened->peers->observer(g);
        auto map = std::make_shared<KvStateMachine>();
        opened->maps.push_back(map);
        batch.push_back(GroupToOpen{static_cast<GroupId>(g), group_options, std::move(map)});
    }
    std::vector<Result<std::unique_ptr<Node>>> groups = opened->host->open_groups(std::move(batch));
    for (std::size_t g = 1; g <= count; ++g) {
        Result<std::unique_ptr<Node>>& group = groups[g - 1];
        if (!group.ok()) {
            return Status(group.status().code(),
                          fmt::format("group {}: {}", g, group.status().message()));
        }
        opened->groups.push_back(std::move(group.value()));
    }
    return opened;
}

}  // namespace keel::daemon
