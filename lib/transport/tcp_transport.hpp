// transport/tcp_transport.hpp — keel's built-in keel::Transport
// (keel/transport.hpp) between members over TCP (Boost.Asio), in plain TCP
// or mutual TLS.  It carries the opaque buffers keel's MessageChannel makes
// (codec.hpp frames) and hands every frame it reads to the TransportSink
// unopened but for its length prefix and kind.
//
// Connections are one-way: each member dials one outbound connection per
// peer and sends on it; it reads frames only on the connections peers
// dialled to it.  With TLS (options.tls) both sides present a certificate
// and verify the other's against the CA (tls.hpp) before anything else.  The
// first frame on a connection is a Hello (cluster id + sender id).  What
// happens before it is HelloGate's (hello_gate.hpp): an inbound connection
// that fails the TLS handshake, says anything else first, names another
// cluster, or sends a malformed, truncated or oversized frame is closed, and
// the refusal counted (TcpTransportHooks::on_rejected).  The hello also says
// where its sender listens (TcpTransportHooks::on_hello).  After the hello,
// each frame of kind messages goes to TransportSink::on_messages, each of
// kind snapshot_chunk to on_snapshot_chunk, with the hello's sender as
// `from`; a frame of any other kind, or one the sink refuses, closes the
// connection.  Nothing a peer sends can crash the process or make it
// allocate past the codec's frame limit.  Any number of groups share a
// connection: the group travels in each frame (codec.hpp), is read from
// there on arrival, and is the group the sink hears the frame under.
//
// Limits on the peer port, each an option below: inbound_connections_max in
// all; inbound_pending_per_address_max not yet past their hello from one
// address; one identified connection per claimed peer (a newer one replaces
// the older: the peer dials one at a time, so the older is half-dead);
// hello_timeout from accept to hello (TLS handshake included); idle_timeout
// after it.  Before the hello the I/O thread does no disk work and reads at
// most kHelloFrameBytes (plus, with TLS, one bounded handshake).
//
// Outbound, per peer: lazy connect on the first buffer, TCP_NODELAY, a
// bounded queue (peer_queue_buffers_max; overflow drops and reports
// on_unreachable), and at most one write in flight — everything queued
// meanwhile (up to write_bytes_max) is gather-written in the next one,
// together with a snapshot chunk, if a snapshot is streaming, so heartbeats
// keep flowing during a long transfer.  Consecutive messages frames of one
// group in that write are joined into one frame first (frame_joiner.hpp,
// up to joined_messages_max and joined_frame_bytes_max).  A failed connection drops its
// queue, reports on_unreachable and reconnects after an exponential backoff
// (backoff_initial .. backoff_max, jittered by a seeded generator) once
// there is something to send.  One idle for outbound_idle_close is closed
// quietly (below the peers' idle_timeout) and dialled again when needed.
//
// Snapshots travel on the same connection as messages, one chunk per write
// (pulled from the OutgoingSnapshot when the connection has room, so memory
// stays bounded and heartbeats interleave).  The loss of an inbound
// connection is reported (TransportSink::on_disconnected), so that keel
// drops a partial snapshot that came on it.
//
// Threading: the keel::Transport contract, on one io_context owned by the
// caller: calls from its thread, and the sink and hooks called from
// handlers it runs (never from inside a call), except send_now(), which any
// thread may call: one mutex (the send lock) guards the outbound side, TLS
// sessions included.  The io_context must outlive this object; pending
// handlers keep the internals alive, so the transport may be destroyed at
// any time after stop() (the destructor calls stop()).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "keel/transport.hpp"
#include "transport/cluster_id.hpp"
#include "transport/codec.hpp"
#include "transport/diagnostics.hpp"
#include "transport/rejection.hpp"

namespace boost::asio {
class io_context;
}

namespace keel::transport {

class TlsContext;

using raft::NodeId;

// What only the TCP transport reports (the data goes to the TransportSink).
// Called from handlers on the io_context; any of them may be empty.
struct TcpTransportHooks {
    // Diagnostics (a closed connection, a failed connect).  May be called
    // from inside any call (send_now's thread included); must not call back
    // into the transport.
    std::function<void(LogLevel, std::string_view)> log;
    // A connection or frame from outside refused before reaching the sink
    // (rejection.hpp): `detail` says what and from where.  When empty the
    // transport logs the refusal as a warning instead.
    std::function<void(Rejection reason, std::string_view detail)> on_rejected;
    // Only for a transport started without a cluster id (a joiner that has
    // not heard from its cluster yet): the id in the first valid hello, from
    // node `from`.  Make it durable and return ok to adopt it (nothing from
    // that connection is delivered before), or an error to refuse the
    // connection.  Adopted at most once; empty: such hellos are refused.
    std::function<Status(const ClusterId& id, NodeId from)> on_cluster_id;
    // A peer said hello: node `from` says it listens at `address` (printable
    // ASCII, possibly empty).  Called once per identified connection, before
    // anything that connection carries is delivered.  Unauthenticated beyond
    // what the connection is (a CA-signed certificate under TLS): the
    // runtime uses it only for ids its configuration does not place.
    std::function<void(NodeId from, std::string_view address)> on_hello;
};

struct TcpTransportOptions {
    NodeId self = raft::kNoNode;
    // Unset: a fresh joiner's; it adopts the first valid hello's
    // (TcpTransportHooks::on_cluster_id) and dials no one before.
    ClusterId cluster_id;
    // Mutual TLS on every connection, both ways (tls.hpp); null: plain TCP.
    std::shared_ptr<const TlsContext> tls;
    // "host:port" to listen on ("127.0.0.1:0" picks a free port, see
    // bound_port()); empty: do not listen (send-only, for tools and tests).
    std::string listen_address;
    // What our hellos give as our address: where peers reach us.  Empty:
    // listen_address's host with the bound port (nothing if we do not
    // listen).  At most kHelloAddressBytesMax of printable ASCII.
    std::string advertised_address;

