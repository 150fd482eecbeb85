// transport/tcp_transport.cpp — the public TcpTransport, listening and
// accepting, and the receiving side of snapshot streams.
#include "transport/tcp_transport.hpp"

#include <boost/asio/post.hpp>
#include <utility>

#include "transport/tcp_internal.hpp"

namespace keel::transport {

Status split_host_port(std::string_view address, std::string& host, std::string& port) {
    std::size_t colon = address.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size())
        return Status(ErrorCode::invalid_argument,
                      "address '" + std::string(address) + "' is not host:port");
    std::string_view h = address.substr(0, colon);
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    host = std::string(h);
    port = std::string(address.substr(colon + 1));
    unsigned long value = 0;
    for (char c : port) {
        value = value * 10 + static_cast<unsigned long>(c - '0');
        if (c < '0' || c > '9' || value > 65535 || port.size() > 5)
            return Status(ErrorCode::invalid_argument,
                          "address '" + std::string(address) + "' has a bad port");
    }
    return Status();
}

// ---- Impl ----

TcpTransport::Impl::Impl(asio::io_context& io, TcpTransportOptions options,
                         TransportHandler handler)
    : io_(io),
      options_(std::move(options)),
      handler_(std::move(handler)),
      acceptor_(io),
      accept_retry_timer_(io),
      cluster_id_(options_.cluster_id),
      rng_(options_.jitter_seed) {
    KEEL_ASSERT(options_.self != raft::kNoNode, "a transport needs its own node id");
    KEEL_ASSERT(options_.snapshot_chunk_bytes > 0 &&
                    options_.snapshot_chunk_bytes <= options_.limits.chunk_bytes_max,
                "snapshot chunks must fit the codec's chunk limit");
    KEEL_ASSERT(options_.batch_bytes_max + 64 <= options_.limits.frame_bytes_max,
                "a full batch must fit in one frame");
    KEEL_ASSERT(options_.peer_queue_messages_max > 0, "peer queues need room");
    KEEL_ASSERT(
        options_.backoff_initial.count() > 0 && options_.backoff_initial <= options_.backoff_max,
        "backoff must start positive and below its cap");
    KEEL_ASSERT(
        options_.inbound_connections_max > 0 && options_.inbound_pending_per_address_max > 0,
        "inbound limits need room");
    KEEL_ASSERT(options_.hello_timeout.count() > 0 && options_.idle_timeout.count() > 0 &&
                    options_.outbound_idle_close.count() > 0,
                "timeouts must be positive");
}

void TcpTransport::Impl::log(LogLevel level, const std::string& message) const {
    if (handler_.log) handler_.log(level, "node " + std::to_string(options_.self) + ": " + message);
}

void TcpTransport::Impl::reject(Rejection reason, const std::string& detail) {
    ++stats_.inbound_rejected;
    if (handler_.on_rejected) {
        handler_.on_rejected(reason, detail);
    } else {
        log(LogLevel::warning, std::string("refused (") + rejection_name(reason) + "): " + detail);
    }
}

Status TcpTransport::Impl::adopt_cluster_id(const Hello& hello) {
    if (!handler_.on_cluster_id)
        return Status(ErrorCode::unsupported, "this node has no cluster id and cannot adopt one");
    if (Status s = handler_.on_cluster_id(hello.cluster_id, hello.from); !s.ok()) return s;
    std::lock_guard lock(send_mu_);
    cluster_id_ = hello.cluster_id;
    log(LogLevel::info, "joined cluster " + cluster_id_.hex() + " (hello from node " +
                            std::to_string(hello.from) + ")");
    // Messages queued while we could not say hello go now.
    for (auto& [id, peer] : peers_) peer->kick();
    return Status();
}

void TcpTransport::Impl::post_unreachable(NodeId id) {
    asio::post(io_, [self = shared_from_this(), id] {
        if (self->running() && self->handler_.on_unreachable) self->handler_.on_unreachable(id);
    });
}

void TcpTransport::Impl::post_snapshot_sent(NodeId id, bool ok) {
    asio::post(io_, [self = shared_from_this(), id, ok] {
        if (self->running() && self->handler_.on_snapshot_sent)
            self->handler_.on_snapshot_sent(id, ok);
    });
}

