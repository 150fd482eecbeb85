// transport/tcp_transport.cpp — the public TcpTransport, listening and
// accepting.
#include "transport/tcp_transport.hpp"

#include <boost/asio/post.hpp>
#include <utility>

#include <fmt/format.h>
#include "transport/tcp_internal.hpp"

namespace keel::transport {

Status split_host_port(std::string_view address, std::string& host, std::string& port) {
    std::size_t colon = address.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size())
        return Status(ErrorCode::invalid_argument,
                      fmt::format("address '{}' is not host:port", address));
    std::string_view h = address.substr(0, colon);
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    host = std::string(h);
    port = std::string(address.substr(colon + 1));
    unsigned long value = 0;
    for (char c : port) {
        value = value * 10 + static_cast<unsigned long>(c - '0');
        if (c < '0' || c > '9' || value > 65535 || port.size() > 5)
            return Status(ErrorCode::invalid_argument,
                          fmt::format("address '{}' has a bad port", address));
    }
    return Status();
}

// The TCP wire carries a buffer's group in its frames (codec.hpp): keel's
// channel makes them, so a buffer whose frames name another group, or that
// is not whole frames, is a bug on our side, refused rather than misrouted.
// A buffer on kCoalescedGroup holds several groups' frames (a Host's
// router coalesced them): each goes on the wire as it is, under its own.
bool frames_of_group(std::string_view bytes, GroupId group) {
    if (bytes.empty()) return false;
    while (!bytes.empty()) {
        if (bytes.size() < kFrameLengthBytes) return false;
        std::uint32_t length = 0;
        for (std::size_t i = 0; i < kFrameLengthBytes; ++i)
            length |= std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << (8 * i);
        if (bytes.size() - kFrameLengthBytes < length) return false;
        Result<FrameRoute> route = frame_route(bytes.substr(0, kFrameLengthBytes + length));
        if (!route.ok()) return false;
        if (group == kCoalescedGroup ? route->group == kCoalescedGroup : route->group != group)
            return false;
        bytes.remove_prefix(kFrameLengthBytes + length);
    }
    return true;
}

// ---- Impl ----

TcpTransport::Impl::Impl(asio::io_context& io, TcpTransportOptions options, TcpTransportHooks hooks)
    : io_(io),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      acceptor_(io),
      accept_retry_timer_(io),
      cluster_id_(options_.cluster_id),
      rng_(options_.jitter_seed) {
    KEEL_ASSERT(options_.self != raft::kNoNode, "a transport needs its own node id");
    KEEL_ASSERT(options_.frame_bytes_max >= kHelloFrameBytes, "frames must fit a hello");
    KEEL_ASSERT(options_.write_bytes_max > 0, "writes need room");
    KEEL_ASSERT(options_.peer_queue_buffers_max > 0, "peer queues need room");
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
    if (hooks_.log) hooks_.log(level, fmt::format("node {}: {}", options_.self, message));
}

void TcpTransport::Impl::reject(Rejection reason, const std::string& detail) {
    inbound_counters_.rejected.fetch_add(1, std::memory_order_relaxed);
    if (hooks_.on_rejected) {
        hooks_.on_rejected(reason, detail);
    } else {
        log(LogLevel::warning,
            fmt::format("{}{}): {}", "refused (", rejection_name(reason), detail));
    }
}

Status TcpTransport::Impl::adopt_cluster_id(const Hello& hello) {
    if (!hooks_.on_cluster_id)
        return Status(ErrorCode::unsupported, "this node has no cluster id and cannot adopt one");
    if (Status s = hooks_.on_cluster_id(hello.cluster_id, hello.from); !s.ok()) return s;
    std::lock_guard lock(send_mu_);
    cluster_id_ = hello.cluster_id;
    log(LogLevel::info,
        fmt::format("joined cluster {} (hello from node {})", cluster_id_.hex(), hello.from));
    // Messages queued while we could not say hello go now.
    for (auto& [id, peer] : peers_) peer->kick();
    return Status();
}

void TcpTransport::Impl::post_unreachable(GroupId group, NodeId id) {
    asio::post(io_, [self = shared_from_this(), group, id] {
        if (self->running()) self->sink_->on_unreachable(group, id);
    });
}

// Posted even after stop(): a stream ends with done() whatever happens (an
// OutgoingSnapshot dropped unfinished reports itself as failed anyway).
void TcpTransport::Impl::post_snapshot_done(std::shared_ptr<OutgoingSnapshot> snapshot,
                                            bool delivered) {
    asio::post(io_, [snapshot = std::move(snapshot), delivered] { snapshot->done(delivered); });
}

