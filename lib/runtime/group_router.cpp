// The process's transport shared by its groups.  See group_router.hpp.
#include "runtime/group_router.hpp"

#include <utility>
#include <vector>

#include <fmt/format.h>
#include "keel/assert.hpp"
#include "runtime/process_liveness.hpp"
#include "transport/codec.hpp"
#include "transport/rejection.hpp"

namespace keel::runtime {

namespace {

// The slot this thread is delivering into, if any: detaching it from inside
// that delivery would wait for itself.
thread_local const void* t_delivering_to = nullptr;

}  // namespace

// One group's view of the process's transport.
class GroupRouter::Link final : public Transport {
public:
    Link(GroupRouter& router, GroupId group) : router_(router), group_(group) {}

    Status start(TransportSink& sink) override {
        Status s = router_.attach(group_, sink);
        attached_.store(s.ok());
        return s;
    }
    void stop() override {
        if (!attached_.exchange(false)) return;
        router_.detach(group_);
    }
    void set_peer(NodeId id, const std::string& address) override {
        router_.set_peer(group_, id, address);
    }
    void remove_peer(NodeId id) override { router_.remove_peer(group_, id); }
    void send(GroupId group, NodeId to, std::string bytes) override {
        KEEL_ASSERT(group == group_, "a group's channel sends under its own group id");
        if (router_.coalescing_) return router_.queue_send(group_, to, std::move(bytes));
        router_.transport_->send(group_, to, std::move(bytes));
    }
    bool send_now(GroupId group, NodeId to, const std::function<std::string()>& encode) override {
        KEEL_ASSERT(group == group_, "a group's channel sends under its own group id");
        if (router_.coalescing_ && router_.send_pending(to)) return false;
        return router_.transport_->send_now(group_, to, encode);
    }
    void send_snapshot(GroupId group, NodeId to,
                       std::shared_ptr<OutgoingSnapshot> snapshot) override {
        KEEL_ASSERT(group == group_, "a group's channel sends under its own group id");
        router_.transport_->send_snapshot(group_, to, std::move(snapshot));
    }

private:
    GroupRouter& router_;
    const GroupId group_;
    std::atomic<bool> attached_{false};
};

GroupRouter::~GroupRouter() {
    stop();
}

Status GroupRouter::start(std::shared_ptr<Transport> transport, RejectionHook on_rejected,
                          std::optional<std::map<NodeId, std::string>> process_peers) {
    KEEL_ASSERT(transport_ == nullptr && transport != nullptr, "the router starts once");
    KEEL_ASSERT(!coalescing_ || io_.post, "coalescing needs the I/O thread");
    transport_ = std::move(transport);
    on_rejected_ = std::move(on_rejected);
    process_mode_ = process_peers.has_value();
    Status s = transport_->start(*this);
    if (!s.ok()) {
        stopped_ = true;  // never started: nothing to stop
        return s;
    }
    if (process_peers)
        for (const auto& [id, address] : *process_peers) add_process_peer(id, address);
    return s;
}

void GroupRouter::add_process_peer(NodeId id, const std::string& address) {
    KEEL_ASSERT(process_mode_, "process peers are a Host's (start's process_peers)");
    {
        MutexLock lock(peers_mu_);
        auto [it, inserted] = process_peers_.try_emplace(id, address);
        if (!inserted && it->second == address) return;
        it->second = address;
    }
    transport_->set_peer(id, address);
    if (liveness_ != nullptr) liveness_->peers_changed();
}

void GroupRouter::remove_process_peer(NodeId id) {
    KEEL_ASSERT(process_mode_, "process peers are a Host's (start's process_peers)");
    {
        MutexLock lock(peers_mu_);
        if (process_peers_.erase(id) == 0) return;
    }
    transport_->remove_peer(id);
    if (liveness_ != nullptr) liveness_->peers_changed();
}

void GroupRouter::stop() {
    if (transport_ == nullptr || stopped_) return;
    stopped_ = true;
    {
        MutexLock lock(mu_);
        KEEL_ASSERT(slots_.empty(), "every group leaves before the transport stops");
    }
    transport_->stop();
}

std::shared_ptr<Transport> GroupRouter::link(GroupId group) {
    KEEL_ASSERT(started(), "a link needs the process's transport");
    return std::make_shared<Link>(*this, group);
}

Status GroupRouter::attach(GroupId group, TransportSink& sink) {
    if (group == kLivenessGroup || group == kCoalescedGroup)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("group {} is reserved for the process's own traffic", group));
    MutexLock lock(mu_);
    if (slots_.count(group) != 0)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("group {} is open in this process already", group));
    slots_[group].sink = &sink;
    departed_.erase(group);
    return Status::ok_status();
}