Status TcpTransport::Impl::start() {
    if (started_) return Status(ErrorCode::invalid_argument, "transport started twice");
    if (!options_.staging_dir.empty()) remove_partial_snapshots(options_.staging_dir);
    if (!options_.listen_address.empty()) {
        std::string host, port;
        Status s = split_host_port(options_.listen_address, host, port);
        if (!s.ok()) return s;
        boost::system::error_code ec;
        tcp::resolver resolver(io_);
        auto endpoints = resolver.resolve(host, port, tcp::resolver::passive, ec);
        if (ec || endpoints.empty())
            return Status(
                ErrorCode::invalid_argument,
                "cannot resolve listen address " + options_.listen_address + ": " + ec.message());
        tcp::endpoint endpoint = *endpoints.begin();
        acceptor_.open(endpoint.protocol(), ec);
        if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec) acceptor_.bind(endpoint, ec);
        if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            boost::system::error_code ignored;
            acceptor_.close(ignored);
            return Status(ErrorCode::io_error,
                          "cannot listen on " + options_.listen_address + ": " + ec.message());
        }
        bound_port_ = acceptor_.local_endpoint(ec).port();
        const bool v6 = host.find(':') != std::string::npos;
        hello_address_ = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(bound_port_);
    }
    if (!options_.advertised_address.empty()) hello_address_ = options_.advertised_address;
    if (!valid_hello_address(hello_address_))
        return Status(ErrorCode::invalid_argument,
                      "advertised address over " + std::to_string(kHelloAddressBytesMax) +
                          " bytes or not printable: " + hello_address_);
    started_ = true;
    if (acceptor_.is_open()) accept_next();
    return Status();
}

void TcpTransport::Impl::stop() {
    std::lock_guard lock(send_mu_);
    if (stopped_) return;
    stopped_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_timer_.cancel();
    for (auto& [id, peer] : peers_) peer->close();
    peers_.clear();
    auto inbound = inbound_;  // close() erases from inbound_
    for (const auto& connection : inbound) connection->close("transport stopped");
    inbound_.clear();
    staging_.clear();  // StagingFile deletes partial files
}

void TcpTransport::Impl::accept_next() {
    acceptor_.async_accept(
        [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
            if (!self->running()) return;
            if (ec) {
                // Out of descriptors or similar: retry shortly rather than spin.
                self->log(LogLevel::warning, "accept failed: " + ec.message());
                self->accept_retry_timer_.expires_after(std::chrono::milliseconds(100));
                self->accept_retry_timer_.async_wait([self](boost::system::error_code wait_ec) {
                    if (!wait_ec && self->running()) self->accept_next();
                });
                return;
            }
            self->admit(std::move(socket));
            self->accept_next();
        });
}

void TcpTransport::Impl::admit(tcp::socket socket) {
    boost::system::error_code ec;
    const tcp::endpoint remote = socket.remote_endpoint(ec);
    const std::string address = ec ? std::string("?") : remote.address().to_string();
    const std::string where = ec ? address : address + ":" + std::to_string(remote.port());
    std::string refused;
    if (inbound_.size() >= options_.inbound_connections_max) {
        refused = "already " + std::to_string(inbound_.size()) +
                  " inbound connections (inbound_connections_max)";
    } else if (pending_by_address_[address] >= options_.inbound_pending_per_address_max) {
        refused = "already " + std::to_string(pending_by_address_[address]) + " connections from " +
                  address + " before their hello (inbound_pending_per_address_max)";
    }
    if (pending_by_address_[address] == 0) pending_by_address_.erase(address);
    if (!refused.empty()) {
        reject(Rejection::connection_limit, "connection from " + where + " closed: " + refused);
        boost::system::error_code ignored;
        socket.close(ignored);
        return;
    }
    ++stats_.inbound_accepted;
    add_pending(address);
    auto connection =
        std::make_shared<InboundConnection>(shared_from_this(), std::move(socket), address);
    inbound_.insert(connection);
    connection->start();
}

