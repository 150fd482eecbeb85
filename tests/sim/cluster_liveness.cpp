// tests/sim/cluster_liveness.cpp — the host's side of quiescence
// (RunConfig::quiesce; docs/groups.md, "Quiescence and liveness"): one
// liveness ping per peer process per interval, whatever the number of
// groups, and peer_down fed to every group's core when a peer process
// stays silent; the idle check, which proves that a quiet cluster costs no
// Raft message, no tick and no more than one ping per process pair; and the
// failover check, which proves that every group elects a leader elsewhere
// once a leader's process is gone for good.  The rest of Cluster is in
// cluster.cpp, cluster_groups.cpp and cluster_workload.cpp.
#include "cluster.hpp"
#include "cluster_internal.hpp"

namespace keel::sim {

using cluster_detail::n_;
using cluster_detail::s_;
using raft::Message;
using raft::NodeId;

void Cluster::start_failover() {
    const SimNode* l = leader(*groups_.back());
    KEEL_ASSERT(l != nullptr, "liveness was reached: every group has a leader");
    failover_victim_ = l->id();
    failover_from_us_ = now_us();
    trace(std::string("FAILOVER: ") + n_(failover_victim_) +
          ", leader of the last group, crashes for good; every group must elect a leader "
          "elsewhere within " +
          format_time(params_.liveness_bound_us));
    crash(failover_victim_);
}

bool Cluster::failover_done() {
    std::string why_not;
    for (const auto& g : groups_) {
        const SimNode* l = leader(*g);
        if (l && l->id() != failover_victim_ &&
            l->core().term_at(l->core().commit_index()) == l->core().term())
            continue;
        why_not = "group " + s_(g->id) +
                  (l ? " has leader " + n_(l->id()) + " that has not committed in its term " +
                           s_(l->core().term())
                     : std::string(" has no leader"));
        break;
    }
    if (why_not.empty()) {
        trace(std::string("failover: every group leads and commits without ") +
              n_(failover_victim_) + ", " + format_time(now_us() - *failover_from_us_) +
              " after the crash");
        return true;
    }
    if (now_us() <= *failover_from_us_ + params_.liveness_bound_us) return false;
    violation(std::string("Failover: ") + format_time(params_.liveness_bound_us) + " after " +
              n_(failover_victim_) + " crashed, " + why_not + "; nodes: " + describe_nodes());
    return true;
}

// An election timeout at its longest: a peer silent that long is down.
std::uint64_t Cluster::liveness_timeout_us() const {
    return static_cast<std::uint64_t>(params_.election_ticks_max) * params_.tick_us;
}

// A process starts with every peer presumed up (heard now): it has no
// verdict of its own yet.
void Cluster::start_liveness(NodeId id, std::uint64_t incarnation) {
    for (NodeId peer : members()) {
        if (peer == id) continue;
        heard_us_[{id, peer}] = now_us();
        declared_down_.erase({id, peer});
    }
    schedule_process(id, incarnation, kLivenessPingTicks * params_.tick_us,
                     [this, id, incarnation] { liveness_round(id, incarnation); });
}

// One ping per peer process, whatever the number of groups.
void Cluster::liveness_round(NodeId id, std::uint64_t incarnation) {
    for (NodeId peer : members()) {
        if (peer == id) continue;
        // Only the link matters to the network (its partitions, drops, delays, order).
        Message ping;
        ping.from = id;
        ping.to = peer;
        const std::size_t pings = config_.bug == Bug::ping_per_group ? groups_.size() : 1;
        for (std::size_t i = 0; i < pings; ++i) {
            ++result_.liveness_pings;
            for (std::uint64_t d : network_.route(ping, now_us()))
                sched_.after(
                    d, [this, id, incarnation, peer] { deliver_ping(id, incarnation, peer); });
        }
        auto [heard, added] = heard_us_.try_emplace({id, peer}, now_us());  // a new member
        if (now_us() - heard->second <= liveness_timeout_us()) continue;
        // Again at every round while it stays silent: a core that went quiet
        // since (a delayed quiesce heartbeat) must hear it too.
        declare_down(id, peer, "silent for " + format_time(now_us() - heard->second));
    }
    // A process removed for good never answers again.  The runtime's Host
    // keeps pinging the processes it was opened with, so it declares such a
    // process down once silent for the timeout, and a follower left
    // quiescent under a leader that removed itself (and that it never heard
    // commit the removal) wakes.  Those pings are lost: they are not counted.
    for (NodeId gone : removed_) {
        if (gone == id) continue;
        auto [heard, added] = heard_us_.try_emplace({id, gone}, now_us());
        if (now_us() - heard->second <= liveness_timeout_us()) continue;
        declare_down(id, gone, "removed, silent for " + format_time(now_us() - heard->second));
    }
    schedule_process(id, incarnation, kLivenessPingTicks * params_.tick_us,
                     [this, id, incarnation] { liveness_round(id, incarnation); });
}

// The verdict goes to every group's replica on the observer's process.
void Cluster::declare_down(NodeId observer, NodeId peer, const std::string& why) {
    if (declared_down_.insert({observer, peer}).second) {
        ++result_.peers_declared_down;
        trace(std::string("host ") + n_(observer) + " declares " + n_(peer) + " down (" + why +
              ")");
    }
    for (SimNode* n : replicas(observer)) {
        n->peer_down(peer);
        if (config_.bug == Bug::verdict_to_one_group) break;
    }
}

void Cluster::deliver_ping(NodeId from, std::uint64_t incarnation, NodeId to) {
    if (network_.blocked(from, to) || !running_.count(to)) return;
    heard_us_[{to, from}] = now_us();
    // A process that restarted lost its replicas' state: the one that led
    // a group is gone as surely as if the process had stayed down.
    auto [known, first] = heard_incarnation_.try_emplace({to, from}, incarnation);
    if (!first && known->second < incarnation) {
        known->second = incarnation;
        declare_down(to, from, "restarted");
    }
    if (declared_down_.erase({to, from}))
        trace(std::string("host ") + n_(to) + " hears " + n_(from) + " again");
}

bool Cluster::counts_ticks(const SimGroup& g, NodeId id) const {
    const SimNode* l = leader(g);
    return !l || l->core().configuration().contains(id);
}

// Every live process pings every other member once a round: the bound does
// not depend on the number of groups.
std::uint64_t Cluster::liveness_pings_max(std::uint64_t window_us) const {
    const std::uint64_t processes = members().size();
    const std::uint64_t rounds = window_us / (kLivenessPingTicks * params_.tick_us) + 1;
    return processes * (processes - 1) * rounds;
}

Cluster::IdleCounts Cluster::idle_counts() const {
    return IdleCounts{result_.raft_messages, result_.core_ticks, result_.liveness_pings};
}

bool Cluster::idle_check_done() {
    const std::uint64_t idle_us = now_us() - *idle_from_us_;
    if (!idle_counts_at_warm_ && idle_us >= kIdleWarmupUs) idle_counts_at_warm_ = idle_counts();
    if (idle_us < kIdleWarmupUs + kIdleWindowUs) return false;
    const IdleCounts now = idle_counts();
    const std::uint64_t messages = now.raft_messages - idle_counts_at_warm_->raft_messages;
    const std::uint64_t ticks = now.core_ticks - idle_counts_at_warm_->core_ticks;
    const std::uint64_t pings = now.liveness_pings - idle_counts_at_warm_->liveness_pings;
    const std::string counts = s_(messages) + " Raft messages, " + s_(ticks) + " core ticks and " +
                               s_(pings) + " liveness pings in " + format_time(kIdleWindowUs) +
                               " after " + format_time(kIdleWarmupUs) + " idle";
    trace(std::string("idle check: ") + counts);
    if (messages != 0 || ticks != 0) {
        violation(std::string("Idle: ") + counts + "; nodes: " + describe_nodes());
    } else if (config_.quiesce && pings > liveness_pings_max(kIdleWindowUs)) {
        violation(std::string("Idle: ") + counts + ", more than one ping per process pair per " +
                  format_time(kLivenessPingTicks * params_.tick_us) + " (at most " +
                  s_(liveness_pings_max(kIdleWindowUs)) + ")");
    }
    return true;
}

}  // namespace keel::sim
