// transport/tcp_inbound.cpp — one accepted connection: the TLS handshake and
// the hello (decided by HelloGate), then read what the socket has (decrypted
// under TLS), and for each whole frame in it check the length prefix against
// the limit and hand the frame to the sink (which decodes it); close with a
// logged reason on a frame of the wrong kind or one the sink refuses.
#include <algorithm>
#include <boost/asio/write.hpp>
#include <cstring>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include "transport/tcp_internal.hpp"

namespace keel::transport {
namespace {

using Clock = std::chrono::steady_clock;

// The receive buffer starts small (a stranger's idle connection costs
// little), grows to this size the first time a frame does not fit, and
// shrinks back to it after a frame over kReadBufferKeepBytes.
constexpr std::size_t kReadBufferFirstBytes = 4096;
constexpr std::size_t kReadBufferBytes = 64 * 1024;
// A buffer grown for a large frame is released afterwards, so an idle
// connection does not pin up to frame_bytes_max of memory.
constexpr std::size_t kReadBufferKeepBytes = 1024 * 1024;
// Below this much free space, unread bytes move to the front before a read.
constexpr std::size_t kReadMinBytes = 4096;
// TLS: ciphertext taken from the socket per read, before the hello (a
// stranger's costs little) and after it.  The session holds at most this
// much (plus one partial record) before it is decrypted.
constexpr std::size_t kCipherFirstBytes = 4096;
constexpr std::size_t kCipherReadBytes = 64 * 1024;

}  // namespace

InboundConnection::InboundConnection(std::shared_ptr<TcpTransport::Impl> transport,
                                     tcp::socket socket, std::string remote_address)
    : t_(std::move(transport)),
      socket_(std::move(socket)),
      timer_(t_->io_),
      remote_address_(std::move(remote_address)),
      gate_(t_->options_.self, t_->options_.tls != nullptr) {}

void InboundConnection::start() {
    boost::system::error_code ec;
    tcp::endpoint remote = socket_.remote_endpoint(ec);
    remote_ =
        ec ? std::string("?") : fmt::format("{}:{}", remote.address().to_string(), remote.port());
    last_read_ = Clock::now();
    arm_timer(t_->options_.hello_timeout);
    if (t_->options_.tls) {
        tls_ = std::make_unique<TlsSession>(t_->options_.tls, TlsSession::Role::server);
        cipher_.resize(kCipherFirstBytes);
    }
    in_.resize(kReadBufferFirstBytes);
    read_more();
}

void InboundConnection::close(const std::string& reason) {
    if (closed_) return;
    closed_ = true;
    t_->log(LogLevel::debug,
            fmt::format("closing connection from {}{}: {}", remote_, node_note(), reason));
    boost::system::error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
    if (pending_) {
        pending_ = false;
        t_->remove_pending(remote_address_);
    }
    // A snapshot this peer was streaming on this connection will not complete.
    if (peer_ != raft::kNoNode && t_->running())
        for (GroupId group : snapshot_groups_) t_->sink_->on_disconnected(group, peer_);
    t_->forget_inbound(shared_from_this());
}

std::string InboundConnection::node_note() const {
    return peer_ != raft::kNoNode ? fmt::format(" (node {})", peer_) : std::string();
}

void InboundConnection::refuse(Rejection reason, const std::string& detail) {
    if (closed_) return;
    t_->reject(reason, fmt::format("connection from {}{}: {}", remote_, node_note(), detail));
    close(fmt::format("refused ({})", rejection_name(reason)));
}

void InboundConnection::act(const HelloGate::Decision& decision) {
    if (decision.action == HelloGate::Action::refuse) refuse(decision.reason, decision.detail);
    if (decision.action == HelloGate::Action::close) close(decision.detail);
}

void InboundConnection::arm_timer(Clock::duration after) {
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec && !self->closed_ && self->t_->running()) self->on_timer();
    });
}

void InboundConnection::on_timer() {
    if (peer_ == raft::kNoNode) {
        HelloGate::Decision d = gate_.on_deadline();
        d.detail += fmt::format(" (hello_timeout {} ms)", t_->options_.hello_timeout.count());
        return act(d);
    }
    const Clock::duration idle = Clock::now() - last_read_;
    if (idle < t_->options_.idle_timeout) return arm_timer(t_->options_.idle_timeout - idle);
    close(fmt::format("nothing received for {} ms (idle_timeout)",
                      t_->options_.idle_timeout.count()));
}

