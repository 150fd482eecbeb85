// What status() reports.  See status_board.hpp.
#include "runtime/status_board.hpp"
#include <fmt/format.h>

namespace keel::runtime {

Role public_role(raft::Role role) {
    switch (role) {
        case raft::Role::follower:
            return Role::follower;
        case raft::Role::pre_candidate:
            return Role::pre_candidate;
        case raft::Role::candidate:
            return Role::candidate;
        case raft::Role::leader:
            return Role::leader;
    }
    KEEL_ASSERT(false, "a core role has a public name");
    return Role::follower;
}

void StatusBoard::publish(const raft::Core& core) {
    MutexLock lock(mu_);
    status_.role = public_role(core.role());
    status_.term = core.term();
    status_.leader_id = core.leader();
    status_.commit_index = core.commit_index();
    status_.first_index = core.first_index();
    status_.last_index = core.last_index();
    // A quiescent group still has other members: it is not single.
    status_.mode = core.needs_ticks() || core.quiescent() ? Mode::cluster : Mode::single;
    status_.quiescent = core.quiescent();
    // After every batch of the core's: no copy of its progress (one look-up
    // per member; decision 0036).
    const bool leads = core.role() == raft::Role::leader && status_.members.size() > 1;
    for (MemberStatus& m : status_.members) {
        m.match_index = leads ? core.match_index(m.spec.id) : 0;
        m.replicating = leads && core.replicating(m.spec.id);
    }
}

namespace {

// The index of a message's kind in StatusBoard::received_ (MessageCounts' order).
std::size_t received_kind(const raft::Message& m) {
    switch (m.type) {
        case raft::MessageType::append:
            return 0;
        case raft::MessageType::append_response:
            return 1;
        case raft::MessageType::heartbeat:
            return m.context == raft::kCommitNoticeContext ? 4 : 2;
        case raft::MessageType::heartbeat_response:
            return 3;
        case raft::MessageType::vote:
        case raft::MessageType::pre_vote:
            return 5;
        case raft::MessageType::vote_response:
        case raft::MessageType::pre_vote_response:
            return 6;
        case raft::MessageType::snapshot:
        case raft::MessageType::timeout_now:
            return 7;
    }
    return 7;
}

}  // namespace

void StatusBoard::count_received(const raft::Message& m) {
    std::atomic<std::uint64_t>& n = received_[received_kind(m)];
    n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

MessageCounts StatusBoard::received() const {
    auto at = [this](std::size_t k) { return received_[k].load(std::memory_order_relaxed); };
    return MessageCounts{.appends = at(0),
                         .append_answers = at(1),
                         .heartbeats = at(2),
                         .heartbeat_answers = at(3),
                         .notices = at(4),
                         .votes = at(5),
                         .vote_answers = at(6),
                         .other = at(7)};
}

void StatusBoard::set_members(std::vector<MemberStatus> members) {
    MutexLock lock(mu_);
    status_.members = std::move(members);
}

void StatusBoard::set_cluster_id(std::string hex) {
    MutexLock lock(mu_);
    status_.cluster_id = std::move(hex);
}

void StatusBoard::set_failure(std::string why) {
    MutexLock lock(mu_);
    status_.failure = std::move(why);
}

void StatusBoard::raise_snapshot_index(raft::Index index) {
    MutexLock lock(mu_);
    status_.snapshot_index = std::max(status_.snapshot_index, index);
}

void StatusBoard::set_snapshot_index(raft::Index index) {
    MutexLock lock(mu_);
    status_.snapshot_index = index;
}

NodeStatus StatusBoard::read() const {
    NodeStatus s;
    {
        MutexLock lock(mu_);
        s = status_;
    }
    MutexLock lock(rejected_mu_);
    for (const auto& [reason, count] : rejected_) s.peer_messages_rejected[reason] += count;
    return s;
}

Result<MemberSpec> StatusBoard::member(raft::NodeId id) const {
    MutexLock lock(mu_);
    for (const MemberStatus& m : status_.members)
        if (m.spec.id == id) return m.spec;
    return Status(ErrorCode::not_found, fmt::format("no member {}", id));
}

std::uint64_t StatusBoard::count_rejection(std::string_view reason) {
    MutexLock lock(rejected_mu_);
    auto it = rejected_.find(reason);
    if (it == rejected_.end()) it = rejected_.emplace(std::string(reason), 0).first;
    return ++it->second;
}

}  // namespace keel::runtime