void TcpTransport::Impl::forget_inbound(const std::shared_ptr<InboundConnection>& connection) {
    inbound_.erase(connection);
}

void TcpTransport::Impl::add_pending(const std::string& address) {
    ++pending_by_address_[address];
}

void TcpTransport::Impl::remove_pending(const std::string& address) {
    auto it = pending_by_address_.find(address);
    KEEL_ASSERT(it != pending_by_address_.end() && it->second > 0, "pending counts balance");
    if (--it->second == 0) pending_by_address_.erase(it);
}

Status TcpTransport::Impl::on_chunk(const InboundConnection* connection, NodeId from,
                                    SnapshotChunk&& chunk) {
    if (options_.staging_dir.empty())
        return Status(ErrorCode::unsupported, "snapshots are not accepted (no staging directory)");
    if (chunk.total_bytes > options_.snapshot_bytes_max)
        return Status(ErrorCode::too_large, "snapshot of " + std::to_string(chunk.total_bytes) +
                                                " bytes exceeds snapshot_bytes_max " +
                                                std::to_string(options_.snapshot_bytes_max));
    auto it = staging_.find(from);
    if (it == staging_.end() || it->second.snapshot_id != chunk.snapshot_id) {
        if (it != staging_.end()) {
            log(LogLevel::info,
                "new snapshot from node " + std::to_string(from) + " aborts its partial one");
            staging_.erase(it);
        }
        if (chunk.offset != 0)
            return Status(ErrorCode::corruption, "snapshot " + std::to_string(chunk.snapshot_id) +
                                                     " starts at offset " +
                                                     std::to_string(chunk.offset) + ", not 0");
        std::string name =
            "snapshot-" + std::to_string(from) + "-" + std::to_string(next_staging_seq_++);
        Result<StagingFile> file = StagingFile::create(options_.staging_dir, name);
        if (!file.ok()) return file.status();
        it = staging_
                 .emplace(from, Staged{connection, chunk.snapshot_id, chunk.total_bytes,
                                       std::move(*file)})
                 .first;
    }
    Staged& staged = it->second;
    if (chunk.offset != staged.file.size_bytes() || chunk.total_bytes != staged.total_bytes) {
        std::string why = "snapshot chunk at offset " + std::to_string(chunk.offset) + " of " +
                          std::to_string(chunk.total_bytes) + ", expected offset " +
                          std::to_string(staged.file.size_bytes()) + " of " +
                          std::to_string(staged.total_bytes);
        staging_.erase(it);
        return Status(ErrorCode::corruption, why);
    }
    staged.owner = connection;
    if (Status s = staged.file.append(chunk.data); !s.ok()) {
        staging_.erase(it);
        return s;
    }
    if (!chunk.last()) return Status();

    Result<std::string> path = staged.file.finish();
    staging_.erase(it);
    if (!path.ok()) return path.status();
    ++stats_.snapshots_received;
    if (handler_.on_snapshot) handler_.on_snapshot(std::move(*chunk.message), *path);
    return Status();
}

void TcpTransport::Impl::abort_staging_of(const InboundConnection* connection) {
    for (auto it = staging_.begin(); it != staging_.end();) {
        if (it->second.owner == connection) {
            log(LogLevel::info, "partial snapshot from node " + std::to_string(it->first) +
                                    " dropped with its connection");
            it = staging_.erase(it);
        } else {
            ++it;
        }
    }
}

// ---- TcpTransport ----

TcpTransport::TcpTransport(asio::io_context& io, TcpTransportOptions options,
                           TransportHandler handler)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handler))) {}

TcpTransport::~TcpTransport() {
    impl_->stop();
}

Status TcpTransport::start() {
    return impl_->start();
}

void TcpTransport::stop() {
    impl_->stop();
}

void TcpTransport::set_peer(NodeId id, std::string address) {
    KEEL_ASSERT(id != raft::kNoNode, "peer id 0 is nobody");
    std::lock_guard lock(impl_->send_mu_);
    if (impl_->stopped_) return;
    auto it = impl_->peers_.find(id);
    if (it != impl_->peers_.end()) {
        if (it->second->address() == address) return;
        it->second->close();
        impl_->peers_.erase(it);
    }
    impl_->peers_.emplace(id, std::make_shared<OutboundPeer>(impl_, id, std::move(address)));
}

