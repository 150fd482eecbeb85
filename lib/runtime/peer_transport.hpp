// runtime/peer_transport.hpp — what the replica needs from a network
// transport.  The shape mirrors keel::transport::Transport (lib/transport/)
// so the TCP adapter is thin; tests may plug in anything else.
//
// Threading: every method is called on the replica's I/O thread, and every
// handler runs there (never from inside a call into the transport).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.hpp"
#include "raft/types.hpp"
#include "transport/cluster_id.hpp"

namespace keel::runtime {

// A snapshot message outside a snapshot stream: its data never arrived.
inline constexpr std::string_view kRejectedWrongFrameKind = "wrong_frame_kind";

class PeerTransport {
public:
    struct Handlers {
        std::function<void(raft::Message)> on_message;
        // A whole snapshot (a byte copy of the leader's snapshot file) is
        // staged at `path`, fsynced; the file now belongs to the replica.
        std::function<void(raft::Message message, std::string path)> on_snapshot;
        std::function<void(raft::NodeId)> on_unreachable;
        std::function<void(raft::NodeId, bool ok)> on_snapshot_sent;
        // Something a peer sent refused before Raft saw it: `reason` is the
        // metrics label, `detail` the log line.
        std::function<void(std::string_view reason, std::string_view detail)> on_rejected;
        // A joiner without a cluster id: persist the one in the first valid
        // hello (from node `from`) before returning ok; nothing from that
        // connection is delivered before.
        std::function<Status(const transport::ClusterId& id, raft::NodeId from)> on_cluster_id;
        // A peer said hello: node `from` says it listens at `address`
        // (transport::TransportHandler::on_hello).
        std::function<void(raft::NodeId from, std::string_view address)> on_hello;
    };

    virtual ~PeerTransport() = default;
    // The address peers reach this node at ("host:port"), after start.
    virtual std::string local_address() const = 0;
    virtual void set_peer(raft::NodeId id, std::string address) = 0;
    virtual void remove_peer(raft::NodeId id) = 0;
    virtual void send(std::vector<raft::Message> messages) = 0;
    // The exception to the threading rule above: called from other threads
    // (never the I/O thread), only when every earlier send() has run.  May
    // write some messages at once, without blocking, and remove them from
    // `messages`; the rest go to send().  The default writes none.
    virtual void send_now(std::vector<raft::Message>& messages) { (void)messages; }
    // Streams the file at `path` then `message` (type snapshot) to message.to.
    virtual void send_snapshot(raft::Message message, std::string path) = 0;
    virtual void stop() = 0;
};

}  // namespace keel::runtime
