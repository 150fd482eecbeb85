// keel's TCP transport for a Host.  See host_peers.hpp.
#include "runtime/host_peers.hpp"

#include <vector>

#include <fmt/format.h>

#include "runtime/cluster_identity.hpp"
#include "runtime/peer_security.hpp"

namespace keel::runtime {

bool uses_keel_tcp(const HostOptions& options) {
    return options.transport == nullptr && !options.listen_address.empty();
}

NodeOptions process_node_options(const HostOptions& options) {
    NodeOptions o;
    o.id = options.id;
    o.data_dir = options.data_dir;
    o.listen_address = options.listen_address;
    o.cluster_id = options.cluster_id;
    o.peer_tls = options.peer_tls;
    o.peer_insecure = options.peer_insecure;
    o.logger = options.logger;
    MemberSpec self;
    self.id = options.id;
    self.raft_address = options.listen_address;
    o.initial_members.push_back(self);
    for (const auto& [id, address] : options.peers) {
        MemberSpec m;
        m.id = id;
        m.raft_address = address;
        o.initial_members.push_back(m);
    }
    return o;
}

Status check_host_options(const HostOptions& options, std::string& warning) {
    auto invalid = [](std::string what) {
        return Status(ErrorCode::invalid_argument, std::move(what));
    };
    if (options.transport != nullptr) {
        if (!options.listen_address.empty() || !options.peers.empty())
            return invalid(
                "HostOptions::transport is the application's: listen_address and peers are for "
                "keel's TCP transport");
        return Status::ok_status();
    }
    if (options.listen_address.empty()) {
        if (!options.peers.empty())
            return invalid("HostOptions::peers needs listen_address (keel's TCP transport)");
        return Status::ok_status();
    }
    if (options.id == 0) return invalid("HostOptions::id must be > 0 with keel's TCP transport");
    for (const auto& [id, address] : options.peers) {
        if (id == 0) return invalid("HostOptions::peers: a peer has id 0");
        if (id == options.id)
            return invalid(fmt::format("HostOptions::peers names this Host's own id {}", id));
        if (address.empty())
            return invalid(fmt::format("HostOptions::peers: {} has no address", id));
    }
    std::vector<std::string> addresses;
    for (const auto& [id, address] : options.peers) addresses.push_back(address);
    return check_peer_security(process_node_options(options), addresses, warning);
}

Result<transport::ClusterId> host_cluster_id(const HostOptions& options, wal::FileSystem& fs) {
    // Node's rules with the Host as a founder among its peers: a stored id
    // wins (and must equal a given one), a given one is stored, a lone Host
    // makes one up, several need it given.  Never a data dir from before
    // cluster ids: a Host always had one.
    return resolve_cluster_id(process_node_options(options), /*has_state=*/false, fs);
}

Result<std::shared_ptr<Transport>> make_host_transport(boost::asio::io_context& io,
                                                       const HostOptions& options,
                                                       const transport::ClusterId& cluster_id,
                                                       ProcessTransportHooks hooks) {
    // The hellos give the bound listen address; the Host's peers are its
    // own, so it learns nothing from theirs.
    return make_process_transport(io, process_node_options(options), cluster_id, "",
                                  std::move(hooks));
}

Status HostProcesses::check_member(const MemberSpec& member) const {
    if (member.id == self) {
        if (member.raft_address == self_address || member.raft_address == self_bound_address)
            return Status::ok_status();
        return Status(ErrorCode::invalid_argument,
                      fmt::format("member {} is this Host, whose Raft address is {}, not '{}'",
                                  member.id, self_bound_address, member.raft_address));
    }
    auto it = peers.find(member.id);
    if (it == peers.end())
        return Status(ErrorCode::invalid_argument,
                      fmt::format("member {} is not one of the Host's processes "
                                  "(HostOptions::id and peers)",
                                  member.id));
    if (member.raft_address != it->second)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("member {} is at {} for the Host (HostOptions::peers), not '{}'",
                                  member.id, it->second, member.raft_address));
    return Status::ok_status();
}

Status adopt_host_options(NodeOptions& options, GroupId group, const HostProcesses& processes,
                          const transport::ClusterId& cluster_id) {
    auto invalid = [group](std::string what) {
        return Status(ErrorCode::invalid_argument, fmt::format("group {}: {}", group, what));
    };
    if (options.id != processes.self)
        return invalid(
            fmt::format("NodeOptions::id {} is not the Host's id {}", options.id, processes.self));
    if (!options.listen_address.empty() || options.peer_tls.enabled() || options.peer_insecure)
        return invalid(
            "listen_address, peer_tls and peer_insecure are the Host's (HostOptions), not a "
            "group's");
    if (!options.cluster_id.empty()) {
        auto given = transport::ClusterId::parse_hex(options.cluster_id);
        if (!given.ok()) return invalid("NodeOptions::cluster_id: " + given.status().message());
        if (!(given.value() == cluster_id))
            return invalid(fmt::format("NodeOptions::cluster_id {} is not the Host's {}",
                                       given.value().hex(), cluster_id.hex()));
    }
    options.cluster_id = cluster_id.hex();
    for (const MemberSpec& m : options.initial_members)
        if (Status s = processes.check_member(m); !s.ok()) return invalid(s.message());
    return Status::ok_status();
}

}  // namespace keel::runtime
