// transport/tcp_outbound.cpp — one peer's outbound connection: connect with
// backoff, the TLS client handshake, the bounded send queue, coalesced
// writes, snapshot streaming, and the write from another thread when the
// connection is idle (write_now).
//
// Every handler here takes the transport's send lock first (Impl::send_mu_);
// the methods they and the public calls reach assume it is held.  The TLS
// session is touched only under that lock, so write_now may encrypt on its
// own thread: frames become records in the order the lock orders them, and
// the records reach the socket in that order (write_now writes only when
// nothing is queued or in flight, and what it leaves goes first in the next
// write).  Reads on this connection (the handshake, then watch_for_close)
// see only the handshake and, after it, alerts: a server never sends data.
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <random>
#include <utility>

#include "transport/tcp_internal.hpp"

namespace keel::transport {

OutboundPeer::OutboundPeer(std::shared_ptr<TcpTransport::Impl> transport, NodeId id,
                           std::string address)
    : t_(std::move(transport)),
      id_(id),
      address_(std::move(address)),
      resolver_(t_->io_),
      socket_(t_->io_),
      backoff_timer_(t_->io_) {}

bool OutboundPeer::enqueue(std::string&& bytes) {
    if (state_ == State::closed || queue_.size() >= t_->options_.peer_queue_buffers_max)
        return false;
    queue_.push_back(std::move(bytes));
    return true;
}

void OutboundPeer::start_snapshot(std::shared_ptr<OutgoingSnapshot> snapshot,
                                  std::uint64_t snapshot_id) {
    if (state_ == State::closed) {
        t_->post_snapshot_done(std::move(snapshot), false);
        return;
    }
    if (snapshot_) abort_snapshot("replaced by a newer snapshot");
    snapshot_.emplace(Outgoing{snapshot_id, std::move(snapshot), false});
    kick();
}

void OutboundPeer::kick() {
    if (t_->cluster_id_.unset()) return;
    if (state_ == State::idle) {
        connect();
    } else if (state_ == State::connected) {
        write_next();
    }
    // connecting: on_connected writes; backing_off: the timer reconnects.
}

bool OutboundPeer::idle() const {
    return state_ == State::connected && hello_sent_ && !writing_ && queue_.empty() &&
           unsent_.empty();
}

void OutboundPeer::write_now(std::string plain) {
    KEEL_ASSERT(idle(), "write_now only on an idle connection");
    std::string bytes;
    if (tls_) {
        if (Status s = tls_->encrypt(plain, bytes); !s.ok()) {
            // The session is broken: the I/O thread fails the connection.
            asio::post(t_->io_, [self = shared_from_this(), generation = generation_, s] {
                std::lock_guard lock(self->t_->send_mu_);
                if (generation == self->generation_) self->fail(s.message());
            });
            return;
        }
    } else {
        bytes = std::move(plain);
    }
    // Reads the descriptor only: the socket object is opened and closed
    // under the send lock, which this caller holds.
    const int fd = socket_.native_handle();
    ssize_t n = 0;
    do {
        n = ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    const std::size_t sent = n > 0 ? static_cast<std::size_t>(n) : 0;
    ++t_->stats_.writes;
    ++t_->stats_.buffers_sent;
    ++t_->stats_.buffers_sent_now;
    last_write_ = std::chrono::steady_clock::now();
    if (sent == bytes.size()) {
        backoff_ = std::chrono::milliseconds(0);  // the connection works
        return;
    }
    // What the kernel did not take (all of it if the send would block or
    // failed) goes first in the next write, from the I/O thread, which also
    // meets and handles any error (fail()).
    unsent_.assign(bytes, sent);
    asio::post(t_->io_, [self = shared_from_this(), generation = generation_] {
        std::lock_guard lock(self->t_->send_mu_);
        if (generation == self->generation_) self->write_next();
    });
}

void OutboundPeer::close() {
    if (state_ == State::closed) return;
    tear_down_connection();
    state_ = State::closed;
    backoff_timer_.cancel();
    t_->stats_.buffers_dropped += queue_.size();
    queue_.clear();
    if (snapshot_) abort_snapshot("peer removed");
}

void OutboundPeer::connect() {
    KEEL_ASSERT(state_ == State::idle, "connect only from idle");
    std::string host, port;
    if (Status s = split_host_port(address_, host, port); !s.ok()) {
        fail(s.message());
        return;
    }
    state_ = State::connecting;
    const std::uint64_t generation = generation_;
    // The backoff timer is idle while connecting; it doubles as the deadline.
    backoff_timer_.expires_after(t_->options_.connect_timeout);
    backoff_timer_.async_wait(
        [self = shared_from_this(), generation](boost::system::error_code ec) {
            std::lock_guard lock(self->t_->send_mu_);
            if (ec || generation != self->generation_) return;
            if (self->state_ != State::connecting && self->state_ != State::handshaking) return;
            ++self->t_->stats_.connect_failures;
            self->fail(std::string(self->state_ == State::handshaking ? "TLS handshake with "
                                                                      : "connect to ") +
                       self->address_ + " timed out after " +
                       std::to_string(self->t_->options_.connect_timeout.count()) + " ms");
        });
    boost::system::error_code ec;
    asio::ip::address ip = asio::ip::make_address(host, ec);
    if (!ec) {
        // Numeric address: no resolver (it would run getaddrinfo on a hidden thread).
        auto port_number = static_cast<std::uint16_t>(std::stoul(port));
        connect_to({tcp::endpoint(ip, port_number)});
        return;
    }
    resolver_.async_resolve(
        host, port,
        [self = shared_from_this(), generation](boost::system::error_code rec,
                                                tcp::resolver::results_type results) {
            std::lock_guard lock(self->t_->send_mu_);
            if (generation != self->generation_ || self->state_ != State::connecting) return;
            if (rec) return self->fail("cannot resolve " + self->address_ + ": " + rec.message());
            std::vector<tcp::endpoint> endpoints;
            for (const auto& entry : results) endpoints.push_back(entry.endpoint());
            self->connect_to(endpoints);
        });
}

void OutboundPeer::connect_to(const std::vector<tcp::endpoint>& endpoints) {
    const std::uint64_t generation = generation_;
    asio::async_connect(
        socket_, endpoints,
        [self = shared_from_this(), generation](boost::system::error_code ec,
                                                const tcp::endpoint&) {
            std::lock_guard lock(self->t_->send_mu_);
            if (generation != self->generation_ || self->state_ != State::connecting) return;
            if (ec) {
                ++self->t_->stats_.connect_failures;
                return self->fail("cannot connect to " + self->address_ + ": " + ec.message());
            }
            boost::system::error_code ignored;
            self->socket_.set_option(tcp::no_delay(true), ignored);
            if (!self->t_->options_.tls) return self->on_connected();
            self->state_ = State::handshaking;
            self->tls_ =
                std::make_unique<TlsSession>(self->t_->options_.tls, TlsSession::Role::client);
            self->handshake_step();
        });
}

void OutboundPeer::handshake_step() {
    Result<TlsSession::Handshake> step = tls_->handshake();
    std::string out;
    tls_->take_output(out);
    if (!step.ok()) {
        // Tell the server why (our alert) if the socket takes it at once.
        boost::system::error_code ignored;
        socket_.non_blocking(true, ignored);
        socket_.write_some(asio::buffer(out), ignored);
        ++t_->stats_.connect_failures;
        return fail(step.status().message(), LogLevel::error);
    }
    if (*step == TlsSession::Handshake::done) {
        // The last flight goes first, before the hello.
        unsent_ = std::move(out);
        return on_connected();
    }
    if (out.empty()) return read_handshake();
    auto bytes = std::make_shared<std::string>(std::move(out));
    asio::async_write(socket_, asio::buffer(*bytes),
                      [self = shared_from_this(), generation = generation_, bytes](
                          boost::system::error_code ec, std::size_t) {
                          std::lock_guard lock(self->t_->send_mu_);
                          if (generation != self->generation_ || self->state_ != State::handshaking)
                              return;
                          if (ec) return self->fail("TLS handshake write failed: " + ec.message());
                          self->read_handshake();
                      });
}

void OutboundPeer::read_handshake() {
    socket_.async_read_some(
        asio::buffer(read_buffer_), [self = shared_from_this(), generation = generation_](
                                        boost::system::error_code ec, std::size_t got) {
            std::lock_guard lock(self->t_->send_mu_);
            if (generation != self->generation_ || self->state_ != State::handshaking) return;
            if (ec) {
                ++self->t_->stats_.connect_failures;
                return self->fail("connection lost during the TLS handshake: " + ec.message());
            }
            self->tls_->put_received(std::string_view(self->read_buffer_.data(), got));
            self->handshake_step();
        });
}

void OutboundPeer::on_connected() {
    state_ = State::connected;
    backoff_timer_.cancel();
    ++t_->stats_.connects;
    hello_sent_ = false;
    last_write_ = std::chrono::steady_clock::now();
    t_->log(LogLevel::debug, "connected to node " + std::to_string(id_) + " at " + address_ +
                                 (tls_ ? " (TLS: " + tls_->peer_subject() + ")" : ""));
    watch_for_close();
    arm_idle_close();
    write_next();
}

// Peers never send on a connection we dialled, so any completed read means
// the peer closed it (or broke the protocol): notice at once rather than on
// the next write, which the kernel might still accept.  Under TLS what
// comes is an alert (the server refused our certificate: a TLS 1.3 client
// finishes its handshake before the server has checked it) or a
// close_notify, decrypted to say which.
void OutboundPeer::watch_for_close() {
    const std::uint64_t generation = generation_;
    socket_.async_read_some(
        asio::buffer(read_buffer_),
        [self = shared_from_this(), generation](boost::system::error_code ec, std::size_t got) {
            std::lock_guard lock(self->t_->send_mu_);
            if (generation != self->generation_ || self->state_ != State::connected) return;
            if (ec) return self->fail("connection lost: " + ec.message());
            if (!self->tls_) return self->fail("peer sent data on a send-only connection");
            self->tls_->put_received(std::string_view(self->read_buffer_.data(), got));
            std::array<char, 256> scratch;
            Result<std::size_t> data = self->tls_->decrypt(scratch.data(), scratch.size());
            if (data.ok() && *data == 0) return self->watch_for_close();  // part of a record
            if (data.ok()) return self->fail("peer sent data on a send-only connection");
            if (data.status().code() == ErrorCode::aborted) return self->fail("peer closed TLS");
            // Most likely our certificate was refused: the operator must know.
            self->fail("the peer ended TLS: " + data.status().message(), LogLevel::error);
        });
}

void OutboundPeer::arm_idle_close() {
    const auto idle = std::chrono::steady_clock::now() - last_write_;
    const auto limit = t_->options_.outbound_idle_close;
    backoff_timer_.expires_after(idle < limit ? limit - idle : limit);
    backoff_timer_.async_wait(
        [self = shared_from_this(), generation = generation_](boost::system::error_code ec) {
            std::lock_guard lock(self->t_->send_mu_);
            if (ec || generation != self->generation_ || self->state_ != State::connected) return;
            const auto quiet = std::chrono::steady_clock::now() - self->last_write_;
            if (!self->idle() || self->snapshot_ || quiet < self->t_->options_.outbound_idle_close)
                return self->arm_idle_close();
            self->t_->log(LogLevel::debug,
                          "closing the idle connection to node " + std::to_string(self->id_));
            self->tear_down_connection();
            self->state_ = State::idle;
        });
}

bool OutboundPeer::to_wire(std::vector<std::string>& plain, std::vector<std::string>& wire) {
    if (!tls_) {
        for (std::string& frame : plain) wire.push_back(std::move(frame));
        return true;
    }
    if (plain.empty()) return true;
    std::string records;
    for (const std::string& frame : plain) {
        if (Status s = tls_->encrypt(frame, records); !s.ok()) {
            fail(s.message());
            return false;
        }
    }
    wire.push_back(std::move(records));
    return true;
}

void OutboundPeer::write_next() {
    if (state_ != State::connected || writing_) return;
    auto wire = std::make_shared<std::vector<std::string>>();
    // What write_now could not write at once, or the TLS handshake's last
    // flight: before anything newer.
    if (!unsent_.empty()) wire->push_back(std::exchange(unsent_, std::string()));
    std::vector<std::string> plain;
    if (!hello_sent_) {
        plain.push_back(
            encode_hello(Hello{t_->cluster_id_, t_->options_.self, t_->hello_address_}));
        hello_sent_ = true;
    }
    const std::size_t queued = take_queued(plain);
    const bool final_chunk = take_snapshot_chunk(plain);
    const std::uint64_t final_id = final_chunk ? snapshot_->id : 0;
    if (!to_wire(plain, *wire)) return;
    if (wire->empty()) return;

    std::vector<asio::const_buffer> buffers;
    buffers.reserve(wire->size());
    for (const auto& w : *wire) buffers.push_back(asio::buffer(w));
    writing_ = true;
    const std::uint64_t generation = generation_;
    asio::async_write(socket_, buffers,
                      [self = shared_from_this(), generation, wire, queued, final_id](
                          boost::system::error_code ec, std::size_t) {
                          std::lock_guard lock(self->t_->send_mu_);
                          if (generation != self->generation_) return;
                          self->writing_ = false;
                          if (ec) return self->fail("write failed: " + ec.message());
                          self->backoff_ = std::chrono::milliseconds(0);  // the connection works
                          self->last_write_ = std::chrono::steady_clock::now();
                          ++self->t_->stats_.writes;
                          self->t_->stats_.buffers_sent += queued;
                          if (final_id != 0 && self->snapshot_ && self->snapshot_->id == final_id) {
                              self->t_->post_snapshot_done(std::move(self->snapshot_->snapshot),
                                                           true);
                              self->snapshot_.reset();
                          }
                          self->write_next();
                      });
}

std::size_t OutboundPeer::take_queued(std::vector<std::string>& frames) {
    std::size_t taken = 0;
    std::size_t bytes = 0;
    while (!queue_.empty() &&
           (taken == 0 || bytes + queue_.front().size() <= t_->options_.write_bytes_max)) {
        bytes += queue_.front().size();
        frames.push_back(std::move(queue_.front()));
        queue_.pop_front();
        ++taken;
    }
    return taken;
}

// Adds the next chunk of the snapshot stream, if any.  Returns true when it
// is the final chunk.
bool OutboundPeer::take_snapshot_chunk(std::vector<std::string>& frames) {
    if (!snapshot_ || snapshot_->final_chunk_in_flight) return false;
    Result<keel::SnapshotChunk> chunk = snapshot_->snapshot->next_chunk();
    if (!chunk.ok()) {
        abort_snapshot(chunk.status().to_string());
        return false;
    }
    frames.push_back(std::move(chunk->bytes));
    snapshot_->final_chunk_in_flight = chunk->last;
    return chunk->last;
}

void OutboundPeer::fail(const std::string& reason, LogLevel level) {
    if (state_ == State::closed) return;
    t_->log(level, "peer " + std::to_string(id_) + " (" + address_ + "): " + reason);
    tear_down_connection();
    t_->stats_.buffers_dropped += queue_.size();
    queue_.clear();
    if (snapshot_) abort_snapshot("connection failed");
    t_->post_unreachable(id_);

    state_ = State::backing_off;
    backoff_timer_.expires_after(next_backoff());
    backoff_timer_.async_wait(
        [self = shared_from_this(), generation = generation_](boost::system::error_code ec) {
            std::lock_guard lock(self->t_->send_mu_);
            if (ec || generation != self->generation_ || self->state_ != State::backing_off) return;
            self->state_ = State::idle;
            // Lazy: reconnect only when there is something to send.
            if (!self->queue_.empty() || self->snapshot_) self->connect();
        });
}

void OutboundPeer::tear_down_connection() {
    ++generation_;
    writing_ = false;
    hello_sent_ = false;
    unsent_.clear();  // a frame's tail means nothing on the next connection
    tls_.reset();
    boost::system::error_code ignored;
    resolver_.cancel();
    socket_.close(ignored);
}

void OutboundPeer::abort_snapshot(const std::string& reason) {
    KEEL_ASSERT(snapshot_.has_value(), "no snapshot to abort");
    t_->log(LogLevel::info, "snapshot to node " + std::to_string(id_) + " aborted: " + reason);
    t_->post_snapshot_done(std::move(snapshot_->snapshot), false);
    snapshot_.reset();
}

// Doubles from backoff_initial up to backoff_max; the actual delay is drawn
// uniformly from [backoff/2, backoff] so that peers do not reconnect in step.
std::chrono::milliseconds OutboundPeer::next_backoff() {
    const TcpTransportOptions& o = t_->options_;
    backoff_ = backoff_.count() == 0 ? o.backoff_initial : std::min(backoff_ * 2, o.backoff_max);
    std::uniform_int_distribution<std::int64_t> jitter(backoff_.count() / 2, backoff_.count());
    return std::chrono::milliseconds(jitter(t_->rng_));
}

}  // namespace keel::transport
