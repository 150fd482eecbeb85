// transport/tcp_internal.hpp — the private pieces of TcpTransport: the shared
// state (Impl), one OutboundPeer per peer, one InboundConnection per
// accepted socket.  Only the tcp_*.cpp files include this (it pulls in Asio).
//
// Lifetime: Impl, peers and connections are shared_ptrs; every pending
// asynchronous handler holds the object it completes on, and peers and
// connections hold the Impl.  The Impl's maps hold peers and connections
// until stop() (or remove_peer / close) drops them, which breaks the cycle;
// handlers still pending then see operation_aborted or a stale generation
// and return without touching anything else.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "transport/hello_gate.hpp"
#include "transport/tcp_transport.hpp"
#include "transport/tls.hpp"

namespace keel::transport {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class OutboundPeer;
class InboundConnection;

// Splits "host:port" ("[v6]:port" allowed).  invalid_argument otherwise.
Status split_host_port(std::string_view address, std::string& host, std::string& port);
// Whether `bytes` are whole messages or snapshot chunk frames, every one
// of `group` (the group travels in the frames' header); for kCoalescedGroup,
// of any other group.
bool frames_of_group(std::string_view bytes, GroupId group);

class TcpTransport::Impl : public std::enable_shared_from_this<TcpTransport::Impl> {
public:
    Impl(asio::io_context& io, TcpTransportOptions options, TcpTransportHooks hooks);

    bool running() const { return started_ && !stopped_; }
    void log(LogLevel level, const std::string& message) const;
    // Something from outside refused: counted, and reported through
    // on_rejected (or logged as a warning when there is none).
    void reject(Rejection reason, const std::string& detail);
    // A fresh joiner's first valid hello: the runtime persists the id
    // (on_cluster_id), then it is ours and outbound peers may say hello.
    Status adopt_cluster_id(const Hello& hello);
    // Outbound events are reported through posted handlers, never inline, so
    // that a call into the transport never re-enters the runtime.
    void post_unreachable(GroupId group, NodeId id);
    void post_snapshot_done(std::shared_ptr<OutgoingSnapshot> snapshot, bool delivered);

    Status start(TransportSink& sink);
    void stop();
    void accept_next();
    void admit(tcp::socket socket);
    void forget_inbound(const std::shared_ptr<InboundConnection>& connection);
    // Connections from `address` not past their hello yet (the per-address cap).
    void add_pending(const std::string& address);
    void remove_pending(const std::string& address);

    asio::io_context& io_;
    const TcpTransportOptions options_;
    const TcpTransportHooks hooks_;
    // Set by start(); valid until stop() returns (keel::Transport).
    TransportSink* sink_ = nullptr;
    tcp::acceptor acceptor_;
    asio::steady_timer accept_retry_timer_;
    bool started_ = false;
    bool stopped_ = false;
    std::uint16_t bound_port_ = 0;

    std::map<NodeId, std::shared_ptr<OutboundPeer>> peers_;
    std::set<std::shared_ptr<InboundConnection>> inbound_;
    std::map<std::string, std::size_t> pending_by_address_;  // remote IP -> count (I/O thread)
    // What our hellos say about where we listen (set by start()).
    std::string hello_address_;
    // options_.cluster_id until a fresh joiner adopts one.  Written on the
    // I/O thread under the send lock; read there, or under the lock.
    ClusterId cluster_id_;

    std::uint64_t next_snapshot_id_ = 1;  // tells streams apart (OutboundPeer::Outgoing)

    std::mt19937_64 rng_;      // backoff jitter
    TcpTransportStats stats_;  // the outbound counters (under send_mu_)
    // The inbound counters: the I/O thread counts them without the send lock,
    // stats() reads them from any thread.
    struct InboundCounters {
        std::atomic<std::uint64_t> frames_received{0};
        std::atomic<std::uint64_t> accepted{0};
        std::atomic<std::uint64_t> rejected{0};
    };
    InboundCounters inbound_counters_;