void TcpTransport::remove_peer(NodeId id) {
    std::lock_guard lock(impl_->send_mu_);
    auto it = impl_->peers_.find(id);
    if (it == impl_->peers_.end()) return;
    it->second->close();
    impl_->peers_.erase(it);
}

void TcpTransport::send(std::vector<raft::Message> messages) {
    Impl& t = *impl_;
    std::lock_guard lock(t.send_mu_);
    if (!t.running()) {
        t.stats_.messages_dropped += messages.size();
        return;
    }
    std::set<NodeId> unreachable;
    std::set<OutboundPeer*> touched;
    for (auto& m : messages) {
        auto it = t.peers_.find(m.to);
        NodeId to = m.to;
        if (it != t.peers_.end() && it->second->enqueue(std::move(m))) {
            touched.insert(it->second.get());
        } else {
            ++t.stats_.messages_dropped;
            unreachable.insert(to);
        }
    }
    // Kick after queueing everything, so one call's messages share a frame.
    for (OutboundPeer* peer : touched) peer->kick();
    for (NodeId id : unreachable) t.post_unreachable(id);
}

void TcpTransport::send_now(std::vector<raft::Message>& messages) {
    Impl& t = *impl_;
    std::lock_guard lock(t.send_mu_);
    if (!t.running() || messages.empty()) return;
    // A peer idle when first met takes all its messages, queued as send()
    // queues them; any other peer's are left, in order, for send().
    std::vector<std::pair<OutboundPeer*, bool>> met;  // peer, idle before this call
    auto idle_before = [&met](OutboundPeer* peer) {
        for (const auto& [p, idle] : met)
            if (p == peer) return idle;
        return met.emplace_back(peer, peer->idle()).second;
    };
    std::set<NodeId> unreachable;
    std::vector<raft::Message> left;
    for (raft::Message& m : messages) {
        auto it = t.peers_.find(m.to);
        if (it == t.peers_.end() || !idle_before(it->second.get())) {
            left.push_back(std::move(m));
            continue;
        }
        const NodeId to = m.to;
        if (!it->second->enqueue(std::move(m))) {  // past the queue limit, as in send()
            ++t.stats_.messages_dropped;
            unreachable.insert(to);
        }
    }
    for (const auto& [peer, idle] : met)
        if (idle) t.stats_.messages_sent_now += peer->write_now();
    for (NodeId id : unreachable) t.post_unreachable(id);
    messages = std::move(left);
}

void TcpTransport::send_snapshot(raft::Message message, SnapshotSource source) {
    Impl& t = *impl_;
    KEEL_ASSERT(message.type == raft::MessageType::snapshot && message.snapshot,
                "send_snapshot needs a snapshot message with its meta");
    NodeId to = message.to;
    std::lock_guard lock(t.send_mu_);
    if (!t.running()) return;
    auto it = t.peers_.find(to);
    if (it == t.peers_.end()) {
        t.post_snapshot_sent(to, false);
        t.post_unreachable(to);
        return;
    }
    Result<SnapshotReader> reader = SnapshotReader::open(source.path);
    if (!reader.ok()) {
        t.log(LogLevel::warning, "snapshot for node " + std::to_string(to) +
                                     " not sent: " + reader.status().to_string());
        t.post_snapshot_sent(to, false);
        return;
    }
    if (reader->size_bytes() > t.options_.snapshot_bytes_max) {
        t.log(LogLevel::warning, "snapshot " + source.path + " of " +
                                     std::to_string(reader->size_bytes()) +
                                     " bytes exceeds snapshot_bytes_max");
        t.post_snapshot_sent(to, false);
        return;
    }
    it->second->start_snapshot(std::move(message), std::move(*reader), t.next_snapshot_id_++);
}

std::uint16_t TcpTransport::bound_port() const {
    return impl_->bound_port_;
}

TcpTransportStats TcpTransport::stats() const {
    std::lock_guard lock(impl_->send_mu_);
    return impl_->stats_;
}

}  // namespace keel::transport