void InboundConnection::make_room() {
    if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
    if (in_.size() > kReadBufferKeepBytes && in_end_ - in_begin_ <= kReadBufferBytes &&
        frame_bytes_ <= kReadBufferBytes) {
        std::vector<char> smaller(kReadBufferBytes);
        std::copy(in_.begin() + in_begin_, in_.begin() + in_end_, smaller.begin());
        in_end_ -= in_begin_;
        in_begin_ = 0;
        in_.swap(smaller);
    }
    if (in_begin_ > 0 &&
        (in_.size() - in_end_ < kReadMinBytes || in_.size() - in_begin_ < frame_bytes_)) {
        std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
        in_end_ -= in_begin_;
        in_begin_ = 0;
    }
    if (in_end_ == in_.size()) {
        // Full with part of one frame (deliver_frames took the whole ones):
        // double, to at least kReadBufferBytes, never past a larger frame's
        // size (memory stays within twice what the peer has sent).
        std::size_t grown = std::max(kReadBufferBytes, in_.size() * 2);
        if (grown > frame_bytes_) grown = std::max(frame_bytes_, kReadBufferBytes);
        KEEL_ASSERT(grown > in_.size(), "a full buffer holds part of a frame larger than it");
        in_.resize(grown);
    }
}

void InboundConnection::read_more() {
    if (tls_) {
        socket_.async_read_some(
            asio::buffer(cipher_),
            [self = shared_from_this()](boost::system::error_code ec, std::size_t got) {
                self->on_ciphertext(ec, got);
            });
        return;
    }
    make_room();
    socket_.async_read_some(
        asio::buffer(in_.data() + in_end_, in_.size() - in_end_),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t got) {
            self->on_read(ec, got);
        });
}

void InboundConnection::on_read(boost::system::error_code ec, std::size_t got) {
    if (closed_ || !t_->running()) return;
    last_read_ = Clock::now();
    bytes_received_ += got;
    in_end_ += got;
    if (!deliver_frames()) return;
    if (ec) return on_read_end(ec);
    read_more();
}

void InboundConnection::on_ciphertext(boost::system::error_code ec, std::size_t got) {
    if (closed_ || !t_->running()) return;
    last_read_ = Clock::now();
    bytes_received_ += got;
    tls_->put_received(std::string_view(cipher_.data(), got));
    if (gate_.state() == HelloGate::State::tls_handshake) {
        if (ec) return act(gate_.on_closed(bytes_received_));
        return continue_handshake();
    }
    if (!decrypt_received()) return;
    if (ec) return on_read_end(ec);
    read_more();
}

void InboundConnection::on_read_end(boost::system::error_code ec) {
    const std::size_t have = in_end_ - in_begin_;
    if (ec != asio::error::eof) return close("read failed: " + ec.message());
    if (peer_ == raft::kNoNode) return act(gate_.on_closed(have));
    if (have == 0) return close("closed by peer");
    if (have < kFrameLengthBytes)
        return refuse(
            Rejection::malformed,
            fmt::format("truncated frame length prefix: connection closed after {} of 4 bytes",
                        have));
    refuse(Rejection::malformed,
           fmt::format("truncated frame: connection closed after {} of {} body bytes",
                       have - kFrameLengthBytes, frame_bytes_ - kFrameLengthBytes));
}

void InboundConnection::continue_handshake() {
    Result<TlsSession::Handshake> step = tls_->handshake();
    handshake_out_.clear();
    tls_->take_output(handshake_out_);
    if (!step.ok()) {
        // Tell the client why (its alert) if the socket takes it at once.
        boost::system::error_code ignored;
        socket_.non_blocking(true, ignored);
        socket_.write_some(asio::buffer(handshake_out_), ignored);
        return act(gate_.on_tls_handshake(step.status()));
    }
    const bool done = *step == TlsSession::Handshake::done;
    auto next = [self = shared_from_this(), done] {
        if (!done) return self->read_more();
        self->act(self->gate_.on_tls_handshake(Status()));
        self->t_->log(LogLevel::debug,
                      fmt::format("TLS from {}: {}", self->remote_, self->tls_->peer_subject()));
        // The client may have sent its hello right behind its last flight.
        if (self->decrypt_received()) self->read_more();
    };
    if (handshake_out_.empty()) return next();
    asio::async_write(socket_, asio::buffer(handshake_out_),
                      [self = shared_from_this(), next](boost::system::error_code ec, std::size_t) {
                          if (self->closed_ || !self->t_->running()) return;
                          if (ec) return self->act(self->gate_.on_closed(self->bytes_received_));
                          next();
                      });
}

