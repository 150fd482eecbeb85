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

#include "transport/snapshot_files.hpp"
#include "transport/tcp_transport.hpp"

namespace keel::transport {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class OutboundPeer;
class InboundConnection;

// Splits "host:port" ("[v6]:port" allowed).  invalid_argument otherwise.
Status split_host_port(std::string_view address, std::string& host, std::string& port);

class TcpTransport::Impl : public std::enable_shared_from_this<TcpTransport::Impl> {
public:
    Impl(asio::io_context& io, TcpTransportOptions options, TransportHandler handler);

    bool running() const { return started_ && !stopped_; }
    void log(LogLevel level, const std::string& message) const;
    // Outbound events are reported through posted handlers, never inline, so
    // that a call into the transport never re-enters the runtime.
    void post_unreachable(NodeId id);
    void post_snapshot_sent(NodeId id, bool ok);
    // Reports input from a peer that was refused (on_rejected), at once:
    // inbound handlers run on the I/O thread, never inside a call.
    void reject(std::string_view reason, const std::string& detail) const;

    Status start();
    void stop();
    void accept_next();
    void forget_inbound(const std::shared_ptr<InboundConnection>& connection);

    // A snapshot chunk from `from` on `connection`: appended to that peer's
    // staging file; the final chunk fsyncs it and calls on_snapshot.  An
    // error means the connection must be closed.
    Status on_chunk(const InboundConnection* connection, NodeId from, SnapshotChunk&& chunk);
    // Deletes partial snapshots last written through `connection`.
    void abort_staging_of(const InboundConnection* connection);

    asio::io_context& io_;
    const TcpTransportOptions options_;
    const TransportHandler handler_;
    tcp::acceptor acceptor_;
    asio::steady_timer accept_retry_timer_;
    bool started_ = false;
    bool stopped_ = false;
    std::uint16_t bound_port_ = 0;

    std::map<NodeId, std::shared_ptr<OutboundPeer>> peers_;
    std::set<std::shared_ptr<InboundConnection>> inbound_;

    struct Staged {
        const InboundConnection* owner = nullptr;  // identity only, never dereferenced
        std::uint64_t snapshot_id = 0;
        std::uint64_t total_bytes = 0;
        StagingFile file;
    };
    std::map<NodeId, Staged> staging_;  // at most one partial snapshot per sender
    std::uint64_t next_staging_seq_ = 1;
    std::uint64_t next_snapshot_id_ = 1;

    std::mt19937_64 rng_;  // backoff jitter
    TcpTransportStats stats_;

    // The send lock: TcpTransport::send_now may run on any thread, so every
    // access to the outbound side — peers_, each OutboundPeer's state, its
    // socket's open/close, stopped_'s change, stats_ from send_now's side —
    // holds it.  The public calls and the outbound handlers take it on entry;
    // the methods they call assume it.  Inbound connections never take it.
    // Nothing run under it calls a TransportHandler callback (those are
    // posted) other than log.
    mutable std::mutex send_mu_;
};

// The connection we dial to one peer, its send queue and its snapshot stream.
class OutboundPeer : public std::enable_shared_from_this<OutboundPeer> {
public:
    OutboundPeer(std::shared_ptr<TcpTransport::Impl> transport, NodeId id, std::string address);

    const std::string& address() const { return address_; }
    // Queues `m`; false (and nothing queued) when the queue is at its limit
    // or the peer is closed.  Call kick() after a batch of enqueues.
    bool enqueue(raft::Message&& m);
    // Replaces any snapshot stream in progress (which is reported failed).
    void start_snapshot(raft::Message message, SnapshotReader reader, std::uint64_t snapshot_id);
    // Connects if idle, writes if connected and no write is in flight.
    void kick();
    // Connected, hello sent, nothing queued, being written or left over: a
    // write now from another thread cannot overtake anything.
    bool idle() const;
    // From any thread (send lock held), on a connection that was idle before
    // the caller queued messages (enqueue): frames the queue as write_next()
    // would and writes the frames at once without blocking; what the kernel
    // does not take goes first in the next write, from the I/O thread.
    // Returns how many messages it framed.
    std::size_t write_now();
    // Final: closes the connection, drops the queue, aborts the snapshot.
    void close();

private:
    enum class State { idle, connecting, connected, backing_off, closed };

    void connect();
    void connect_to(const std::vector<tcp::endpoint>& endpoints);
    void on_connected();
    void watch_for_close();
    void write_next();
    std::size_t take_message_frames(std::vector<std::string>& frames);
    std::size_t take_one_batch(std::vector<std::string>& frames);
    bool take_snapshot_chunk(std::vector<std::string>& frames);
    void fail(const std::string& reason);
    void tear_down_connection();
    void abort_snapshot(const std::string& reason);
    std::chrono::milliseconds next_backoff();

    std::shared_ptr<TcpTransport::Impl> t_;
    const NodeId id_;
    const std::string address_;
    tcp::resolver resolver_;
    tcp::socket socket_;
    asio::steady_timer backoff_timer_;

    State state_ = State::idle;
    // Bumped whenever the connection is torn down: a handler that captured
    // an older generation belongs to a dead connection and does nothing.
    std::uint64_t generation_ = 0;
    bool writing_ = false;
    bool hello_sent_ = false;
    std::string unsent_;  // the bytes write_now's send left; written first
    std::chrono::milliseconds backoff_{0};
    std::deque<raft::Message> queue_;
    std::array<char, 1> probe_{};

    struct Outgoing {
        std::uint64_t id = 0;
        raft::Message message;
        SnapshotReader reader;
        std::uint64_t offset = 0;  // next byte to send
        bool final_chunk_in_flight = false;
    };
    std::optional<Outgoing> snapshot_;
};

// One accepted connection: reads frames until the peer closes or misbehaves.
class InboundConnection : public std::enable_shared_from_this<InboundConnection> {
public:
    InboundConnection(std::shared_ptr<TcpTransport::Impl> transport, tcp::socket socket);

    void start();
    NodeId peer() const { return peer_; }
    // Idempotent.  `bad_input`: the peer sent something we refuse (counted,
    // logged as a warning); otherwise a normal close (logged as debug).
    void close(const std::string& reason, bool bad_input);

private:
    // One read into the free space of in_ (compacted or grown first).
    void read_more();
    void on_read(boost::system::error_code ec, std::size_t got);
    // Decodes and dispatches every whole frame in in_; false once the
    // connection is closed (bad input, or a callback stopped the transport).
    bool deliver_frames();

    // Returns an error when the connection must be closed, and sets
    // `refused` to its reason (TransportHandler::on_rejected) when not malformed.
    Status dispatch(Frame&& frame, std::string_view& refused);
    Status on_hello(const Hello& hello);
    Status check_message(const raft::Message& m) const;

    std::shared_ptr<TcpTransport::Impl> t_;
    tcp::socket socket_;
    asio::steady_timer hello_timer_;
    std::string remote_;
    // Received bytes; [in_begin_, in_end_) are not decoded yet.  Reads take
    // whatever the socket has, so one read often brings several frames (one
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
    bool closed_ = false;
};

}  // namespace keel::transport
