// Host liveness on a real process.  See process_liveness.hpp.
#include "runtime/process_liveness.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "keel/assert.hpp"
#include "runtime/group_router.hpp"
#include "transport/codec.hpp"
#include "transport/rejection.hpp"

namespace keel::runtime {

namespace {

// A ping is one small message: nothing bigger is read as one.
transport::CodecLimits ping_limits() {
    transport::CodecLimits l;
    l.frame_bytes_max = transport::kMessagesFrameFixedBytes + 128;
    l.messages_per_batch_max = 1;
    l.entries_per_message_max = 0;
    l.entry_bytes_max = 0;
    l.members_max = 0;
    l.context_bytes_max = 0;
    l.chunk_bytes_max = 0;
    return l;
}

std::uint64_t now_us() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

void raise_max(std::atomic<std::uint64_t>& max, std::uint64_t value) {
    std::uint64_t seen = max.load(std::memory_order_relaxed);
    while (value > seen && !max.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
}

std::uint64_t draw_incarnation() {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ now_us();
}

}  // namespace

struct ProcessLiveness::Timer {
    explicit Timer(boost::asio::io_context& io) : timer(io) {}
    boost::asio::steady_timer timer;
};

ProcessLiveness::ProcessLiveness(GroupRouter& router, ProcessClock& clock)
    : router_(router), clock_(clock), incarnation_(draw_incarnation()) {}

ProcessLiveness::~ProcessLiveness() = default;

Status ProcessLiveness::enable(NodeId self, std::chrono::microseconds tick_period,
                               std::uint64_t down_after_us) {
    {
        MutexLock lock(mu_);
        if (liveness_) {
            if (self != self_)
                return Status(
                    ErrorCode::invalid_argument,
                    fmt::format("every group of a process with quiescence on is the same node "
                                "({}), not {}",
                                self_, self));
            return Status::ok_status();
        }
        self_ = self;
        const auto tick_us = static_cast<std::uint64_t>(tick_period.count());
        liveness_.emplace(
            liveness_timing(tick_us, down_after_us, liveness_phase_us(incarnation_, tick_us)));
        timer_ = std::make_unique<Timer>(clock_.io());
    }
    enabled_.store(true, std::memory_order_release);
    // Peers some group set already: start pinging them.
    boost::asio::post(clock_.io(), [this] { peers_changed(); });
    return Status::ok_status();
}

void ProcessLiveness::peers_changed() {
    if (!enabled()) return;
    if (router_.has_peers())
        arm(now_us());  // a new peer is pinged at once
    else
        disarm();
}

void ProcessLiveness::arm(std::uint64_t at_us) {
    if (armed_at_us_ && *armed_at_us_ <= at_us) return;
    armed_at_us_ = at_us;
    const std::uint64_t generation = ++generation_;
    timer_->timer.expires_at(boost::asio::steady_timer::time_point(
        std::chrono::duration_cast<boost::asio::steady_timer::duration>(
            std::chrono::microseconds(at_us))));
    timer_->timer.async_wait([this, generation](const boost::system::error_code& ec) {
        if (ec || generation != generation_) return;  // re-armed or disarmed meanwhile
        armed_at_us_.reset();
        rounds_.fetch_add(1, std::memory_order_relaxed);
        round();
    });
}

void ProcessLiveness::disarm() {
    if (!armed_at_us_) return;
    armed_at_us_.reset();
    ++generation_;
    timer_->timer.cancel();
}

void ProcessLiveness::attach(GroupId group, std::function<void(NodeId)> on_peer_down) {
    MutexLock lock(mu_);
    groups_[group] = std::move(on_peer_down);
}

void ProcessLiveness::detach(GroupId group) {
    MutexLock lock(mu_);
    groups_.erase(group);
}

void ProcessLiveness::heard(NodeId from) {
    if (!enabled()) return;
    MutexLock lock(mu_);
    (void)liveness_->heard(from, now_us());
}

Status ProcessLiveness::on_ping(NodeId from, std::string_view bytes) {
    static const transport::CodecLimits kPingLimits = ping_limits();
    Result<transport::Frame> frame = transport::decode_frame(bytes, kPingLimits);
    if (!frame.ok())
        return refuse(
            transport::rejection_name(transport::Rejection::malformed),
            fmt::format("liveness ping from node {}: {}", from, frame.status().to_string()));
    const auto* batch = std::get_if<transport::MessageBatch>(&*frame);
    if (batch == nullptr || batch->group != kLivenessGroup || batch->messages.size() != 1 ||
        batch->messages[0].type != raft::MessageType::heartbeat || batch->messages[0].term != 0 ||
        batch->messages[0].snapshot)
        return refuse(
            transport::rejection_name(transport::Rejection::malformed),
            fmt::format("liveness ping from node {} is not one heartbeat of term 0", from));
    const raft::Message& ping = batch->messages[0];
    if (ping.from != from)
        return refuse(transport::rejection_name(transport::Rejection::misaddressed),
                      fmt::format("liveness ping delivered from node {} says it is from node {}",
                                  from, ping.from));
    pings_received_.fetch_add(1);
    if (!enabled()) return Status::ok_status();  // a peer with quiescence on, and we are off
    MutexLock lock(mu_);
    if (ping.to != self_)
        return refuse(transport::rejection_name(transport::Rejection::misaddressed),
                      fmt::format("liveness ping from node {} is for node {}, not this one ({})",
                                  from, ping.to, self_));
    const std::uint64_t now = now_us();
    // A restart is told to the groups at once, not at the next round.
    if (liveness_->heard_ping(from, ping.context, now))
        boost::asio::post(clock_.io(), [this] { arm(now_us()); });
    auto [last, first] = last_ping_us_.try_emplace(from, now);
    if (!first && now > last->second) {
        ping_gaps_.record_ns((now - last->second) * 1000);
        raise_max(ping_gap_us_max_, now - last->second);
    }
    last->second = now;
    return Status::ok_status();
}

Status ProcessLiveness::refuse(std::string_view reason, std::string detail) {
    router_.report_rejection(reason, detail);
    return Status(ErrorCode::invalid_argument, std::move(detail));
}

void ProcessLiveness::round() {
    const std::set<NodeId> peers = router_.peer_ids();
    HostLiveness::Round r;
    NodeId self = 0;
    {
        MutexLock lock(mu_);
        const std::uint64_t now = now_us();
        if (last_round_us_ != 0 && now > last_round_us_) {
            round_gaps_.record_ns((now - last_round_us_) * 1000);
            raise_max(round_gap_us_max_, now - last_round_us_);
        }
        last_round_us_ = now;
        liveness_->set_peers(peers, now);
        r = liveness_->poll(now);
        self = self_;
    }
    for (NodeId peer : r.ping) {
        raft::Message ping;
        ping.type = raft::MessageType::heartbeat;
        ping.from = self;
        ping.to = peer;
        ping.context = incarnation_;
        Result<std::string> frame = transport::encode_messages(
            std::span(&ping, 1), transport::CodecLimits{}, kLivenessGroup);
        KEEL_ASSERT(frame.ok(), "a ping is within every limit");
        router_.send_process(kLivenessGroup, peer, std::move(frame.value()));
        pings_sent_.fetch_add(1);
    }
    verdicts_.fetch_add(r.newly_down.size());
    for (NodeId peer : r.down) {
        for (GroupId g : router_.groups_with(peer)) {
            std::function<void(NodeId)> tell;
            {
                MutexLock lock(mu_);
                auto it = groups_.find(g);
                if (it != groups_.end()) tell = it->second;
            }
            if (tell) tell(peer);
        }
    }
    if (r.next_poll_us)
        arm(*r.next_poll_us);
    else
        disarm();  // no peer: peers_changed arms it again
}

}  // namespace keel::runtime