void GroupRouter::detach(GroupId group) {
    {
        MutexLock lock(mu_);
        auto it = slots_.find(group);
        if (it == slots_.end()) return;
        Slot& slot = it->second;
        KEEL_ASSERT(t_delivering_to != &slot, "a group leaves from outside its own deliveries");
        slot.leaving = true;
        while (slot.calls > 0) left_.wait(lock);
        slots_.erase(it);
        departed_.insert(group);
    }
    // The members only this group had: the transport forgets them.
    std::vector<NodeId> gone;
    {
        MutexLock lock(peers_mu_);
        for (auto it = peers_.begin(); it != peers_.end();) {
            it->second.groups.erase(group);
            if (it->second.groups.empty()) {
                gone.push_back(it->first);
                it = peers_.erase(it);
            } else {
                ++it;
            }
        }
    }
    if (!process_mode_)
        for (NodeId id : gone) transport_->remove_peer(id);
    if (!gone.empty() && liveness_ != nullptr) liveness_->peers_changed();
}

template <typename Deliver>
Status GroupRouter::dispatch(GroupId group, NodeId from, bool peer_input, Deliver&& deliver) {
    Slot* slot = nullptr;
    {
        MutexLock lock(mu_);
        auto it = slots_.find(group);
        if (it != slots_.end() && !it->second.leaving) {
            slot = &it->second;
            ++slot->calls;
        } else if (it != slots_.end() || departed_.count(group) != 0 || !peer_input) {
            return Status::ok_status();  // the group stopped: dropped, as a stopped node does
        }
    }
    if (slot == nullptr) return refuse_unknown(group, from);
    const void* outer = t_delivering_to;
    t_delivering_to = slot;
    Status s = deliver(*slot->sink);
    t_delivering_to = outer;
    MutexLock lock(mu_);
    if (--slot->calls == 0 && slot->leaving) left_.notify_all();
    return s;
}

Status GroupRouter::refuse_unknown(GroupId group, NodeId from) {
    unknown_group_.fetch_add(1);
    const std::string detail = fmt::format(
        "bytes from node {} for group {}, which this process does not serve", from, group);
    report_rejection(kRejectedUnknownGroup, detail);
    // A process peer's connection carries its other groups' traffic too
    // (and a group it has here may simply not be open yet): dropped, not
    // closed.
    if (process_mode_) {
        MutexLock lock(peers_mu_);
        if (process_peers_.count(from) != 0) return Status::ok_status();
    }
    return Status(ErrorCode::invalid_argument, detail);
}

void GroupRouter::report_rejection(std::string_view reason, std::string_view detail) {
    if (on_rejected_) on_rejected_(reason, detail);
}

void GroupRouter::send_process(GroupId group, NodeId to, std::string bytes) {
    transport_->send(group, to, std::move(bytes));
}

std::set<NodeId> GroupRouter::peer_ids() const {
    std::set<NodeId> out;
    MutexLock lock(peers_mu_);
    for (const auto& [id, peer] : peers_)
        if (!process_mode_ || process_peers_.count(id) != 0) out.insert(out.end(), id);
    return out;
}

bool GroupRouter::has_peers() const {
    MutexLock lock(peers_mu_);
    if (!process_mode_) return !peers_.empty();
    for (const auto& [id, peer] : peers_)
        if (process_peers_.count(id) != 0) return true;
    return false;
}

std::vector<GroupId> GroupRouter::groups_with(NodeId peer) const {
    MutexLock lock(peers_mu_);
    auto it = peers_.find(peer);
    if (it == peers_.end()) return {};
    return std::vector<GroupId>(it->second.groups.begin(), it->second.groups.end());
}

Status GroupRouter::on_messages(GroupId group, NodeId from, std::string_view bytes) {
    if (liveness_ != nullptr) {
        if (group == kLivenessGroup) return liveness_->on_ping(from, bytes);
        liveness_->heard(from);
    }
    if (group == kCoalescedGroup) return on_coalesced(from, bytes);
    return dispatch(group, from, true,
                    [&](TransportSink& s) { return s.on_messages(group, from, bytes); });
}

Status GroupRouter::on_snapshot_chunk(GroupId group, NodeId from, std::string_view bytes) {
    if (liveness_ != nullptr) liveness_->heard(from);
    return dispatch(group, from, true,
                    [&](TransportSink& s) { return s.on_snapshot_chunk(group, from, bytes); });
}

void GroupRouter::on_unreachable(GroupId group, NodeId to) {
    if (group == kCoalescedGroup) {
        for (GroupId g : groups_with(to)) on_unreachable(g, to);
        return;
    }
    (void)dispatch(group, to, false, [&](TransportSink& s) {
        s.on_unreachable(group, to);
        return Status::ok_status();
    });
}