Status TcpTransport::Impl::start(TransportSink& sink) {
    if (started_) return Status(ErrorCode::invalid_argument, "transport started twice");
    sink_ = &sink;
    if (!options_.listen_address.empty()) {
        std::string host, port;
        Status s = split_host_port(options_.listen_address, host, port);
        if (!s.ok()) return s;
        boost::system::error_code ec;
        tcp::resolver resolver(io_);
        auto endpoints = resolver.resolve(host, port, tcp::resolver::passive, ec);
        if (ec || endpoints.empty())
            return Status(ErrorCode::invalid_argument,
                          fmt::format("cannot resolve listen address {}: {}",
                                      options_.listen_address, ec.message()));
        tcp::endpoint endpoint = *endpoints.begin();
        acceptor_.open(endpoint.protocol(), ec);
        if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec) acceptor_.bind(endpoint, ec);
        if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            boost::system::error_code ignored;
            acceptor_.close(ignored);
            return Status(ErrorCode::io_error, fmt::format("cannot listen on {}: {}",
                                                           options_.listen_address, ec.message()));
        }
        bound_port_ = acceptor_.local_endpoint(ec).port();
        const bool v6 = host.find(':') != std::string::npos;
        hello_address_ = v6 ? fmt::format("[{}]:{}", host, bound_port_)
                            : fmt::format("{}:{}", host, bound_port_);
    }
    if (!options_.advertised_address.empty()) hello_address_ = options_.advertised_address;
    if (!valid_hello_address(hello_address_))
        return Status(ErrorCode::invalid_argument,
                      fmt::format("advertised address over {} bytes or not printable: {}",
                                  kHelloAddressBytesMax, hello_address_));
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
    const std::string where = ec ? address : fmt::format("{}:{}", address, remote.port());
    std::string refused;
    if (inbound_.size() >= options_.inbound_connections_max) {
        refused = fmt::format("already {} inbound connections (inbound_connections_max)",
                              inbound_.size());
    } else if (pending_by_address_[address] >= options_.inbound_pending_per_address_max) {
        refused = fmt::format(
            "already {} connections from {} before their hello (inbound_pending_per_address_max)",
            pending_by_address_[address], address);
    }
    if (pending_by_address_[address] == 0) pending_by_address_.erase(address);
    if (!refused.empty()) {
        reject(Rejection::connection_limit,
               fmt::format("connection from {} closed: {}", where, refused));
        boost::system::error_code ignored;
        socket.close(ignored);
        return;
    }
    inbound_counters_.accepted.fetch_add(1, std::memory_order_relaxed);
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

// ---- TcpTransport ----

TcpTransport::TcpTransport(asio::io_context& io, TcpTransportOptions options,
                           TcpTransportHooks hooks)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(hooks))) {}

TcpTransport::~TcpTransport() {
    impl_->stop();
}

Status TcpTransport::start(TransportSink& sink) {
    return impl_->start(sink);
}

void TcpTransport::stop() {
    impl_->stop();
}

void TcpTransport::set_peer(NodeId id, const std::string& address) {
    KEEL_ASSERT(id != raft::kNoNode, "peer id 0 is nobody");
    std::lock_guard lock(impl_->send_mu_);
    if (impl_->stopped_) return;
    auto it = impl_->peers_.find(id);
    if (it != impl_->peers_.end()) {
        if (it->second->address() == address) return;
        it->second->close();
        impl_->peers_.erase(it);
    }
    impl_->peers_.emplace(id, std::make_shared<OutboundPeer>(impl_, id, address));
}

void TcpTransport::remove_peer(NodeId id) {
    std::lock_guard lock(impl_->send_mu_);
    auto it = impl_->peers_.find(id);
    if (it == impl_->peers_.end()) return;
    it->second->close();
    impl_->peers_.erase(it);
}

void TcpTransport::send(GroupId group, NodeId to, std::string bytes) {
    Impl& t = *impl_;
    std::lock_guard lock(t.send_mu_);
    if (!t.running()) {
        ++t.stats_.buffers_dropped;
        return;
    }
    auto it = t.peers_.find(to);
    if (!frames_of_group(bytes, group)) {
        t.log(LogLevel::error,
              fmt::format("dropping a buffer for group {} that is not that group's frames", group));
    } else if (it != t.peers_.end() && it->second->enqueue(group, std::move(bytes))) {
        it->second->kick();
        return;
    }
    ++t.stats_.buffers_dropped;
    t.post_unreachable(group, to);
}

bool TcpTransport::send_now(GroupId group, NodeId to, const std::function<std::string()>& encode) {
    Impl& t = *impl_;
    std::lock_guard lock(t.send_mu_);
    if (!t.running()) return false;
    auto it = t.peers_.find(to);
    if (it == t.peers_.end() || !it->second->idle()) return false;
    std::string bytes = encode();
    if (bytes.empty()) return true;
    if (!frames_of_group(bytes, group)) {
        t.log(LogLevel::error,
              fmt::format("dropping a buffer for group {} that is not that group's frames", group));
        ++t.stats_.buffers_dropped;
        t.post_unreachable(group, to);
        return true;
    }
    it->second->write_now(group, std::move(bytes));
    return true;
}

void TcpTransport::send_snapshot(GroupId group, NodeId to,
                                 std::shared_ptr<OutgoingSnapshot> snapshot) {
    Impl& t = *impl_;
    KEEL_ASSERT(snapshot != nullptr, "send_snapshot needs a snapshot");
    std::lock_guard lock(t.send_mu_);
    if (!t.running()) return t.post_snapshot_done(std::move(snapshot), false);
    auto it = t.peers_.find(to);
    if (it == t.peers_.end()) {
        t.post_snapshot_done(std::move(snapshot), false);
        t.post_unreachable(group, to);
        return;
    }
    it->second->start_snapshot(group, std::move(snapshot), t.next_snapshot_id_++);
}

std::uint16_t TcpTransport::bound_port() const {
    return impl_->bound_port_;
}

TcpTransportStats TcpTransport::stats() const {
    TcpTransportStats stats;
    {
        std::lock_guard lock(impl_->send_mu_);
        stats = impl_->stats_;
    }
    stats.frames_received =
        impl_->inbound_counters_.frames_received.load(std::memory_order_relaxed);
    stats.inbound_accepted = impl_->inbound_counters_.accepted.load(std::memory_order_relaxed);
    stats.inbound_rejected = impl_->inbound_counters_.rejected.load(std::memory_order_relaxed);
    return stats;
}

}  // namespace keel::transport