    // Frames longer than this are refused before they are read whole.
    std::size_t frame_bytes_max = CodecLimits{}.frame_bytes_max;
    std::size_t peer_queue_buffers_max = 4096;  // per peer, waiting for the socket
    std::size_t write_bytes_max = 1024 * 1024;  // queued buffers gathered into one write
    // Messages frames of one group queued one after the other are joined
    // into one frame (frame_joiner.hpp) of at most these many messages and
    // bytes: the receiver's codec limit, and MessageChannel's batch_bytes_max.
    std::size_t joined_messages_max = CodecLimits{}.messages_per_batch_max;
    std::size_t joined_frame_bytes_max = 1024 * 1024;
    std::size_t inbound_connections_max = 256;  // further connections are closed at once
    // Connections from one remote address not past their hello yet; more
    // are closed at once, so that one host cannot hold every slot.
    std::size_t inbound_pending_per_address_max = 8;
    // An inbound connection that has not finished its TLS handshake and
    // said hello by then (from accept) is closed, so strangers cannot hold
    // connection slots.
    std::chrono::milliseconds hello_timeout{5000};
    // An identified inbound connection on which nothing arrives for this
    // long is closed (its peer vanished without a FIN, or holds a slot).
    std::chrono::milliseconds idle_timeout{30000};
    // An outbound connection on which nothing was written for this long is
    // closed quietly, and dialled again for the next message.  Below the
    // peers' idle_timeout, so that they never time a live peer out.
    std::chrono::milliseconds outbound_idle_close{10000};

    // A connect that has not completed by then fails (a partitioned peer
    // drops SYNs; the kernel alone would keep trying for minutes).
    std::chrono::milliseconds connect_timeout{1000};
    std::chrono::milliseconds backoff_initial{10};
    std::chrono::milliseconds backoff_max{1000};
    std::uint64_t jitter_seed = 1;
};

// Counters for tests and metrics; monotonic.
struct TcpTransportStats {
    std::uint64_t writes = 0;            // socket writes of buffers (send_now's included)
    std::uint64_t buffers_sent = 0;      // buffers given to send() or send_now(), written
    std::uint64_t buffers_sent_now = 0;  // of which written by send_now (off the I/O thread)
    // Of buffers_sent, those that went out inside another's frame (n frames
    // joined into one count n - 1): frames written = buffers_sent - this.
    std::uint64_t buffers_joined = 0;
    std::uint64_t buffers_dropped = 0;  // queue overflow, unknown peer, failed connection
    std::uint64_t frames_received = 0;  // handed to the sink
    std::uint64_t connects = 0;         // outbound connections established
    std::uint64_t connect_failures = 0;
    std::uint64_t inbound_accepted = 0;
    std::uint64_t inbound_rejected = 0;  // closed for bad input (not a clean EOF)
};

class TcpTransport final : public Transport {
public:
    TcpTransport(boost::asio::io_context& io, TcpTransportOptions options,
                 TcpTransportHooks hooks = {});
    ~TcpTransport() override;
    TcpTransport(const TcpTransport&) = delete;
    TcpTransport& operator=(const TcpTransport&) = delete;

    // Binds and listens (if listen_address is set) and starts accepting.
    // Fails with invalid_argument (bad address) or io_error (bind failed).
    Status start(TransportSink& sink) override;
    void stop() override;

    void set_peer(NodeId id, const std::string& address) override;
    void remove_peer(NodeId id) override;
    void send(GroupId group, NodeId to, std::string bytes) override;
    // Any thread, while the I/O thread runs (or not).  A peer whose
    // connection is idle (connected, nothing queued, being written or left
    // over) takes the buffer encode() makes and the calling thread writes it
    // at once without blocking; what the kernel does not take is written
    // next by the I/O thread.  Any other peer: false, encode() not called.
    // The caller keeps the order with its own earlier send() calls (see
    // keel::Transport::send_now).  Sink calls it causes are posted.
    bool send_now(GroupId group, NodeId to, const std::function<std::string()>& encode) override;
    void send_snapshot(GroupId group, NodeId to,
                       std::shared_ptr<OutgoingSnapshot> snapshot) override;

    // The port actually bound (useful with port 0); 0 before start().
    std::uint16_t bound_port() const;
    TcpTransportStats stats() const;

    class Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace keel::transport