    // The send lock: TcpTransport::send_now may run on any thread, so every
    // access to the outbound side — peers_, each OutboundPeer's state, its
    // socket's open/close, stopped_'s change, stats_ from send_now's side —
    // holds it.  The public calls and the outbound handlers take it on entry;
    // the methods they call assume it.  Inbound connections never take it.
    // Nothing run under it calls the sink or a hook (those are posted)
    // other than log.
    mutable std::mutex send_mu_;
};

// The connection we dial to one peer, its send queue and its snapshot stream.
class OutboundPeer : public std::enable_shared_from_this<OutboundPeer> {
public:
    OutboundPeer(std::shared_ptr<TcpTransport::Impl> transport, NodeId id, std::string address);

    const std::string& address() const { return address_; }
    // Queues `bytes` (frames of `group`); false (and nothing queued) when
    // the queue is at its limit or the peer is closed.  Call kick() after.
    bool enqueue(GroupId group, std::string&& bytes);
    // Replaces any snapshot stream in progress (which is reported failed).
    void start_snapshot(GroupId group, std::shared_ptr<OutgoingSnapshot> snapshot,
                        std::uint64_t snapshot_id);
    // Connects if idle, writes if connected and no write is in flight;
    // nothing while the transport has no cluster id (a joiner says nothing
    // before it knows its cluster: messages wait in the queue).
    void kick();
    // Connected, hello sent, nothing queued, being written or left over: a
    // write now from another thread cannot overtake anything.
    bool idle() const;
    // From any thread (send lock held), on an idle connection: writes
    // `bytes` at once without blocking; what the kernel does not take goes
    // first in the next write, from the I/O thread.
    void write_now(GroupId group, std::string bytes);
    // Final: closes the connection, drops the queue, aborts the snapshot.
    void close();

private:
    enum class State { idle, connecting, handshaking, connected, backing_off, closed };

    void connect();
    void connect_to(const std::vector<tcp::endpoint>& endpoints);
    // TLS: drives the client handshake (writes its flights, reads the
    // server's) until done, then on_connected.  Bounded by connect_timeout.
    void handshake_step();
    void read_handshake();
    void on_connected();
    void watch_for_close();
    // While connected: closes the connection quietly once nothing has been
    // written for outbound_idle_close (dialled again on the next message).
    void arm_idle_close();
    // The frames as they go on the wire: encrypted under TLS.  False (and
    // the connection failed) if encryption failed.
    bool to_wire(std::vector<std::string>& plain, std::vector<std::string>& wire);
    void write_next();
    // Moves queued buffers into `frames`, up to write_bytes_max (one at
    // least).  Returns how many.
    std::size_t take_queued(std::vector<std::string>& frames);
    bool take_snapshot_chunk(std::vector<std::string>& frames);
    // Drops the connection and its queue, reports the peer unreachable to
    // every group that sent to it since the last report, backs off.  `level`: error for what an
    // operator must fix (TLS refused).
    void fail(const std::string& reason, LogLevel level = LogLevel::warning);
    void tear_down_connection();
    void abort_snapshot(const std::string& reason);
    std::chrono::milliseconds next_backoff();

    std::shared_ptr<TcpTransport::Impl> t_;
    const NodeId id_;
    const std::string address_;
    tcp::resolver resolver_;
    tcp::socket socket_;
    // The connect deadline, then (connected) the idle check, then the backoff.
    asio::steady_timer backoff_timer_;
    std::unique_ptr<TlsSession> tls_;  // under TLS, from the TCP connect on

    State state_ = State::idle;
    // Bumped whenever the connection is torn down: a handler that captured
    // an older generation belongs to a dead connection and does nothing.
    std::uint64_t generation_ = 0;
    bool writing_ = false;
    bool hello_sent_ = false;
    // Wire bytes (ciphertext under TLS) to write before anything newer:
    // what write_now's send left, or the TLS handshake's last flight.
    std::string unsent_;
    std::chrono::steady_clock::time_point last_write_;
    std::chrono::milliseconds backoff_{0};
    std::deque<std::string> queue_;
    // The groups whose buffers or snapshots went to this peer since its last
    // failure: the ones told it is unreachable when the link fails.
    std::set<GroupId> groups_;
    // The server's handshake flights; then anything the peer sends (it
    // never should: an alert, or a close).
    std::array<char, 4096> read_buffer_{};