bool InboundConnection::decrypt_received() {
    for (;;) {
        make_room();
        Result<std::size_t> got = tls_->decrypt(in_.data() + in_end_, in_.size() - in_end_);
        if (!got.ok()) {
            // A close_notify ends the stream as a FIN does.
            if (got.status().code() == ErrorCode::aborted) {
                on_read_end(asio::error::eof);
            } else {
                refuse(Rejection::malformed, got.status().message());
            }
            return false;
        }
        if (*got == 0) return true;
        in_end_ += *got;
        if (!deliver_frames()) return false;
    }
}

bool InboundConnection::pass_gate() {
    HelloGate::Decision d = gate_.on_bytes(
        std::string_view(in_.data() + in_begin_, in_end_ - in_begin_), t_->cluster_id_);
    if (d.action == HelloGate::Action::adopt)
        d = gate_.on_adopted(t_->adopt_cluster_id(gate_.hello()));
    if (d.action == HelloGate::Action::identified) {
        on_identified(d.consumed);
        return !closed_ && t_->running();
    }
    act(d);
    return !closed_;
}

void InboundConnection::on_identified(std::size_t hello_bytes) {
    in_begin_ += hello_bytes;
    peer_ = gate_.hello().from;
    if (tls_) cipher_.resize(kCipherReadBytes);
    pending_ = false;
    t_->remove_pending(remote_address_);
    arm_timer(t_->options_.idle_timeout);
    // A peer dials one connection to us at a time; an older one still open
    // is half-dead (the peer restarted or lost it), so it goes.
    std::vector<std::shared_ptr<InboundConnection>> older;
    for (const auto& c : t_->inbound_)
        if (c.get() != this && c->peer() == peer_) older.push_back(c);
    for (const auto& c : older) c->close("replaced by a newer connection from the same node");
    t_->log(LogLevel::debug, fmt::format("connection from {} is node {} listening at {}", remote_,
                                         peer_, gate_.hello().address));
    if (t_->hooks_.on_hello) t_->hooks_.on_hello(peer_, gate_.hello().address);
}

bool InboundConnection::deliver_frames() {
    if (peer_ == raft::kNoNode) {
        if (!pass_gate()) return false;
        if (peer_ == raft::kNoNode) return true;  // the rest of the hello is on its way
    }
    for (;;) {
        const std::size_t have = in_end_ - in_begin_;
        frame_bytes_ = kFrameLengthBytes;
        if (have < kFrameLengthBytes) return true;
        Result<std::uint32_t> length =
            decode_frame_length(std::string_view(in_.data() + in_begin_, kFrameLengthBytes),
                                t_->options_.frame_bytes_max);
        if (!length.ok()) {
            refuse(Rejection::malformed, length.status().to_string());
            return false;
        }
        frame_bytes_ = kFrameLengthBytes + *length;
        if (have < frame_bytes_) return true;
        const std::string_view frame(in_.data() + in_begin_, frame_bytes_);
        in_begin_ += frame_bytes_;
        if (!dispatch(frame)) return false;
        // A callback may have stopped the transport.
        if (closed_ || !t_->running()) return false;
    }
}

bool InboundConnection::dispatch(std::string_view frame) {
    // The body starts with the version and the kind (decode_frame_length
    // refused anything shorter), then, for the frames a sink takes, the
    // group; the sink decodes and checks the rest.
    const auto kind = static_cast<std::uint8_t>(frame[kFrameLengthBytes + 1]);
    if (kind == static_cast<std::uint8_t>(FrameKind::hello)) {
        refuse(Rejection::malformed, "a second hello on one connection");
        return false;
    }
    Result<FrameRoute> route = frame_route(frame);
    if (!route.ok()) {
        refuse(Rejection::malformed, route.status().to_string());
        return false;
    }
    t_->inbound_counters_.frames_received.fetch_add(1, std::memory_order_relaxed);
    Status s;
    if (route->kind == FrameKind::messages) {
        s = t_->sink_->on_messages(route->group, peer_, frame);
    } else {
        s = t_->sink_->on_snapshot_chunk(route->group, peer_, frame);
        if (s.ok()) snapshot_groups_.insert(route->group);
    }
    if (!s.ok()) {
        // Refused and counted by the sink: the connection goes.
        t_->inbound_counters_.rejected.fetch_add(1, std::memory_order_relaxed);
        close("refused: " + s.message());
        return false;
    }
    return true;
}

}  // namespace keel::transport
