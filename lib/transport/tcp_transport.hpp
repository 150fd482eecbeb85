// transport/tcp_transport.hpp — the Transport between members over TCP
// (Boost.Asio), speaking the frames of codec.hpp, in plain TCP or mutual TLS.
//
// Connections are one-way: each member dials one outbound connection per
// peer and sends on it; it reads frames only on the connections peers
// dialled to it.  With TLS (options.tls) both sides present a certificate
// and verify the other's against the CA (tls.hpp) before anything else.  The
// first frame on a connection is a Hello (cluster id + sender id).  What
// happens before it is HelloGate's (hello_gate.hpp): an inbound connection
// that fails the TLS handshake, says anything else first, names another
// cluster, or sends a malformed, truncated or oversized frame is closed, and
// the refusal counted (TransportHandler::on_rejected).  The hello also says
// where its sender listens (TransportHandler::on_hello).  Nothing a peer sends
// can crash the process or make it allocate past the codec limits.
//
// Limits on the peer port, each an option below: inbound_connections_max in
// all; inbound_pending_per_address_max not yet past their hello from one
// address; one identified connection per claimed peer (a newer one replaces
// the older: the peer dials one at a time, so the older is half-dead);
// hello_timeout from accept to hello (TLS handshake included); idle_timeout
// after it; snapshot_bytes_max staged per sender, one stream at a time.
// Before the hello the I/O thread does no disk work and reads at most
// kHelloFrameBytes (plus, with TLS, one bounded handshake).
//
// Outbound, per peer: lazy connect on the first message, TCP_NODELAY, a
// bounded queue (peer_queue_messages_max; overflow drops and reports
// on_unreachable), and at most one write in flight — everything queued
// meanwhile is coalesced into the next frame (gather-written together with
// a snapshot chunk, if a snapshot is streaming, so heartbeats keep flowing
// during a long transfer).  A failed connection drops its queue, reports
// on_unreachable and reconnects after an exponential backoff
// (backoff_initial .. backoff_max, jittered by a seeded generator) once
// there is something to send.  One idle for outbound_idle_close is closed
// quietly (below the peers' idle_timeout) and dialled again when needed.
//
// Snapshots travel on the same connection as messages, as chunks of
// snapshot_chunk_bytes (one chunk per write, so memory stays bounded and
// heartbeats interleave).  The receiver appends them to
// <staging_dir>/snapshot-<from>-<n>.part, checks every offset and the total
// against snapshot_bytes_max, and on the final chunk fsyncs, renames to
// .snap and calls on_snapshot.  A new snapshot from the same sender, or the
// loss of its connection, deletes the partial file; .part files left by a
// crash are deleted by start().  A refused stream closes its connection;
// the node goes on.
//
// Threading: see transport.hpp (one io_context, calls and callbacks on its
// thread), except send_now(), which any thread may call: one mutex (the
// send lock) guards the outbound side, TLS sessions included.  The io_context is the runtime's and
// must outlive this object; pending handlers keep the internals alive, so the transport may be
// destroyed at any time after stop() (the destructor calls stop()).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "transport/cluster_id.hpp"
#include "transport/codec.hpp"
#include "transport/transport.hpp"

namespace boost::asio {
class io_context;
}

namespace keel::transport {

class TlsContext;

struct TcpTransportOptions {
    NodeId self = raft::kNoNode;
    // Unset: a fresh joiner's; it adopts the first valid hello's
    // (TransportHandler::on_cluster_id) and dials no one before.
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
    // Where incoming snapshots are staged (must exist).  Empty: incoming
    // snapshots are refused (the connection is closed).
    std::string staging_dir;

    CodecLimits limits;
    std::size_t peer_queue_messages_max = 4096;      // per peer, waiting for the socket
    std::size_t batch_bytes_max = 1024 * 1024;       // target size of one messages frame
    std::size_t snapshot_chunk_bytes = 1024 * 1024;  // must be <= limits.chunk_bytes_max
    std::uint64_t snapshot_bytes_max = std::uint64_t{64} << 30;  // refused above (both sides)
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
    std::uint64_t frames_sent = 0;
    std::uint64_t messages_sent = 0;
    std::uint64_t messages_sent_now = 0;  // of which taken by send_now (written off the I/O thread)
    std::uint64_t messages_dropped = 0;   // queue overflow, unknown peer, failed connection
    std::uint64_t messages_received = 0;
    std::uint64_t connects = 0;  // outbound connections established
    std::uint64_t connect_failures = 0;
    std::uint64_t inbound_accepted = 0;
    std::uint64_t inbound_rejected = 0;  // closed for bad input (not a clean EOF)
    std::uint64_t snapshots_received = 0;
};

class TcpTransport final : public Transport {
public:
    TcpTransport(boost::asio::io_context& io, TcpTransportOptions options,
                 TransportHandler handler);
    ~TcpTransport() override;
    TcpTransport(const TcpTransport&) = delete;
    TcpTransport& operator=(const TcpTransport&) = delete;

    // Binds and listens (if listen_address is set) and starts accepting.
    // Fails with invalid_argument (bad address) or io_error (bind failed).
    Status start() override;
    void stop() override;

    void set_peer(NodeId id, std::string address) override;
    void remove_peer(NodeId id) override;
    void send(std::vector<raft::Message> messages) override;
    void send_snapshot(raft::Message message, SnapshotSource source) override;
    // The exception to the threading rule: may be called from any thread
    // while the I/O thread runs (or not).  Each peer whose connection is
    // idle (connected, nothing queued, being written or left over) takes its
    // messages from `messages` as send() would (queue limit, batching into
    // frames, offenders dropped and reported), and the calling thread writes
    // the frames at once without blocking; what the kernel does not take is
    // written next by the I/O thread.  Messages to other peers are left, in
    // order, for the caller to pass to send() on the I/O thread.  The caller
    // must also keep the order with its own earlier send() calls: nothing it
    // queued for the I/O thread may still be on its way to send(), or a
    // message written now overtakes it (keel::runtime::Replica calls it only
    // when its outbox is empty).  TransportHandler callbacks it causes are
    // posted, as always.
    void send_now(std::vector<raft::Message>& messages);

    // The port actually bound (useful with port 0); 0 before start().
    std::uint16_t bound_port() const;
    TcpTransportStats stats() const;

    class Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace keel::transport
