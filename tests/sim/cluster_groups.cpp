// tests/sim/cluster_groups.cpp — the Raft groups of a cluster: what each
// group's replicas see of the simulation (SimGroup::Host), what the cluster
// observes of them (applied configurations, reads), and the helpers that name
// and find a group's replicas.  With one group (RunConfig::groups = 1)
// nothing here adds a draw or a trace line to a run.  The rest of Cluster is
// in cluster.cpp, cluster_workload.cpp and cluster_liveness.cpp.
#include "cluster.hpp"
#include "cluster_internal.hpp"

namespace keel::sim {

using cluster_detail::n_;
using cluster_detail::s_;
using raft::Entry;
using raft::Index;
using raft::Message;
using raft::NodeId;

// Checkers, the runtime contract and observations of a group: all safety,
// named by their group when there are several.
void Cluster::violation(const SimGroup& g, const std::string& what) {
    report_violation(config_.groups == 1 ? what : "g" + s_(g.id) + ": " + what, true);
}

void Cluster::trace(const SimGroup& g, const std::string& line) {
    if (config_.groups == 1) return trace(line);
    trace("g" + s_(g.id) + " " + line);
}

SimGroup& Cluster::pick_group(Rng& rng) {
    if (groups_.size() == 1) return *groups_.front();
    return *groups_[rng.pick(groups_.size())];
}

std::vector<SimNode*> Cluster::replicas(NodeId id) const {
    std::vector<SimNode*> out;
    for (const auto& g : groups_) {
        if (auto it = g->nodes.find(id); it != g->nodes.end()) out.push_back(it->second.get());
    }
    return out;
}

// ---- observations -----------------------------------------------------------

void Cluster::on_applied(SimGroup& g, NodeId node, const Entry& entry, const ValueLog& state) {
    g.checker.on_applied(node, entry, state);
    if (entry.type != raft::EntryType::config || entry.index <= g.committed_config_index) return;
    // A newly committed configuration: the replicas of members it dropped
    // stop (soon, and never inside this node's own call stack), and a
    // process with it, once it hosts no group (leave_group).
    g.committed_config_index = entry.index;
    auto config = raft::decode_configuration(entry.data);
    if (!config) {
        violation(
            g, n_(node) + " applies a config entry " + s_(entry.index) + " that does not decode");
        return;
    }
    trace(g, std::string("committed configuration at ") + s_(entry.index) + ": " +
                 raft::to_string(*config));
    for (NodeId id : g.ever_member) {
        if (!config->contains(id) && !g.left.count(id)) {
            sched_.after(rng_admin_.range(0, 200'000), [this, &g, id] { leave_group(g, id); });
        }
    }
    for (const auto& [id, info] : config->members) g.ever_member.insert(id);
}

void Cluster::on_read_served(SimGroup& g, NodeId node, std::uint64_t request_id, Index read_index,
                             const ValueLog& state) {
    ReadRecord r;
    if (!g.history.read_finished(request_id, &r)) {
        violation(g, n_(node) + " serves read " + s_(request_id) + " that nobody asked for");
        return;
    }
    ++g.history.stats().reads_served;
    trace(g, n_(node) + " serves read " + s_(request_id) + " at index " + s_(read_index) +
                 " (applied " + s_(state.applied()) + ", started when " + s_(r.commit_at_start) +
                 " was committed)");
    g.checker.on_read_served(node, read_index, r.commit_at_start, state);
}

void Cluster::on_read_failed(SimGroup& g, std::uint64_t request_id) {
    ReadRecord r;
    if (g.history.read_finished(request_id, &r)) ++g.history.stats().reads_failed;
}

void Cluster::schedule_disk_done(std::uint64_t group, NodeId node, std::uint64_t incarnation,
                                 std::uint64_t op_id, std::uint64_t delay_us) {
    sched_.after(delay_us, [this, group, node, incarnation, op_id] {
        SimGroup& g = *groups_.at(group);
        if (auto it = g.nodes.find(node); it != g.nodes.end()) {
            if (it->second->incarnation() == incarnation) it->second->disk_done(op_id);
            return;
        }
        if (!running_.count(node) || incarnations_[node] != incarnation) return;
        // The group's replica left this process, which runs on.
        SimDrive& drive = *drives_.at(node);
        const DiskOp* wal_head = drive.head(false);
        if (wal_head && wal_head->id == op_id && drive.held()) {
            drive.set_stalled();  // whoever releases the drive schedules it again
            return;
        }
        DiskOp op;
        if (auto error = drive.complete(op_id, &op)) violation(g, n_(node) + " storage: " + *error);
        if (const DiskOp* next = drive.head(op.kind == DiskOpKind::snapshot_file)) {
            const std::uint64_t now = now_us();
            schedule_disk_done(next->group, node, incarnation, next->id,
                               next->done_us > now ? next->done_us - now : 0);
        }
    });
}

// ---- a group's replicas see the simulation through its Host ---------------------

std::uint64_t SimGroup::Host::now_us() const {
    return cluster_.now_us();
}
void SimGroup::Host::schedule_node(NodeId node, std::uint64_t incarnation, std::uint64_t delay_us,
                                   std::function<void(SimNode&)> fn) {
    cluster_.schedule_node(group_, node, incarnation, delay_us, std::move(fn));
}
void SimGroup::Host::schedule_disk_done(std::uint64_t group, NodeId node, std::uint64_t incarnation,
                                        std::uint64_t op_id, std::uint64_t delay_us) {
    cluster_.schedule_disk_done(group, node, incarnation, op_id, delay_us);
}
void SimGroup::Host::send(const Message& m, std::string snapshot_data) {
    cluster_.send(group_, m, std::move(snapshot_data));
}
void SimGroup::Host::trace(const std::string& line) {
    cluster_.trace(group_, line);
}
void SimGroup::Host::violation(const std::string& what) {
    cluster_.violation(group_, what);
}
void SimGroup::Host::crash_requested(NodeId node) {
    cluster_.crash_requested(node);
}
void SimGroup::Host::on_entries(NodeId node, bool leader, const std::vector<Entry>& entries) {
    group_.checker.on_entries(node, leader, entries);
}
void SimGroup::Host::on_snapshot_installed(NodeId node, bool leader, const raft::SnapshotMeta& meta,
                                           const ValueLog& state) {
    cluster_.count_snapshot_installed();
    group_.checker.on_snapshot_installed(node, leader, meta, state);
}
void SimGroup::Host::on_snapshot_taken(NodeId node, const raft::SnapshotMeta& meta,
                                       const ValueLog& state) {
    group_.checker.on_snapshot_taken(node, meta, state);
}
void SimGroup::Host::on_applied(NodeId node, const Entry& entry, const ValueLog& state) {
    cluster_.on_applied(group_, node, entry, state);
}
void SimGroup::Host::on_read_served(NodeId node, std::uint64_t request_id, Index read_index,
                                    const ValueLog& state) {
    cluster_.on_read_served(group_, node, request_id, read_index, state);
}
void SimGroup::Host::on_read_failed(NodeId, std::uint64_t request_id) {
    cluster_.on_read_failed(group_, request_id);
}

}  // namespace keel::sim
