// runtime/peer_transport.hpp — what the replica talks to the other members
// through: keel's MessageChannel (transport/message_channel.hpp) over the
// node's keel::Transport (NodeOptions::transport, or the built-in TCP
// transport).  The channel encodes and decodes raft::Message, checks what
// arrives and stages snapshots; the transport moves bytes.
//
// Threading: every method is called on the replica's I/O thread but
// send_now (see MessageChannel), and every handler runs there (never from
// inside a call into the transport).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "keel/status.hpp"
#include "raft/types.hpp"
#include "transport/cluster_id.hpp"
#include "transport/message_channel.hpp"

namespace keel::runtime {

// A snapshot message outside a snapshot stream: its data never arrived.
inline constexpr std::string_view kRejectedWrongFrameKind = "wrong_frame_kind";

class PeerTransport final : public transport::MessageChannel {
public:
    struct Handlers : transport::MessageChannel::Handlers {
        // The built-in TCP transport only (transport::TcpTransportHooks).
        // A joiner without a cluster id: persist the one in the first valid
        // hello (from node `from`) before returning ok; nothing from that
        // connection is delivered before.
        std::function<Status(const transport::ClusterId& id, raft::NodeId from)> on_cluster_id;
        // A peer said hello: node `from` says it listens at `address`.
        std::function<void(raft::NodeId from, std::string_view address)> on_hello;
    };

    using MessageChannel::MessageChannel;
};

}  // namespace keel::runtime
