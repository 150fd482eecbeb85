// The leader rebalancer's thread.  See group_balancer.hpp.
#include "group_balancer.hpp"

#include <set>

#include "leader_balance.hpp"

namespace keel::daemon {

void GroupBalancer::start(std::chrono::milliseconds interval) {
    thread_ = std::thread([this, interval] {
        std::unique_lock lock(mu_);
        while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
            lock.unlock();
            round();
            lock.lock();
        }
    });
}

void GroupBalancer::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::size_t GroupBalancer::round() {
    ++rounds_;
    if (groups_.empty() || in_flight_.load() != 0) return 0;
    std::set<NodeId> unreachable;
    {
        std::lock_guard lock(failed_mu_);
        for (const auto& [id, until] : failed_until_)
            if (until > rounds_) unreachable.insert(id);
    }
    std::vector<GroupView> views;
    views.reserve(groups_.size());
    NodeId self = 0;
    for (const KvGroup& group : groups_) {
        const NodeStatus s = group.node->status();
        if (!s.failure.empty()) return 0;
        self = s.id;
        views.push_back(
            GroupView{group.id, s.role == Role::leader, s.leader_id, s.last_index, s.members});
    }
    const std::vector<LeaderMove> moves =
        plan_leader_moves(views, self, kMovesPerRoundMax, unreachable);
    in_flight_ += moves.size();
    const std::uint64_t until = rounds_ + kFailedTargetRounds;
    for (const LeaderMove& move : moves) {
        ++moves_;
        groups_[move.group - 1].node->transfer_leadership_async(
            move.to, [this, to = move.to, until](Status s) {
                if (!s.ok()) {
                    ++failed_;
                    std::lock_guard lock(failed_mu_);
                    failed_until_[to] = until;
                }
                --in_flight_;
            });
    }
    return moves.size();
}

}  // namespace keel::daemon
