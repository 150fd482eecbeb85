// runtime/peer_transport.hpp — what a group talks to the other members
// through: keel's MessageChannel (transport/message_channel.hpp) over its
// process's keel::Transport (NodeOptions::transport, or the built-in TCP
// transport), reached through the process's GroupRouter (group_router.hpp).
// The channel encodes and decodes raft::Message, checks what arrives and
// stages snapshots; the transport moves bytes.
//
// Threading: every method is called on the process's I/O thread but
// send_now (see MessageChannel), and every handler runs there (never from
// inside a call into the transport).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "keel/options.hpp"
#include "keel/status.hpp"
#include "raft/types.hpp"
#include "transport/cluster_id.hpp"
#include "transport/message_channel.hpp"

namespace boost::asio {
class io_context;
}

namespace keel::runtime {

class ProcessServices;

// A snapshot message outside a snapshot stream: its data never arrived.
inline constexpr std::string_view kRejectedWrongFrameKind = "wrong_frame_kind";

class PeerTransport final : public transport::MessageChannel {
public:
    using MessageChannel::MessageChannel;
};

// What the process's transport reports about connections rather than one
// group's traffic (the built-in TCP transport only: TcpTransportHooks).
// Any of them may be empty.
struct ProcessTransportHooks {
    // Input refused before any group saw it (`reason`: the metrics label).
    std::function<void(std::string_view reason, std::string_view detail)> on_rejected;
    // A joiner without a cluster id: persist the one in the first valid
    // hello (from node `from`) before returning ok; nothing from that
    // connection is delivered before.
    std::function<Status(const transport::ClusterId& id, raft::NodeId from)> on_cluster_id;
    // A peer said hello: node `from` says it listens at `address`.
    std::function<void(raft::NodeId from, std::string_view address)> on_hello;
};

// The process's transport (peer_transport_factory.cpp): the application's
// (options.transport), or the built-in TCP one, with mutual TLS when
// options.peer_tls is set.  Not started.  The cluster id is unset for a
// joiner that has not heard from its cluster yet; `advertised_address`: what
// the hellos say this process listens at (empty: the bound listen address).
Result<std::shared_ptr<Transport>> make_process_transport(boost::asio::io_context& io,
                                                          const NodeOptions& options,
                                                          const transport::ClusterId& cluster_id,
                                                          const std::string& advertised_address,
                                                          ProcessTransportHooks hooks);

// Group `group`'s channel over the process's started transport
// (services.router()), started: its handlers run on the I/O thread.
Result<std::unique_ptr<PeerTransport>> make_group_channel(ProcessServices& services,
                                                          const NodeOptions& options, GroupId group,
                                                          transport::MessageChannel::Handlers h);

}  // namespace keel::runtime