    struct Outgoing {
        GroupId group = 0;
        std::uint64_t id = 0;
        std::shared_ptr<OutgoingSnapshot> snapshot;
        bool final_chunk_in_flight = false;
    };
    std::optional<Outgoing> snapshot_;
};

// One accepted connection: the TLS handshake and the hello (HelloGate),
// then frames until the peer closes or misbehaves.
class InboundConnection : public std::enable_shared_from_this<InboundConnection> {
public:
    InboundConnection(std::shared_ptr<TcpTransport::Impl> transport, tcp::socket socket,
                      std::string remote_address);

    void start();
    NodeId peer() const { return peer_; }
    // Idempotent.  A normal end (logged as debug).
    void close(const std::string& reason);
    // Idempotent.  The peer sent something we refuse: counted, reported.
    void refuse(Rejection reason, const std::string& detail);

private:
    // One socket read: plaintext into in_, or (TLS) ciphertext into cipher_.
    void read_more();
    void on_read(boost::system::error_code ec, std::size_t got);
    void on_ciphertext(boost::system::error_code ec, std::size_t got);
    // The peer closed or the read failed, with in_ holding what is left.
    void on_read_end(boost::system::error_code ec);
    // TLS: advances the server handshake, writes its flight, reads more.
    void continue_handshake();
    // TLS: decrypts what the session holds into in_ and delivers the whole
    // frames; false once the connection is closed.
    bool decrypt_received();
    // Makes free space at the end of in_ (compacted or grown first).
    void make_room();
    // Decodes and dispatches every whole frame in in_ (the hello first,
    // through the gate); false once the connection is closed (bad input,
    // or a callback stopped the transport).
    bool deliver_frames();
    // Before the hello: feeds the gate; false once closed.
    bool pass_gate();
    void on_identified(std::size_t hello_bytes);
    // Carries out the gate's refuse / close.
    void act(const HelloGate::Decision& decision);
    // Before the hello: the hello deadline; after: the idle check.
    void arm_timer(std::chrono::steady_clock::duration after);
    void on_timer();

    // " (node N)" once the hello named the peer, for logs; empty before.
    std::string node_note() const;

    // Hands one whole frame (prefix included) to the sink, with the group
    // its header names; false once the connection is closed (a frame of the
    // wrong kind, too short for a group id, or refused).
    bool dispatch(std::string_view frame);

    std::shared_ptr<TcpTransport::Impl> t_;
    tcp::socket socket_;
    asio::steady_timer timer_;
    const std::string remote_address_;  // the peer's IP (the per-address cap)
    std::string remote_;                // address:port, for logs
    HelloGate gate_;
    bool pending_ = true;  // counted in Impl::pending_by_address_
    std::unique_ptr<TlsSession> tls_;
    std::vector<char> cipher_;   // TLS: one socket read
    std::string handshake_out_;  // TLS: the flight being written
    std::uint64_t bytes_received_ = 0;
    std::chrono::steady_clock::time_point last_read_;
    // Received plaintext; [in_begin_, in_end_) are not decoded yet.  Reads
    // take whatever the socket has, so one read often brings several frames (one
    // system call and one handler for all of them) and a frame never costs
    // a read for its length and another for its body.  The buffer grows only
    // when full, so a peer announcing a large frame and sending little costs
    // little memory.
    std::vector<char> in_;
    std::size_t in_begin_ = 0;
    std::size_t in_end_ = 0;
    // Bytes the frame at in_begin_ needs in all (length prefix included), as
    // far as known: the prefix alone until it has arrived (deliver_frames).
    std::size_t frame_bytes_ = kFrameLengthBytes;
    NodeId peer_ = raft::kNoNode;  // set by the hello
    // The groups whose snapshot chunks the sink took on this connection:
    // told when it closes (TransportSink::on_disconnected).
    std::set<GroupId> snapshot_groups_;
    bool closed_ = false;
};

}  // namespace keel::transport
