// runtime/host_peers.hpp — keel's TCP transport for a keel::Host: the
// Host's options checked, its cluster id, the transport made from them, and
// the rule that ties every group's members to the Host's processes.
//
// The rule (docs/groups.md, "keel's TCP transport in a Host"): the Host
// knows its processes (itself at its listen address, its peers at theirs:
// HostOptions::peers when it opens, then Host::add_peer/remove_peer) and
// dials them itself, one connection each whatever the number of groups.  A group member is one of them, named by its NodeId and
// at the Host's address for it; anything else is refused where it enters
// (open_group's initial_members, add_member).  Membership read back from a
// group's log is not refused: it was accepted once, and the Host's
// addresses are the ones dialled anyway (group_router.hpp, process peers).
//
// The security of the Raft port is keel::Node's (peer_security.hpp), asked
// with the Host's fields in a NodeOptions, so the rules and their messages
// are the same.
//
// Pure but for host_cluster_id (the data dir) and make_host_transport
// (TLS files); no thread of its own.
#pragma once

#include <memory>
#include <string>

#include "keel/host.hpp"
#include "keel/options.hpp"
#include "keel/status.hpp"
#include "keel/transport.hpp"
#include "keel/wal/file_system.hpp"
#include "runtime/peer_transport.hpp"
#include "transport/cluster_id.hpp"

namespace boost::asio {
class io_context;
}

namespace keel::runtime {

// Whether the Host runs keel's TCP transport (else the application's, or none).
bool uses_keel_tcp(const HostOptions& options);

// The Host's fields as the NodeOptions that keel::Node's transport and
// security checks read (id, listen_address, cluster_id, peer_tls,
// peer_insecure, logger, peers as initial_members).
NodeOptions process_node_options(const HostOptions& options);

// Host::open's checks of the transport fields (host.hpp lists them).
// `warning` is set when peer_insecure is what lets a non-loopback Host
// start.
Status check_host_options(const HostOptions& options, std::string& warning);

// The Host's cluster id (HostOptions::cluster_id's rules), from and into
// options.data_dir/cluster_id.
Result<transport::ClusterId> host_cluster_id(const HostOptions& options, wal::FileSystem& fs);

// keel's TCP transport for the Host, not started.
Result<std::shared_ptr<Transport>> make_host_transport(boost::asio::io_context& io,
                                                       const HostOptions& options,
                                                       const transport::ClusterId& cluster_id,
                                                       ProcessTransportHooks hooks);

// The Host's processes and their addresses, once its port is bound.
struct HostProcesses {
    NodeId self = 0;
    std::string self_address;        // HostOptions::listen_address
    std::string self_bound_address;  // the same with the port bound (port 0)
    std::map<NodeId, std::string> peers;

    // ok when `member` is one of the processes at its address; else
    // invalid_argument saying what the Host has.
    Status check_member(const MemberSpec& member) const;
};

// open_group's checks of a group's options on a Host with keel's TCP
// transport (host.hpp), and what the group takes from the Host: its
// cluster id.  `group` names the group in the messages.
Status adopt_host_options(NodeOptions& options, GroupId group, const HostProcesses& processes,
                          const transport::ClusterId& cluster_id);

}  // namespace keel::runtime
