// tests/sim/cluster_workload.cpp — what the simulated world does to the
// cluster while it runs: clients proposing and reading, faults (partitions,
// crashes) and operators (membership changes, transfers, snapshots).  The
// rest of Cluster (start-up, delivery, phases) is in cluster.cpp, its
// groups' plumbing and observations in cluster_groups.cpp.  Clients and
// operators pick a group at random when there are several.
#include <algorithm>

#include "cluster.hpp"
#include "cluster_internal.hpp"
#include "keel/assert.hpp"

namespace keel::sim {

using cluster_detail::n_;
using cluster_detail::s_;
using raft::ConfigChange;
using raft::Configuration;
using raft::Entry;
using raft::Index;
using raft::Message;
using raft::MessageType;
using raft::NodeId;
using raft::Role;

// ---- clients, operators, faults --------------------------------------------

void Cluster::every(double rate_per_s, Rng* rng, std::function<void()> fn) {
    if (rate_per_s <= 0) return;
    const auto mean_us = static_cast<std::uint64_t>(1e6 / rate_per_s);
    sched_.after(rng->range(1, 2 * mean_us), [this, rate_per_s, rng, fn] {
        if (phase_ != Phase::faults) return;  // clients stop too once faults stop
        fn();
        every(rate_per_s, rng, fn);
    });
}

SimNode* Cluster::leader(const SimGroup& g) const {
    SimNode* best = nullptr;
    for (const auto& [id, n] : g.nodes) {
        if (n->core().role() == Role::leader && (!best || n->core().term() > best->core().term())) {
            best = n.get();
        }
    }
    return best;
}

SimNode* Cluster::client_target(const SimGroup& g, Rng& rng) const {
    if (g.nodes.empty()) return nullptr;
    if (SimNode* l = leader(g); l && rng.chance(params_.to_leader_p)) return l;
    auto it = g.nodes.begin();
    std::advance(it, static_cast<long>(rng.pick(g.nodes.size())));
    return it->second.get();
}

std::vector<NodeId> Cluster::members() const {
    std::vector<NodeId> out;
    for (const auto& [id, drive] : drives_) {
        if (!removed_.count(id)) out.push_back(id);
    }
    return out;
}

// Clients pick a group at random, then its leader or a random replica.
void Cluster::client_propose() {
    SimGroup& g = pick_group(rng_client_);
    SimNode* n = client_target(g, rng_client_);
    if (n) (void)propose_on(g, *n);
}

bool Cluster::propose(NodeId id) {
    SimGroup& g = *groups_.front();
    auto it = g.nodes.find(id);
    return it != g.nodes.end() && propose_on(g, *it->second);
}

bool Cluster::propose_on(SimGroup& g, SimNode& n) {
    std::string value = std::string("v") + s_(next_value_++) + ".";
    value.append(rng_client_.range(0, params_.proposal_bytes_max), 'x');
    ++g.history.stats().proposals;
    auto r = n.propose(value);
    if (!r.ok()) {
        trace(g,
              std::string("client: ") + n_(n.id()) + " refuses a write: " + r.status().to_string());
        return false;
    }
    trace(g, std::string("client: ") + n_(n.id()) + " accepts write " +
                 value.substr(0, value.find('.')) + " at " + s_(r->index) + "/t" + s_(r->term));
    g.history.proposal_accepted(r->index, r->term, now_us());
    return true;
}

void Cluster::client_read() {
    SimGroup& g = pick_group(rng_client_);
    SimNode* n = client_target(g, rng_client_);
    if (!n) return;
    const std::uint64_t id = next_request_id_++;
    ++g.history.stats().reads;
    g.history.read_started(
        id, ReadRecord{n->id(), n->incarnation(), g.checker.commit_known(), now_us()});
    trace(g, std::string("client: read ") + s_(id) + " at " + n_(n->id()) + " (committed so far " +
                 s_(g.checker.commit_known()) + ")");
    Status st = n->read_index(id);
    if (!st.ok()) {
        ReadRecord r;
        if (g.history.read_finished(id, &r)) ++g.history.stats().reads_failed;
        trace(g, std::string("client: read ") + s_(id) + " refused: " + st.to_string());
    }
}

void Cluster::fault_partition() {
    if (network_.partitioned()) return;
    auto all = members();
    if (all.size() < 2) return;
    if (params_.asymmetric_partitions && rng_fault_.chance(0.5)) {
        network_.partition_asymmetric(all);
    } else {
        std::vector<NodeId> side;
        for (NodeId id : all) {
            if (rng_fault_.chance(0.5)) side.push_back(id);
        }
        network_.partition(side, all);
    }
    trace(std::string("PARTITION ") + network_.describe_partition());
    sched_.after(rng_fault_.range(1, params_.partition_us_max), [this] {
        if (!network_.partitioned()) return;
        network_.heal();
        trace("PARTITION healed");
    });
}

void Cluster::fault_crash() {
    if (static_cast<int>(crashed_.size() + armed_.size()) >= params_.crashed_max ||
        running_.empty())
        return;
    auto it = running_.begin();
    std::advance(it, static_cast<long>(rng_fault_.pick(running_.size())));
    const NodeId id = *it;
    if (armed_.count(id)) return;
    if (!rng_fault_.chance(params_.crash_in_write_p)) return crash_for_a_while(id);
    // The crash lands inside a batch, at the process's next synchronous
    // write (or the one after) in any of its groups, before or after it
    // reaches the disk; if none comes soon, between events after all.
    const int skip = static_cast<int>(rng_fault_.range(0, 1));
    const bool write_first = rng_fault_.chance(0.5);
    for (SimNode* n : replicas(id)) n->arm_crash(skip, write_first);
    armed_.insert(id);
    trace(std::string("CRASH ") + n_(id) + " armed: at its " + (skip == 0 ? "next" : "second") +
          " synchronous write, " + (write_first ? "after" : "before") + " it");
    const std::uint64_t incarnation = incarnations_[id];
    sched_.after(kArmedCrashWaitUs, [this, id, incarnation] {
        if (!running_.count(id) || incarnations_[id] != incarnation) return;
        for (SimNode* n : replicas(id)) {
            if (n->crash_armed()) return crash_for_a_while(id);
        }
    });
}

void Cluster::fault_disk_stall() {
    if (running_.empty()) return;
    auto it = running_.begin();
    std::advance(it, static_cast<long>(rng_stall_.pick(running_.size())));
    const NodeId id = *it;
    if (drives_.at(id)->held()) return;
    hold_disk(id);
    sched_.after(rng_stall_.range(1, params_.disk_stall_us_max), [this, id] {
        if (phase_ == Phase::faults && drives_.at(id)->held()) release_disk(id);
    });
}

void Cluster::crash_for_a_while(NodeId id) {
    crash(id);
    sched_.after(rng_fault_.range(1, params_.down_us_max), [this, id] {
        if (phase_ == Phase::faults) restart(id);
    });
}

void Cluster::crash_dying() {
    while (!dying_.empty()) {
        const NodeId id = *dying_.begin();
        dying_.erase(dying_.begin());
        crash_for_a_while(id);
    }
}

// A membership change of a group picked at random: a learner added (on a
// process that runs other groups already, or a new one), promoted or
// removed, or a voter removed, between the swarm's voters_min and
// voters_max.  One change of a group at a time.
void Cluster::admin_change_membership() {
    SimGroup& g = pick_group(rng_admin_);
    SimNode* l = leader(g);
    if (!l) return;
    if (g.pending_change && g.pending_change->index > g.checker.commit_known()) return;
    const Configuration& config = l->core().configuration();
    const auto voters = config.voters();
    const auto learners = config.learners();
    ConfigChange change;
    const int nvoters = static_cast<int>(voters.size());
    if (!learners.empty()) {
        change.node = learners[rng_admin_.pick(learners.size())];
        change.kind = (nvoters < params_.voters_max && rng_admin_.chance(0.8))
                          ? ConfigChange::Kind::promote
                          : ConfigChange::Kind::remove;
    } else if (nvoters < params_.voters_max &&
               (nvoters <= params_.voters_min || rng_admin_.chance(0.5))) {
        change.kind = ConfigChange::Kind::add_learner;
    } else if (nvoters > params_.voters_min) {
        change.kind = ConfigChange::Kind::remove;
        change.node = voters[rng_admin_.pick(voters.size())];
    } else {
        return;
    }
    const bool adding = change.kind == ConfigChange::Kind::add_learner;
    // The new member's replica exists (empty) before it is named, so the
    // leader can reach it.
    if (adding) change.node = process_to_add(g);
    static const char* kKind[] = {"?", "add_voter", "add_learner", "promote", "remove"};
    auto r = l->change_membership(change);
    ++result_.config_changes;
    trace(g, std::string("admin: ") + n_(l->id()) + " " + kKind[static_cast<int>(change.kind)] +
                 " " + n_(change.node) + ": " +
                 (r.ok() ? std::string("appended at ") + s_(r->index) + "/t" + s_(r->term)
                         : r.status().to_string()));
    if (r.ok()) {
        g.pending_change = *r;
    } else if (adding) {
        // Never named: it will never be contacted.
        g.nodes.erase(change.node);
        g.checker.node_stopped(change.node);
        g.hosts.erase(change.node);
        g.left.insert(change.node);
        bool hosts_any = false;
        for (const auto& other : groups_) hosts_any = hosts_any || other->hosts.count(change.node);
        if (!hosts_any) {
            removed_.insert(change.node);
            running_.erase(change.node);
        }
    }
}

NodeId Cluster::process_to_add(SimGroup& g) {
    if (config_.groups > 1) {
        // A process that runs other groups and never ran this one.
        std::vector<NodeId> others;
        for (NodeId id : members())
            if (!g.hosts.count(id) && !g.left.count(id)) others.push_back(id);
        if (!others.empty() && rng_admin_.chance(0.7)) {
            const NodeId id = others[rng_admin_.pick(others.size())];
            g.disks[id] = &drives_.at(id)->group(g.id);
            if (config_.bug == Bug::joiner_bootstraps_alone) {
                trace(g, std::string("BUG joiner_bootstraps_alone: ") + n_(id) +
                             " founds the group alone");
                Configuration alone;
                alone.members[id] = raft::MemberInfo{};
                g.disks[id]->format(raft::bootstrap(alone));
            }
            g.hosts.insert(id);
            if (running_.count(id)) start_replica(g, id, incarnations_[id]);
            return id;  // a crashed one starts it when it restarts
        }
    }
    const NodeId id = next_node_id_++;
    drives_[id] =
        std::make_unique<SimDrive>(params_, config_.bug == Bug::lying_disk, rng_disk_.split(id),
                                   config_.groups > 1, config_.bug == Bug::group_commit_early_ack);
    g.disks[id] = &drives_[id]->group(g.id);
    g.hosts.insert(id);
    if (phase_ == Phase::liveness) drives_[id]->calm(calm_latency_max_us());
    start_node(id);
    return id;
}

void Cluster::admin_transfer() {
    SimGroup& g = pick_group(rng_admin_);
    SimNode* l = leader(g);
    if (!l) return;
    auto voters = l->core().configuration().voters();
    voters.erase(std::remove(voters.begin(), voters.end(), l->id()), voters.end());
    if (voters.empty()) return;
    const NodeId target = voters[rng_admin_.pick(voters.size())];
    Status st = l->transfer_leadership(target);
    trace(g, std::string("admin: ") + n_(l->id()) + " transfers leadership to " + n_(target) +
                 ": " + st.to_string());
}

void Cluster::admin_snapshot() {
    SimGroup& g = pick_group(rng_admin_);
    if (g.nodes.empty()) return;
    auto it = g.nodes.begin();
    std::advance(it, static_cast<long>(rng_admin_.pick(g.nodes.size())));
    it->second->take_snapshot();
}

}  // namespace keel::sim
