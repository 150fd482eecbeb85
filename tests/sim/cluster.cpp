#include "cluster.hpp"
#include "cluster_internal.hpp"

#include <algorithm>

#include "keel/assert.hpp"

namespace keel::sim {

using raft::ConfigChange;
using raft::Configuration;
using raft::Entry;
using raft::Index;
using raft::Message;
using raft::MessageType;
using raft::NodeId;
using raft::Role;

using cluster_detail::n_;
using cluster_detail::s_;

namespace {

// Stream ids for Rng::split, one per concern.
enum Stream : std::uint64_t { kNet = 1, kClock, kClient, kFault, kAdmin, kDisk, kNode, kStall };

}  // namespace

Cluster::Cluster(std::uint64_t seed, const RunConfig& config, bool echo_trace)
    : seed_(seed),
      config_(config),
      params_(config.scenario == Scenario::none ? draw_swarm(seed, config)
                                                : scenario_params(config.scenario)),
      root_(seed),
      rng_net_(root_.split(kNet)),
      rng_clock_(root_.split(kClock)),
      rng_client_(root_.split(kClient)),
      rng_fault_(root_.split(kFault)),
      rng_admin_(root_.split(kAdmin)),
      rng_disk_(root_.split(kDisk)),
      rng_node_(root_.split(kNode)),
      rng_stall_(root_.split(kStall)),
      network_(params_, config.bug, rng_net_) {
    trace_.set_echo(echo_trace);
    KEEL_ASSERT(config.groups >= 1, "a cluster runs at least one group");
    KEEL_ASSERT(!config.failover_check || (config.nodes >= 3 && !config.membership),
                "a failover needs a majority left over and a fixed configuration");
    KEEL_ASSERT(config.groups == 1 || config.scenario == Scenario::none,
                "several groups per process run without scripts");
    for (int i = 0; i < config.groups; ++i) {
        const auto id = static_cast<std::uint64_t>(i);
        groups_.push_back(std::make_unique<SimGroup>(
            *this, id, [this, id](const std::string& what) { violation(*groups_[id], what); }));
    }
    if (config.scenario != Scenario::none) {
        KEEL_ASSERT(config.nodes == scenario_nodes(config.scenario) && !config.membership,
                    "a scenario fixes the cluster it runs on");
        script_.emplace(make_script(config.scenario));
    }
}

Cluster::~Cluster() = default;

namespace {

// Liveness, storms, scripts gone astray, idle costs and failovers are not
// safety properties; everything else (the checkers, the runtime contract) is.
bool is_safety(const std::string& what) {
    for (const char* kind : {"Liveness", "Storm", "Scenario", "Idle", "Failover"}) {
        if (what.rfind(kind, 0) == 0) return false;
    }
    return true;
}

}  // namespace

void Cluster::violation(const std::string& what) {
    report_violation(what, is_safety(what));
}

void Cluster::report_violation(const std::string& what, bool safety) {
    if (violation_) return;
    violation_ = what;
    safety_violation_ = safety;
    trace(std::string("VIOLATION: ") + what);
}

raft::Options Cluster::options_for(const SimGroup& g, NodeId id) {
    raft::Options o;
    o.id = id;
    o.election_ticks_min = params_.election_ticks_min;
    o.election_ticks_max = params_.election_ticks_max;
    o.heartbeat_ticks = params_.heartbeat_ticks;
    o.pre_vote = params_.pre_vote;
    o.check_quorum = params_.check_quorum;
    o.lease_reads = params_.lease_reads;
    o.unsafe_commit_older_terms = config_.bug == Bug::commit_older_term;
    o.unsafe_forget_unstored = config_.bug == Bug::forget_unstored;
    o.max_inflight_messages = params_.max_inflight_messages;
    o.max_message_bytes = params_.max_message_bytes;
    o.snapshot_trailing_entries = params_.snapshot_trailing_entries;
    o.random_seed = hash_mix(hash_mix(seed_, id), incarnations_[id]);
    if (g.id > 0) o.random_seed = hash_mix(o.random_seed, g.id);
    if (config_.quiesce) {
        o.quiesce = true;
        o.quiesce_after_ticks =
            static_cast<int>(1 + seed_ % 6);  // not a swarm draw: seeds keep their runs
    }
    if (config_.scenario != Scenario::none) scenario_options(config_.scenario, &o);
    return o;
}

void Cluster::start_node(NodeId id) {
    const std::uint64_t incarnation = ++incarnations_[id];
    running_.insert(id);
    for (auto& g : groups_)
        if (g->hosts.count(id)) start_replica(*g, id, incarnation);
    // The constructors may already have produced actions (a lone voter leads at once).
    schedule_tick(id, incarnation);
    if (config_.quiesce) start_liveness(id, incarnation);
}

void Cluster::start_replica(SimGroup& g, NodeId id, std::uint64_t incarnation) {
    SimDisk& disk = *g.disks.at(id);
    g.checker.node_started(id, disk.restored());
    trace(g, n_(id) + " starts (incarnation " + s_(incarnation) + ", term " +
                 s_(disk.durable().hard_state().term) + ", log to " +
                 s_(disk.durable().last_index()) + ")");
    if (!clock_rate_.count(id)) {
        clock_rate_[id] = 1.0 + params_.skew * (2 * rng_clock_.unit() - 1);
    }
    std::uint64_t stream = hash_mix(id, incarnation);
    if (g.id > 0) stream = hash_mix(stream, g.id);
    g.nodes[id] = std::make_unique<SimNode>(g.host, disk, options_for(g, id), incarnation, config_,
                                            params_, rng_node_.split(stream));
}

void Cluster::schedule_process(NodeId id, std::uint64_t incarnation, std::uint64_t delay_us,
                               std::function<void()> fn) {
    sched_.after(delay_us, [this, id, incarnation, fn = std::move(fn)] {
        if (running_.count(id) && incarnations_[id] == incarnation) fn();
    });
}

// One timer per process ticks every group's core, in group order.
void Cluster::schedule_tick(NodeId id, std::uint64_t incarnation) {
    const auto period =
        static_cast<std::uint64_t>(static_cast<double>(params_.tick_us) * clock_rate_[id]);
    schedule_process(id, incarnation, std::max<std::uint64_t>(period, 1), [this, id, incarnation] {
        for (auto& g : groups_) {
            auto it = g->nodes.find(id);
            if (it != g->nodes.end() && it->second->tick() && counts_ticks(*g, id))
                ++result_.core_ticks;
        }
        schedule_tick(id, incarnation);
    });
}

void Cluster::schedule_node(SimGroup& g, NodeId node, std::uint64_t incarnation,
                            std::uint64_t delay_us, std::function<void(SimNode&)> fn) {
    sched_.after(delay_us, [&g, node, incarnation, fn = std::move(fn)] {
        auto it = g.nodes.find(node);
        if (it != g.nodes.end() && it->second->incarnation() == incarnation) fn(*it->second);
    });
}

void Cluster::send(SimGroup& g, const Message& m, std::string snapshot_data) {
    if (counts_ticks(g, m.from)) ++result_.raft_messages;
    const auto delays = network_.route(m, now_us());
    if (delays.empty()) {
        trace(g, n_(m.from) + "->" + n_(m.to) + " lost " + raft::message_type_name(m.type));
        if (m.type == MessageType::snapshot) {
            const NodeId from = m.from, to = m.to;
            const std::uint64_t inc = incarnations_[from];
            schedule_node(g, from, inc, params_.delay_max_us,
                          [to](SimNode& n) { n.report_snapshot(to, false); });
        }
        return;
    }
    for (std::uint64_t d : delays) {
        sched_.after(d, [this, &g, m, snapshot_data] { deliver(g, m, snapshot_data); });
    }
}

// The network is the processes': a partition or a crash cuts every group's
// messages between them alike.
void Cluster::deliver(SimGroup& g, const Message& m, const std::string& data) {
    const bool blocked = network_.blocked(m.from, m.to);
    auto target = g.nodes.find(m.to);
    const bool up = target != g.nodes.end();
    if (m.type == MessageType::snapshot) {
        // The sender's streaming finishes now, one way or the other.
        auto sender = g.nodes.find(m.from);
        if (sender != g.nodes.end()) sender->second->report_snapshot(m.to, !blocked && up);
    }
    if (blocked || !up) {
        trace(g, n_(m.from) + "->" + n_(m.to) + " undeliverable " +
                     raft::message_type_name(m.type) + (blocked ? " (partition)" : " (down)"));
        if (params_.report_unreachable) {
            auto sender = g.nodes.find(m.from);
            if (sender != g.nodes.end()) sender->second->report_unreachable(m.to);
        }
        return;
    }
    Message copy = m;
    if (network_.tamper(copy))
        trace(std::string("BUG ") + std::string(bug_name(config_.bug)) +
              " tampers with the next message");
    trace(g, std::string("deliver ") + raft::to_string(copy));
    target->second->deliver(copy, data);
}

void Cluster::crash_requested(NodeId node) {
    dying_.insert(node);
    // The whole process stopped: its other groups do nothing more either.
    for (SimNode* n : replicas(node)) n->stop();
}

// Every group of the process at once: one drive, one incarnation.
void Cluster::crash(NodeId id) {
    if (!running_.count(id)) return;
    trace(std::string("CRASH ") + n_(id) + " (unflushed writes lost)");
    running_.erase(id);
    for (auto& g : groups_) g->nodes.erase(id);
    armed_.erase(id);
    drives_.at(id)->crash();
    for (auto& g : groups_)
        if (g->hosts.count(id)) g->checker.node_crashed(id, g->disks.at(id)->restored());
    crashed_.insert(id);
    ++result_.crashes;
}

void Cluster::restart(NodeId id) {
    if (!crashed_.count(id) || removed_.count(id)) return;
    crashed_.erase(id);
    start_node(id);
}

void Cluster::stop_removed(NodeId id) {
    if (removed_.count(id)) return;
    trace(std::string("STOP ") + n_(id) + " (removed from the committed configuration)");
    removed_.insert(id);
    crashed_.erase(id);
    running_.erase(id);
    for (auto& g : groups_) {
        g->nodes.erase(id);
        g->checker.node_stopped(id);
        if (g->hosts.erase(id)) g->left.insert(id);
    }
}

void Cluster::leave_group(SimGroup& g, NodeId id) {
    if (config_.groups == 1) return stop_removed(id);  // the process's only group
    if (!g.hosts.count(id)) return;
    trace(g, std::string("STOP ") + n_(id) +
                 "'s replica (removed from the committed "
                 "configuration)");
    g.hosts.erase(id);
    g.left.insert(id);
    g.nodes.erase(id);
    g.checker.node_stopped(id);
    for (const auto& other : groups_)
        if (other->hosts.count(id)) return;
    stop_removed(id);  // it hosts no group any more
}

// ---- what a script sees and does ------------------------------------------------

const raft::Core* Cluster::core(NodeId id) const {
    const auto& nodes = groups_.front()->nodes;
    auto it = nodes.find(id);
    return it == nodes.end() ? nullptr : &it->second->core();
}

void Cluster::cut(NodeId a, NodeId b) {
    network_.cut(a, b);
    trace(std::string("PARTITION ") + network_.describe_partition());
}

void Cluster::reconnect() {
    network_.heal();
    trace("PARTITION healed");
}

void Cluster::hold_disk(NodeId id) {
    drives_.at(id)->hold();
    trace(std::string("HOLD ") + n_(id) + "'s WAL: nothing on it completes");
}

// A completion that came while the drive was held runs again, on the
// replica of the group whose write it is.
void Cluster::release_disk(NodeId id) {
    trace(std::string("RELEASE ") + n_(id) + "'s WAL");
    SimDrive& drive = *drives_.at(id);
    drive.release();
    if (!running_.count(id)) return;
    const DiskOp* head = drive.head(false);
    SimGroup& g = *groups_.at(head ? head->group : 0);
    auto it = g.nodes.find(id);
    // A write of a replica a membership change stopped: the drive completes it.
    const bool closed = it == g.nodes.end() && head != nullptr;
    if (!closed && (it == g.nodes.end() || it->second->stopped())) return;
    if (!drive.take_stalled()) return;
    schedule_disk_done(g.id, id, incarnations_[id], head->id, SimNode::kReleasedWriteUs);
}

// ---- phases -------------------------------------------------------------------

// Raft is live only while an election round fits in the election timeout
// (§5.6: broadcastTime << electionTimeout).  A swarm may draw links and disks
// slower than that (seed 20519 of --nodes 5: up to 50 ms one way and 31 ms per
// fsync against a 50 ms timeout; 30 s of split votes, term 695).  Like the
// other faults, that slowness heals: from now on a round (the candidate's
// write, the request, the voter's write, the answer) takes at most half the
// shortest election timeout.
std::uint64_t Cluster::calm_latency_max_us() const {
    const double election_min_us = static_cast<double>(params_.election_ticks_min) *
                                   static_cast<double>(params_.tick_us) * (1.0 - params_.skew);
    return static_cast<std::uint64_t>(election_min_us / 8);
}

void Cluster::heal() {
    phase_ = Phase::liveness;
    heal_us_ = now_us();
    network_.heal();
    network_.calm(calm_latency_max_us());
    for (auto& [id, drive] : drives_) drive->calm(calm_latency_max_us());
    trace("HEAL: faults stop; crashed members restart; a leader must commit everything, never " +
          format_time(params_.liveness_bound_us) + " without a commit, within " +
          format_time(params_.liveness_cap_us));
    for (NodeId id : armed_) {
        for (SimNode* n : replicas(id)) n->arm_crash(-1, false);
    }
    armed_.clear();
    for (const auto& [id, drive] : drives_) {
        if (drive->held()) release_disk(id);
    }
    const std::set<NodeId> down = crashed_;
    for (NodeId id : down) restart(id);
    for (auto& g : groups_) liveness_probe(*g);
}

void Cluster::liveness_probe(SimGroup& g) {
    // One probe write must commit in every group; retried until a leader takes it.
    if (g.probe_committed) return;
    if (g.probe && g.probe->index <= g.checker.commit_known()) {
        if (g.checker.committed_term(g.probe->index) == g.probe->term) {
            g.probe_committed = true;
            return;
        }
        g.probe.reset();  // overwritten: try again
    }
    if (SimNode* l = leader(g); g.probe && l && l->core().term() > g.probe->term &&
                                l->core().term_at(g.probe->index) != g.probe->term) {
        g.probe.reset();  // a later leader lacks it: it can never commit
    }
    if (!g.probe) {
        if (SimNode* l = leader(g)) {
            auto r = l->propose("probe");
            if (r.ok()) {
                g.probe = *r;
                trace(g, std::string("liveness probe appended at ") + s_(r->index) + "/t" +
                             s_(r->term));
            }
        }
    }
    sched_.after(100'000, [this, &g] { liveness_probe(g); });
}

bool Cluster::liveness_reached(const SimGroup& g, std::string* why_not) const {
    const std::string group = config_.groups == 1 ? "" : "group " + s_(g.id) + ": ";
    SimNode* l = leader(g);
    if (!l) {
        *why_not = group + "no leader";
        return false;
    }
    const raft::Core& c = l->core();
    if (!g.probe_committed) {
        *why_not = group + "the probe write has not committed (leader " + n_(l->id()) +
                   ", commit " + s_(c.commit_index()) + ", last " + s_(c.last_index()) + ")";
        return false;
    }
    if (c.commit_index() != c.last_index() || c.term_at(c.commit_index()) != c.term()) {
        *why_not = group + "leader " + n_(l->id()) + " has not committed its log (commit " +
                   s_(c.commit_index()) + ", last " + s_(c.last_index()) + ")";
        return false;
    }
    for (const auto& [id, info] : c.configuration().members) {
        auto it = g.nodes.find(id);
        if (it == g.nodes.end()) {
            *why_not = group + "member " + n_(id) + " is not running";
            return false;
        }
        if (it->second->state().applied() < c.commit_index()) {
            *why_not = group + "member " + n_(id) + " applied " +
                       s_(it->second->state().applied()) + " of " + s_(c.commit_index());
            return false;
        }
    }
    return true;
}

std::string Cluster::describe_nodes() const {
    std::string out;
    for (const auto& g : groups_) {
        for (const auto& [id, n] : g->nodes) {
            const raft::Core& c = n->core();
            if (!out.empty()) out += "; ";
            if (config_.groups > 1) out += "g" + s_(g->id) + " ";
            out += n_(id) + " " + raft::role_name(c.role()) + " t" + s_(c.term()) + " commit " +
                   s_(c.commit_index()) + " last " + s_(c.last_index()) + " config " +
                   raft::to_string(c.configuration()) +
                   (c.needs_ticks() ? "" : " (needs no ticks)") +
                   (c.quiescent() ? " (quiescent)" : "");
            const SimDisk& d = *g->disks.at(id);
            if (n->gated() > 0 || !d.wal_idle()) {
                out += " [" + s_(n->gated()) + " messages wait for write " + s_(n->gated_on()) +
                       "; " + s_(d.wal_queue().size()) + " WAL writes queued, the last " +
                       s_(d.drive().wal_last_submitted()) + (d.held() ? ", held" : "") + "]";
            }
        }
    }
    return out;
}

// A scripted run: the script's steps are the fault phase; once they are all
// done, everything heals as after a swarm's fault phase.
void Cluster::poll_script() {
    if (auto off = script_->poll(*this)) {
        violation(*off);
    } else if (script_->done()) {
        heal();
    }
}

void Cluster::bootstrap() {
    // Founding members all start from raft::bootstrap (entry 1 = the
    // configuration), in every group.
    Configuration initial;
    for (int i = 0; i < config_.nodes; ++i) initial.members[next_node_id_++] = raft::MemberInfo{};
    const raft::RestoredState boot = raft::bootstrap(initial);
    for (auto& g : groups_) g->checker.bootstrapped(boot);
    for (const auto& [id, info] : initial.members) {
        drives_[id] = std::make_unique<SimDrive>(params_, config_.bug == Bug::lying_disk,
                                                 rng_disk_.split(id), config_.groups > 1,
                                                 config_.bug == Bug::group_commit_early_ack);
        for (auto& g : groups_) {
            SimDisk& disk = drives_[id]->group(g->id);
            disk.format(boot);
            g->disks[id] = &disk;
            g->hosts.insert(id);
            g->ever_member.insert(id);
        }
    }
    trace(std::string("seed ") + s_(seed_) + ": " + params_.describe() +
          (config_.groups == 1 ? "" : " groups " + s_(static_cast<std::uint64_t>(config_.groups))));
    for (const auto& [id, info] : initial.members) start_node(id);

    every(params_.proposals_per_s, &rng_client_, [this] { client_propose(); });
    every(params_.reads_per_s, &rng_client_, [this] { client_read(); });
    every(params_.partitions_per_s, &rng_fault_, [this] { fault_partition(); });
    every(params_.crashes_per_s, &rng_fault_, [this] { fault_crash(); });
    every(params_.config_changes_per_s, &rng_admin_, [this] { admin_change_membership(); });
    every(params_.transfers_per_s, &rng_admin_, [this] { admin_transfer(); });
    every(params_.snapshots_per_s, &rng_admin_, [this] { admin_snapshot(); });
    every(params_.disk_stalls_per_s, &rng_stall_, [this] { fault_disk_stall(); });
    if (script_) {
        poll_script();  // its first steps may act before anything happens
    } else {
        sched_.at(params_.fault_phase_us, [this] { heal(); });
    }
}

RunResult Cluster::run() {
    bootstrap();
    while (!violation_) {
        if (!sched_.run_one()) {
            violation("no events left to run");
            break;
        }
        ++result_.events;
        for (auto& g : groups_) g->checker.after_step(g->nodes, g->disks);
        // A process that stopped inside a write is judged as it stood (what
        // its cores committed counts), then crashed, and its disk judged again.
        if (!dying_.empty()) {
            crash_dying();
            for (auto& g : groups_) g->checker.after_step(g->nodes, g->disks);
        }
        if (script_ && phase_ == Phase::faults && !violation_) poll_script();
        for (auto& g : groups_) {
            if (g->checker.commit_known() == g->settled_at) continue;
            g->settled_at = g->checker.commit_known();
            g->last_commit_us = now_us();
            g->history.settle(g->settled_at,
                              [&g](Index i) { return g->checker.committed_term(i); });
        }
        if (run_over()) break;
    }
    finish_result();
    return result_;
}

bool Cluster::run_over() {
    if (failover_from_us_) {
        if (failover_done()) return true;
    } else if (idle_from_us_) {
        if (idle_check_done()) {
            if (violation_ || !config_.failover_check) return true;
            start_failover();
        }
    } else if (phase_ == Phase::liveness) {
        // Every group must reach liveness; a group that has not must not go
        // liveness_bound_us without a commit.
        std::string why_not;
        std::uint64_t quiet_since = now_us();
        for (const auto& g : groups_) {
            std::string why;
            if (liveness_reached(*g, &why)) continue;
            if (why_not.empty()) why_not = why;
            quiet_since = std::min(quiet_since, std::max(heal_us_, g->last_commit_us));
        }
        if (why_not.empty()) {
            trace(std::string("liveness reached ") + format_time(now_us() - heal_us_) +
                  " after healing");
            if (config_.idle_check) {
                idle_from_us_ = now_us();
            } else if (config_.failover_check) {
                start_failover();
            } else {
                return true;
            }
            return false;
        }
        if (now_us() > quiet_since + params_.liveness_bound_us) {
            violation(std::string("Liveness: no commit for ") +
                      format_time(params_.liveness_bound_us) + " after healing, still " + why_not +
                      "; nodes: " + describe_nodes());
            return true;
        }
        if (now_us() > heal_us_ + params_.liveness_cap_us) {
            violation(std::string("Liveness: ") + format_time(params_.liveness_cap_us) +
                      " after healing, still " + why_not + "; nodes: " + describe_nodes());
            return true;
        }
    }
    if (result_.events >= config_.events_max) {
        violation(std::string("Storm: the run exceeded ") + s_(config_.events_max) +
                  " events (a livelock or message storm)");
        return true;
    }
    return false;
}

void Cluster::finish_result() {
    result_.ok = !violation_;
    result_.safety = safety_violation_;
    result_.violation = violation_.value_or("");
    result_.trace_hash = trace_.hash();
    result_.end_us = now_us();
    for (const auto& [id, drive] : drives_) {
        result_.wal_batches += drive->batches();
        result_.wal_batches_shared += drive->shared_batches();
    }
    for (const auto& g : groups_) {
        result_.leaders_elected += g->checker.leaders_elected();
        result_.committed += g->checker.commit_known();
        const HistoryStats& h = g->history.stats();
        result_.history.proposals += h.proposals;
        result_.history.accepted += h.accepted;
        result_.history.committed += h.committed;
        result_.history.lost += h.lost;
        result_.history.reads += h.reads;
        result_.history.reads_served += h.reads_served;
        result_.history.reads_failed += h.reads_failed;
    }
}

}  // namespace keel::sim
