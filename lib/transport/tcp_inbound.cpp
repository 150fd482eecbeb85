// transport/tcp_inbound.cpp — one accepted connection: read what the socket
// has, and for each whole frame in it check the length prefix against the
// limit, decode, deliver; close with a logged reason on anything malformed.
#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "transport/tcp_internal.hpp"

namespace keel::transport {
namespace {

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

}  // namespace

InboundConnection::InboundConnection(std::shared_ptr<TcpTransport::Impl> transport,
                                     tcp::socket socket)
    : t_(std::move(transport)), socket_(std::move(socket)), hello_timer_(t_->io_) {}

void InboundConnection::start() {
    boost::system::error_code ec;
    tcp::endpoint remote = socket_.remote_endpoint(ec);
    remote_ =
        ec ? std::string("?") : remote.address().to_string() + ":" + std::to_string(remote.port());
    hello_timer_.expires_after(t_->options_.hello_timeout);
    hello_timer_.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
        if (wait_ec || self->closed_ || self->peer_ != raft::kNoNode) return;
        self->close(
            "no hello within " + std::to_string(self->t_->options_.hello_timeout.count()) + " ms",
            true);
    });
    in_.resize(kReadBufferFirstBytes);
    read_more();
}

void InboundConnection::close(const std::string& reason, bool bad_input) {
    if (closed_) return;
    closed_ = true;
    if (bad_input) ++t_->stats_.inbound_rejected;
    t_->log(bad_input ? LogLevel::warning : LogLevel::debug,
            "closing connection from " + remote_ +
                (peer_ != raft::kNoNode ? " (node " + std::to_string(peer_) + ")" : "") + ": " +
                reason);
    boost::system::error_code ignored;
    socket_.close(ignored);
    hello_timer_.cancel();
    t_->abort_staging_of(this);
    t_->forget_inbound(shared_from_this());
}

void InboundConnection::read_more() {
    if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
    if (in_.size() > kReadBufferKeepBytes && in_end_ - in_begin_ <= kReadBufferBytes &&
        frame_bytes_ <= kReadBufferBytes) {
        std::vector<char> smaller(kReadBufferBytes);
        std::copy(in_.begin() + in_begin_, in_.begin() + in_end_, smaller.begin());
        in_end_ -= in_begin_;
        in_begin_ = 0;
        in_.swap(smaller);
    }
    if (in_begin_ > 0 && (in_.size() - in_end_ < kReadMinBytes ||
                          in_.size() - in_begin_ < frame_bytes_)) {
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
    socket_.async_read_some(
        asio::buffer(in_.data() + in_end_, in_.size() - in_end_),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t got) {
            self->on_read(ec, got);
        });
}

void InboundConnection::on_read(boost::system::error_code ec, std::size_t got) {
    if (closed_ || !t_->running()) return;
    in_end_ += got;
    if (!deliver_frames()) return;
    if (ec) {
        const std::size_t have = in_end_ - in_begin_;
        if (ec != asio::error::eof) return close("read failed: " + ec.message(), false);
        if (have == 0) return close("closed by peer", false);
        if (have < kFrameLengthBytes)
            return close("truncated frame length prefix: connection closed after " +
                             std::to_string(have) + " of 4 bytes",
                         true);
        return close("truncated frame: connection closed after " +
                         std::to_string(have - kFrameLengthBytes) + " of " +
                         std::to_string(frame_bytes_ - kFrameLengthBytes) +
                         " body bytes",
                     true);
    }
    read_more();
}

