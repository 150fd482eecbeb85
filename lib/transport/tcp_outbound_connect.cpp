// transport/tcp_outbound_connect.cpp — one peer's outbound connection
// from dial to teardown: resolve and connect within connect_timeout, the
// TLS client handshake, noticing the peer's close, closing when idle, and
// the jittered exponential backoff after a failure.  The queue and the
// writes are tcp_outbound.cpp's.
//
// Every handler here takes the transport's send lock first (Impl::send_mu_);
// the methods they reach assume it is held.
#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <random>
#include <utility>

#include <fmt/format.h>
#include "transport/tcp_internal.hpp"

namespace keel::transport {

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
            self->fail(fmt::format(
                "{}{} timed out after {} ms",
                self->state_ == State::handshaking ? "TLS handshake with " : "connect to ",
                self->address_, self->t_->options_.connect_timeout.count()));
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
            if (rec)
                return self->fail(
                    fmt::format("cannot resolve {}: {}", self->address_, rec.message()));
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
                return self->fail(
                    fmt::format("cannot connect to {}: {}", self->address_, ec.message()));
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
    t_->log(LogLevel::debug, tls_ ? fmt::format("connected to node {} at {} (TLS: {})", id_,
                                                address_, tls_->peer_subject())
                                  : fmt::format("connected to node {} at {}", id_, address_));
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
                          fmt::format("closing the idle connection to node {}", self->id_));
            self->tear_down_connection();
            self->state_ = State::idle;
        });
}

void OutboundPeer::fail(const std::string& reason, LogLevel level) {
    if (state_ == State::closed) return;
    t_->log(level, fmt::format("peer {} ({}): {}", id_, address_, reason));
    tear_down_connection();
    t_->stats_.buffers_dropped += queue_.size();
    queue_.clear();
    if (snapshot_) abort_snapshot("connection failed");
    for (GroupId group : groups_) t_->post_unreachable(group, id_);
    groups_.clear();

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

// Doubles from backoff_initial up to backoff_max; the actual delay is drawn
// uniformly from [backoff/2, backoff] so that peers do not reconnect in step.
std::chrono::milliseconds OutboundPeer::next_backoff() {
    const TcpTransportOptions& o = t_->options_;
    backoff_ = backoff_.count() == 0 ? o.backoff_initial : std::min(backoff_ * 2, o.backoff_max);
    std::uniform_int_distribution<std::int64_t> jitter(backoff_.count() / 2, backoff_.count());
    return std::chrono::milliseconds(jitter(t_->rng_));
}

}  // namespace keel::transport