void GroupRouter::on_disconnected(GroupId group, NodeId from) {
    (void)dispatch(group, from, false, [&](TransportSink& s) {
        s.on_disconnected(group, from);
        return Status::ok_status();
    });
}

void GroupRouter::set_peer(GroupId group, NodeId id, const std::string& address) {
    bool fresh = false;
    bool moved = false;
    {
        MutexLock lock(peers_mu_);
        auto [it, inserted] = peers_.try_emplace(id);
        it->second.groups.insert(group);
        fresh = inserted;
        moved = it->second.address != address;
        it->second.address = address;
    }
    // Process peers: the transport has the process's address for it (or
    // will have, once the process is added).
    if ((fresh || moved) && !process_mode_) transport_->set_peer(id, address);
    if ((fresh || moved) && liveness_ != nullptr) liveness_->peers_changed();
}

void GroupRouter::remove_peer(GroupId group, NodeId id) {
    {
        MutexLock lock(peers_mu_);
        auto it = peers_.find(id);
        if (it == peers_.end()) return;
        it->second.groups.erase(group);
        if (!it->second.groups.empty()) return;
        peers_.erase(it);
    }
    if (!process_mode_) transport_->remove_peer(id);
    if (liveness_ != nullptr) liveness_->peers_changed();
}

}  // namespace keel::runtime

namespace keel::runtime {

// ---- coalescing ----

void GroupRouter::queue_send(GroupId group, NodeId to, std::string bytes) {
    bool first = false;
    {
        MutexLock lock(out_mu_);
        first = outbox_.add(group, to, std::move(bytes));
    }
    // Behind the work the I/O thread has queued now: what that work sends
    // joins these.
    if (first) io_.post([this] { flush_sends(); });
}

bool GroupRouter::send_pending(NodeId to) const {
    MutexLock lock(out_mu_);
    return flushing_ || outbox_.pending(to);
}

void GroupRouter::flush_sends() {
    std::vector<CoalescingOutbox::Buffer> buffers;
    {
        MutexLock lock(out_mu_);
        buffers = outbox_.take();
        flushing_ = true;
    }
    // Outside the lock: a transport may deliver (and so a group send) from
    // inside send(); that send is queued for the next flush.
    if (!stopped_)
        for (CoalescingOutbox::Buffer& b : buffers)
            transport_->send(b.group, b.to, std::move(b.bytes));
    MutexLock lock(out_mu_);
    flushing_ = false;
}

Status GroupRouter::on_coalesced(NodeId from, std::string_view bytes) {
    const std::size_t frame_bytes_max = transport::CodecLimits{}.frame_bytes_max;
    Result<std::vector<CoalescedFrame>> frames = split_coalesced(bytes, frame_bytes_max);
    if (!frames.ok()) {
        const std::string detail =
            fmt::format("coalesced buffer from node {}: {}", from, frames.status().message());
        report_rejection(transport::rejection_name(transport::Rejection::malformed), detail);
        return Status(ErrorCode::corruption, detail);
    }
    if (!io_.post || io_.on_io_thread()) return deliver_coalesced(from, *frames);
    const std::size_t size = bytes.size();
    if (posted_bytes_.fetch_add(size) + size > kCoalescedPostedBytesMax) {
        posted_bytes_.fetch_sub(size);
        const std::string detail = fmt::format(
            "from node {}: a coalesced buffer of {} bytes dropped, past the {} bytes that may "
            "wait for the I/O thread",
            from, size, kCoalescedPostedBytesMax);
        report_rejection(transport::rejection_name(transport::Rejection::overloaded), detail);
        return Status(ErrorCode::busy, detail);
    }
    // One copy and one post for every group's frames; the views are rebuilt
    // over the copy.
    struct Posted {
        std::string bytes;
        std::vector<CoalescedFrame> frames;
    };
    auto posted = std::make_shared<Posted>();
    posted->bytes.assign(bytes);
    posted->frames = std::move(*frames);
    for (CoalescedFrame& f : posted->frames)
        f.frame =
            std::string_view(posted->bytes)
                .substr(static_cast<std::size_t>(f.frame.data() - bytes.data()), f.frame.size());
    io_.post([this, from, posted = std::move(posted)] {
        posted_bytes_.fetch_sub(posted->bytes.size());
        (void)deliver_coalesced(from, posted->frames);
    });
    return Status::ok_status();
}

Status GroupRouter::deliver_coalesced(NodeId from, const std::vector<CoalescedFrame>& frames) {
    Status first = Status::ok_status();
    for (const CoalescedFrame& f : frames) {
        Status s = dispatch(f.group, from, true, [&](TransportSink& sink) {
            return sink.on_messages(f.group, from, f.frame);
        });
        if (first.ok() && !s.ok()) first = s;
    }
    return first;
}

}  // namespace keel::runtime
