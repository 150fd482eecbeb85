// transport/inprocess_transport.cpp — see inprocess_transport.hpp.
#include "transport/inprocess_transport.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <map>

#include "transport/snapshot_files.hpp"

namespace keel::transport {
namespace asio = boost::asio;

// ---- InProcessHub ----

void InProcessHub::block(NodeId from, NodeId to) {
    std::lock_guard lock(mu_);
    blocked_.emplace(from, to);
}

void InProcessHub::unblock(NodeId from, NodeId to) {
    std::lock_guard lock(mu_);
    blocked_.erase({from, to});
}

void InProcessHub::partition(const std::vector<NodeId>& side) {
    std::lock_guard lock(mu_);
    partition_side_ = std::set<NodeId>(side.begin(), side.end());
}

void InProcessHub::heal() {
    std::lock_guard lock(mu_);
    blocked_.clear();
    partition_side_.clear();
    drop_rate_ = 0.0;
}

void InProcessHub::set_drop_rate(double probability) {
    KEEL_ASSERT(probability >= 0.0 && probability <= 1.0, "a probability");
    std::lock_guard lock(mu_);
    drop_rate_ = probability;
}

Status InProcessHub::add(std::shared_ptr<Endpoint> endpoint) {
    std::lock_guard lock(mu_);
    NodeId id = endpoint->id;
    if (!endpoints_.emplace(id, std::move(endpoint)).second)
        return Status(ErrorCode::invalid_argument,
                      "node " + std::to_string(id) + " is already on the hub");
    return Status();
}

void InProcessHub::remove(NodeId id) {
    std::lock_guard lock(mu_);
    endpoints_.erase(id);
}

InProcessHub::Route InProcessHub::route(NodeId from, NodeId to,
                                        std::shared_ptr<Endpoint>& endpoint) {
    std::lock_guard lock(mu_);
    auto it = endpoints_.find(to);
    if (it == endpoints_.end()) return Route::unknown;
    bool cut =
        blocked_.count({from, to}) != 0 || partition_side_.count(from) != partition_side_.count(to);
    bool unlucky =
        drop_rate_ > 0.0 && std::uniform_real_distribution<double>(0, 1)(rng_) < drop_rate_;
    if (cut || unlucky) {
        ++lost_;
        return Route::lost;
    }
    endpoint = it->second;
    return Route::deliver;
}

// ---- InProcessTransport ----

InProcessTransport::InProcessTransport(InProcessHub& hub, asio::io_context& io,
                                       InProcessTransportOptions options, TransportHandler handler)
    : hub_(hub), options_(std::move(options)), self_(std::make_shared<InProcessHub::Endpoint>()) {
    KEEL_ASSERT(options_.self != raft::kNoNode, "a transport needs its own node id");
    self_->id = options_.self;
    self_->io = &io;
    self_->handler = std::move(handler);
    self_->staging_dir = options_.staging_dir;
    self_->in_flight_messages_max = options_.in_flight_messages_max;
}

InProcessTransport::~InProcessTransport() {
    stop();
}

Status InProcessTransport::start() {
    if (started_) return Status(ErrorCode::invalid_argument, "transport started twice");
    if (Status s = hub_.add(self_); !s.ok()) return s;
    started_ = true;
    return Status();
}

void InProcessTransport::stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    self_->running = false;
    hub_.remove(options_.self);
}

void InProcessTransport::set_peer(NodeId id, std::string /*address*/) {
    peers_.insert(id);
}

void InProcessTransport::remove_peer(NodeId id) {
    peers_.erase(id);
}

void InProcessTransport::post_to_self(std::function<void(const TransportHandler&)> callback) {
    asio::post(*self_->io, [self = self_, callback = std::move(callback)] {
        if (self->running) callback(self->handler);
    });
}

void InProcessTransport::report_unreachable(NodeId id) {
    post_to_self([id](const TransportHandler& h) {
        if (h.on_unreachable) h.on_unreachable(id);
    });
}

void InProcessTransport::send(std::vector<raft::Message> messages) {
    if (!started_ || stopped_) return;
    // Group per destination, keeping order, so each group is one "frame".
    std::map<NodeId, std::vector<raft::Message>> by_peer;
    for (auto& m : messages) by_peer[m.to].push_back(std::move(m));

    for (auto& [to, batch] : by_peer) {
        std::shared_ptr<InProcessHub::Endpoint> peer;
        InProcessHub::Route route = peers_.count(to) != 0 ? hub_.route(options_.self, to, peer)
                                                          : InProcessHub::Route::unknown;
        if (route == InProcessHub::Route::lost) continue;
        if (route == InProcessHub::Route::unknown) {
            report_unreachable(to);
            continue;
        }
        // Through the codec, as on the wire: what TCP could not carry fails here too.
        Result<std::string> frame = encode_messages(batch, options_.limits);
        Result<Frame> decoded =
            frame.ok() ? decode_frame(*frame, options_.limits) : Result<Frame>(frame.status());
        if (!decoded.ok()) {
            if (self_->handler.log)
                self_->handler.log(LogLevel::warning, "dropping messages to node " +
                                                          std::to_string(to) + ": " +
                                                          decoded.status().to_string());
            report_unreachable(to);
            continue;
        }
        bool refused = false;
        for (auto& m : std::get<MessageBatch>(*decoded).messages) {
            if (peer->in_flight.fetch_add(1) >= peer->in_flight_messages_max) {
                peer->in_flight.fetch_sub(1);
                refused = true;
                continue;
            }
            hub_.delivered_.fetch_add(1);
            asio::post(*peer->io, [peer, m = std::move(m)]() mutable {
                peer->in_flight.fetch_sub(1);
                if (peer->running && peer->handler.on_message)
                    peer->handler.on_message(std::move(m));
            });
        }
        if (refused) report_unreachable(to);
    }
}

void InProcessTransport::send_snapshot(raft::Message message, SnapshotSource source) {
    KEEL_ASSERT(message.type == raft::MessageType::snapshot && message.snapshot,
                "send_snapshot needs a snapshot message with its meta");
    if (!started_ || stopped_) return;
    const NodeId to = message.to;
    auto report_sent = [this, to](bool ok) {
        post_to_self([to, ok](const TransportHandler& h) {
            if (h.on_snapshot_sent) h.on_snapshot_sent(to, ok);
        });
    };
    std::shared_ptr<InProcessHub::Endpoint> peer;
    InProcessHub::Route route =
        peers_.count(to) != 0 ? hub_.route(options_.self, to, peer) : InProcessHub::Route::unknown;
    if (route != InProcessHub::Route::deliver) {
        if (route == InProcessHub::Route::unknown) report_unreachable(to);
        report_sent(false);
        return;
    }
    if (peer->staging_dir.empty()) {
        report_sent(false);
        return;
    }
    std::string name =
        "snapshot-" + std::to_string(options_.self) + "-" + std::to_string(hub_.next_staging_seq());
    Result<std::string> path = stage_copy(source.path, peer->staging_dir, name);
    if (!path.ok()) {
        if (self_->handler.log)
            self_->handler.log(LogLevel::warning, "snapshot to node " + std::to_string(to) +
                                                      " failed: " + path.status().to_string());
        report_sent(false);
        return;
    }
    asio::post(*peer->io, [peer, message = std::move(message), path = *path]() mutable {
        if (peer->running && peer->handler.on_snapshot)
            peer->handler.on_snapshot(std::move(message), std::move(path));
    });
    report_sent(true);
}

}  // namespace keel::transport
