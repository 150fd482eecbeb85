// transport/tcp_outbound.cpp — what one peer's outbound connection sends:
// the bounded send queue, coalesced writes, snapshot streaming, and the
// write from another thread when the connection is idle (write_now).
// Connecting, the TLS handshake and backoff are tcp_outbound_connect.cpp's.
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
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <utility>

#include <fmt/format.h>
#include "transport/frame_joiner.hpp"
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

bool OutboundPeer::enqueue(GroupId group, std::string&& bytes) {
    if (state_ == State::closed || queue_.size() >= t_->options_.peer_queue_buffers_max)
        return false;
    groups_.insert(group);
    queue_.push_back(std::move(bytes));
    return true;
}

void OutboundPeer::start_snapshot(GroupId group, std::shared_ptr<OutgoingSnapshot> snapshot,
                                  std::uint64_t snapshot_id) {
    if (state_ == State::closed) {
        t_->post_snapshot_done(std::move(snapshot), false);
        return;
    }
    if (snapshot_) abort_snapshot("replaced by a newer snapshot");
    groups_.insert(group);
    snapshot_.emplace(Outgoing{group, snapshot_id, std::move(snapshot), false});
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

void OutboundPeer::write_now(GroupId group, std::string plain) {
    KEEL_ASSERT(idle(), "write_now only on an idle connection");
    groups_.insert(group);
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
    std::vector<std::string> taken;
    std::size_t bytes = 0;
    while (!queue_.empty() &&
           (taken.empty() || bytes + queue_.front().size() <= t_->options_.write_bytes_max)) {
        bytes += queue_.front().size();
        taken.push_back(std::move(queue_.front()));
        queue_.pop_front();
    }
    // Runs of messages frames of one group become one frame each.
    MessageFrameJoiner joiner(t_->options_.joined_messages_max,
                              t_->options_.joined_frame_bytes_max);
    std::size_t i = 0;
    while (i < taken.size()) {
        std::size_t j = i;
        while (j < taken.size() && joiner.add(taken[j])) ++j;
        if (j - i >= 2) {
            frames.push_back(joiner.take());
            t_->stats_.buffers_joined += j - i - 1;
            i = j;
        } else {
            joiner.reset();
            frames.push_back(std::move(taken[i]));
            ++i;
        }
    }
    return taken.size();
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

void OutboundPeer::abort_snapshot(const std::string& reason) {
    KEEL_ASSERT(snapshot_.has_value(), "no snapshot to abort");
    t_->log(LogLevel::info, fmt::format("snapshot to node {} aborted: {}", id_, reason));
    t_->post_snapshot_done(std::move(snapshot_->snapshot), false);
    snapshot_.reset();
}

}  // namespace keel::transport
