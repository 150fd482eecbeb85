// transport/rejection.hpp — why the transport (or keel's side of it,
// MessageChannel) refused a connection or a frame before anything reached
// Raft.  The names are the `reason` label of keel_peer_messages_rejected_total
// (NodeStatus::peer_messages_rejected).
#pragma once

#include <cstdint>

namespace keel::transport {

enum class Rejection : std::uint8_t {
    tls_handshake,     // no certificate, one the CA did not sign, or not TLS at all
    hello,             // the first frame is not a valid hello (or names our own id)
    cluster_id,        // a hello from another cluster
    hello_timeout,     // no TLS handshake and hello within hello_timeout
    connection_limit,  // past inbound_connections_max or inbound_pending_per_address_max
    malformed,         // a frame that does not decode, after the hello
    misaddressed,      // a message not from the hello's sender, or not for this node
    wrong_frame_kind,  // a message in a frame that cannot carry it (a snapshot message
                       // outside a snapshot stream: its data is not there)
    snapshot,          // a snapshot stream refused (size limit, offsets, staging failed)
    overloaded,        // delivered from another thread while too much waited for keel's
                       // I/O thread (MessageChannelOptions::posted_bytes_max): dropped
};

inline const char* rejection_name(Rejection r) {
    switch (r) {
        case Rejection::tls_handshake:
            return "tls_handshake";
        case Rejection::hello:
            return "hello";
        case Rejection::cluster_id:
            return "cluster_id";
        case Rejection::hello_timeout:
            return "hello_timeout";
        case Rejection::connection_limit:
            return "connection_limit";
        case Rejection::malformed:
            return "malformed";
        case Rejection::misaddressed:
            return "misaddressed";
        case Rejection::wrong_frame_kind:
            return "wrong_frame_kind";
        case Rejection::snapshot:
            return "snapshot";
        case Rejection::overloaded:
            return "overloaded";
    }
    return "unknown";
}

}  // namespace keel::transport