bool InboundConnection::deliver_frames() {
    for (;;) {
        const std::size_t have = in_end_ - in_begin_;
        frame_bytes_ = kFrameLengthBytes;
        if (have < kFrameLengthBytes) return true;
        // Until the peer has said who it is, only a hello fits.
        const bool known = peer_ != raft::kNoNode;
        const std::size_t limit = known ? t_->options_.limits.frame_bytes_max : kHelloFrameBytes;
        Result<std::uint32_t> length =
            decode_frame_length(std::string_view(in_.data() + in_begin_, kFrameLengthBytes), limit);
        if (!length.ok()) {
            t_->reject(kRejectedMalformed, length.status().to_string());
            close(length.status().to_string() + (known ? "" : " (before hello)"), true);
            return false;
        }
        frame_bytes_ = kFrameLengthBytes + *length;
        if (have < frame_bytes_) return true;
        const std::string_view body(in_.data() + in_begin_ + kFrameLengthBytes, *length);
        in_begin_ += kFrameLengthBytes + *length;
        Result<Frame> frame = decode_frame_body(body, t_->options_.limits);
        if (!frame.ok()) {
            t_->reject(kRejectedMalformed, frame.status().to_string());
            close("bad frame: " + frame.status().to_string(), true);
            return false;
        }
        std::string_view refused = kRejectedMalformed;
        if (Status s = dispatch(std::move(*frame), refused); !s.ok()) {
            t_->reject(refused, s.to_string());
            close(s.to_string(), true);
            return false;
        }
        // A callback may have stopped the transport.
        if (closed_ || !t_->running()) return false;
    }
}

Status InboundConnection::dispatch(Frame&& frame, std::string_view& refused) {
    if (const auto* hello = std::get_if<Hello>(&frame)) return on_hello(*hello);
    if (peer_ == raft::kNoNode)
        return Status(ErrorCode::corruption, "the first frame must be a hello");

    if (auto* batch = std::get_if<MessageBatch>(&frame)) {
        // Check the whole batch before delivering any of it.
        for (const auto& m : batch->messages) {
            if (Status s = check_message(m); !s.ok()) {
                refused = kRejectedMisaddressed;
                return s;
            }
            // Its data travels in snapshot chunks, this message with the last.
            if (m.type == raft::MessageType::snapshot) {
                refused = kRejectedWrongFrameKind;
                return Status(ErrorCode::corruption, "a snapshot message in a frame of messages");
            }
        }
        for (auto& m : batch->messages) {
            if (closed_ || !t_->running()) break;
            ++t_->stats_.messages_received;
            if (t_->handler_.on_message) t_->handler_.on_message(std::move(m));
        }
        return Status();
    }

    auto& chunk = std::get<SnapshotChunk>(frame);
    if (chunk.message) {
        if (Status s = check_message(*chunk.message); !s.ok()) {
            refused = kRejectedMisaddressed;
            return s;
        }
        if (chunk.message->type != raft::MessageType::snapshot || !chunk.message->snapshot) {
            refused = kRejectedWrongFrameKind;
            return Status(ErrorCode::corruption,
                          "the final snapshot chunk must carry a snapshot message");
        }
    }
    return t_->on_chunk(this, peer_, std::move(chunk));
}

Status InboundConnection::on_hello(const Hello& hello) {
    if (peer_ != raft::kNoNode)
        return Status(ErrorCode::corruption, "a second hello on one connection");
    if (hello.cluster_id != t_->options_.cluster_id)
        return Status(ErrorCode::invalid_argument,
                      "hello from node " + std::to_string(hello.from) + " of cluster " +
                          std::to_string(hello.cluster_id) + ", this is cluster " +
                          std::to_string(t_->options_.cluster_id));
    if (hello.from == t_->options_.self)
        return Status(ErrorCode::invalid_argument, "hello from a node with our own id");
    peer_ = hello.from;
    hello_timer_.cancel();
    // A peer dials one connection to us at a time; an older one still open
    // is half-dead (the peer restarted or lost it), so it goes.
    std::vector<std::shared_ptr<InboundConnection>> older;
    for (const auto& c : t_->inbound_)
        if (c.get() != this && c->peer() == peer_) older.push_back(c);
    for (const auto& c : older)
        c->close("replaced by a newer connection from the same node", false);
    t_->log(LogLevel::debug, "connection from " + remote_ + " is node " + std::to_string(peer_));
    return Status();
}

// A message must come from the node that said hello, and be meant for us:
// anything else means a misconfigured address book, which Raft must not see.
Status InboundConnection::check_message(const raft::Message& m) const {
    if (m.from != peer_)
        return Status(ErrorCode::invalid_argument, "message from node " + std::to_string(m.from) +
                                                       " on the connection of node " +
                                                       std::to_string(peer_));
    if (m.to != t_->options_.self)
        return Status(ErrorCode::invalid_argument, "message for node " + std::to_string(m.to) +
                                                       ", this is node " +
                                                       std::to_string(t_->options_.self));
    return Status();
}

}  // namespace keel::transport
