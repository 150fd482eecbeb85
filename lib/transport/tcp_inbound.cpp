// transport/tcp_inbound.cpp — one accepted connection: read a length prefix,
// check it against the limit, read exactly that many bytes, decode, deliver;
// close with a logged reason on anything malformed.
#include <boost/asio/read.hpp>
#include <utility>
#include <vector>

#include "transport/tcp_internal.hpp"

namespace keel::transport {
namespace {

// A body buffer grown for a large frame is released afterwards, so an idle
// connection does not pin up to frame_bytes_max of memory.
constexpr std::size_t kBodyBufferKeepBytes = 1024 * 1024;

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
    read_length();
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

void InboundConnection::read_length() {
    asio::async_read(
        socket_, asio::buffer(prefix_),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t got) {
            if (self->closed_ || !self->t_->running()) return;
            if (ec == asio::error::eof && got == 0) return self->close("closed by peer", false);
            if (ec == asio::error::eof)
                return self->close("truncated frame length prefix: connection closed after " +
                                       std::to_string(got) + " of 4 bytes",
                                   true);
            if (ec) return self->close("read failed: " + ec.message(), false);
            // Until the peer has said who it is, only a hello fits.
            const bool known = self->peer_ != raft::kNoNode;
            std::size_t limit =
                known ? self->t_->options_.limits.frame_bytes_max : kHelloFrameBytes;
            Result<std::uint32_t> length = decode_frame_length(
                std::string_view(self->prefix_.data(), self->prefix_.size()), limit);
            if (!length.ok())
                return self->close(length.status().to_string() + (known ? "" : " (before hello)"),
                                   true);
            self->read_body(*length);
        });
}

void InboundConnection::read_body(std::uint32_t body_bytes) {
    if (body_.capacity() > kBodyBufferKeepBytes) std::string().swap(body_);
    body_.clear();
    // The dynamic buffer grows as bytes arrive (capped at body_bytes), so a
    // peer announcing a large frame and sending little costs little memory.
    asio::async_read(
        socket_, asio::dynamic_buffer(body_, body_bytes), asio::transfer_exactly(body_bytes),
        [self = shared_from_this(), body_bytes](boost::system::error_code ec, std::size_t got) {
            if (self->closed_ || !self->t_->running()) return;
            if (ec == asio::error::eof)
                return self->close("truncated frame: connection closed after " +
                                       std::to_string(got) + " of " + std::to_string(body_bytes) +
                                       " body bytes",
                                   true);
            if (ec) return self->close("read failed: " + ec.message(), false);
            KEEL_ASSERT(self->body_.size() == body_bytes, "transfer_exactly reads the body");
            Result<Frame> frame = decode_frame_body(self->body_, self->t_->options_.limits);
            if (!frame.ok()) return self->close("bad frame: " + frame.status().to_string(), true);
            if (Status s = self->dispatch(std::move(*frame)); !s.ok())
                return self->close(s.to_string(), true);
            // A callback may have stopped the transport.
            if (!self->closed_ && self->t_->running()) self->read_length();
        });
}

Status InboundConnection::dispatch(Frame&& frame) {
    if (const auto* hello = std::get_if<Hello>(&frame)) return on_hello(*hello);
    if (peer_ == raft::kNoNode)
        return Status(ErrorCode::corruption, "the first frame must be a hello");

    if (auto* batch = std::get_if<MessageBatch>(&frame)) {
        // Check the whole batch before delivering any of it.
        for (const auto& m : batch->messages) {
            if (Status s = check_message(m); !s.ok()) return s;
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
        if (Status s = check_message(*chunk.message); !s.ok()) return s;
        if (chunk.message->type != raft::MessageType::snapshot || !chunk.message->snapshot)
            return Status(ErrorCode::corruption,
                          "the final snapshot chunk must carry a snapshot message");
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
