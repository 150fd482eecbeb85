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
      network_(params_, config.bug, rng_net_),
      checker_([this](const std::string& what) { violation(what); }) {
    trace_.set_echo(echo_trace);
    if (config.scenario != Scenario::none) {
        KEEL_ASSERT(config.nodes == scenario_nodes(config.scenario) && !config.membership,
                    "a scenario fixes the cluster it runs on");
        script_.emplace(make_script(config.scenario));
    }
}

Cluster::~Cluster() = default;

void Cluster::violation(const std::string& what) {
    if (violation_) return;
    violation_ = what;
    safety_violation_ = what.rfind("Liveness", 0) != 0 && what.rfind("Storm", 0) != 0 &&
                        what.rfind("Scenario", 0) != 0 && what.rfind("Idle", 0) != 0;
    trace(std::string("VIOLATION: ") + what);
}

raft::Options Cluster::options_for(NodeId id) {
    raft::Options o;
    o.id = id;
    o.election_ticks_min = params_.election_ticks_min;
    o.election_ticks_max = params_.election_ticks_max;
    o.heartbeat_ticks = params_.heartbeat_ticks;
    o.pre_vote = params_.pre_vote;
    o.check_quorum = params_.check_quorum;
    o.lease_reads = params_.lease_reads;
    o.unsafe_commit_older_terms = config_.bug == Bug::commit_older_term;
    o.max_inflight_messages = params_.max_inflight_messages;
    o.max_message_bytes = params_.max_message_bytes;
    o.snapshot_trailing_entries = params_.snapshot_trailing_entries;
    o.random_seed = hash_mix(hash_mix(seed_, id), incarnations_[id]);
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
    SimDisk& disk = *disks_.at(id);
    checker_.node_started(id, disk.restored());
    trace(n_(id) + " starts (incarnation " + s_(incarnation) + ", term " +
          s_(disk.durable().hard_state().term) + ", log to " + s_(disk.durable().last_index()) +
          ")");
    if (!clock_rate_.count(id)) {
        clock_rate_[id] = 1.0 + params_.skew * (2 * rng_clock_.unit() - 1);
    }
    auto node = std::make_unique<SimNode>(*this, disk, options_for(id), incarnation, config_,
                                          params_, rng_node_.split(hash_mix(id, incarnation)));
    nodes_[id] = std::move(node);
    // The constructor may already have produced actions (a lone voter leads at once).
    schedule_tick(id, incarnation);
    if (config_.quiesce) start_liveness(id, incarnation);
}

void Cluster::schedule_tick(NodeId id, std::uint64_t incarnation) {
    const auto period =
        static_cast<std::uint64_t>(static_cast<double>(params_.tick_us) * clock_rate_[id]);
    schedule_node(id, incarnation, std::max<std::uint64_t>(period, 1),
                  [this, id, incarnation](SimNode& n) {
                      if (n.tick() && counts_ticks(id)) ++result_.core_ticks;
                      schedule_tick(id, incarnation);
                  });
}

void Cluster::schedule_node(NodeId node, std::uint64_t incarnation, std::uint64_t delay_us,
                            std::function<void(SimNode&)> fn) {
    sched_.after(delay_us, [this, node, incarnation, fn = std::move(fn)] {
        auto it = nodes_.find(node);
        if (it != nodes_.end() && it->second->incarnation() == incarnation) fn(*it->second);
    });
}

void Cluster::send(const Message& m, std::string snapshot_data) {
    if (counts_ticks(m.from)) ++result_.raft_messages;
    const auto delays = network_.route(m, now_us());
    if (delays.empty()) {
        trace(n_(m.from) + "->" + n_(m.to) + " lost " + raft::message_type_name(m.type));
        if (m.type == MessageType::snapshot) {
            const NodeId from = m.from, to = m.to;
            const std::uint64_t inc = incarnations_[from];
            schedule_node(from, inc, params_.delay_max_us,
                          [to](SimNode& n) { n.report_snapshot(to, false); });
        }
        return;
    }
    for (std::uint64_t d : delays) {
        sched_.after(d, [this, m, snapshot_data] { deliver(m, snapshot_data); });
    }
}

void Cluster::deliver(const Message& m, const std::string& data) {
    const bool blocked = network_.blocked(m.from, m.to);
    auto target = nodes_.find(m.to);
    const bool up = target != nodes_.end();
    if (m.type == MessageType::snapshot) {
        // The sender's streaming finishes now, one way or the other.
        auto sender = nodes_.find(m.from);
        if (sender != nodes_.end()) sender->second->report_snapshot(m.to, !blocked && up);
    }
    if (blocked || !up) {
        trace(n_(m.from) + "->" + n_(m.to) + " undeliverable " + raft::message_type_name(m.type) +
              (blocked ? " (partition)" : " (down)"));
        if (params_.report_unreachable) {
            auto sender = nodes_.find(m.from);
            if (sender != nodes_.end()) sender->second->report_unreachable(m.to);
        }
        return;
    }
    Message copy = m;
    if (network_.tamper(copy))
        trace(std::string("BUG ") + std::string(bug_name(config_.bug)) +
              " tampers with the next message");
    trace(std::string("deliver ") + raft::to_string(copy));
    target->second->deliver(copy, data);
}

void Cluster::crash(NodeId id) {
    auto it = nodes_.find(id);
    if (it == nodes_.end()) return;
    trace(std::string("CRASH ") + n_(id) + " (unflushed writes lost)");
    nodes_.erase(it);
    armed_.erase(id);
    disks_.at(id)->crash();
    checker_.node_crashed(id, disks_.at(id)->restored());
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
    nodes_.erase(id);
    checker_.node_stopped(id);
}

// ---- what a script sees and does ------------------------------------------------

const raft::Core* Cluster::core(NodeId id) const {
    auto it = nodes_.find(id);
    return it == nodes_.end() ? nullptr : &it->second->core();
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
    disks_.at(id)->hold();
    trace(std::string("HOLD ") + n_(id) + "'s WAL: nothing on it completes");
}

void Cluster::release_disk(NodeId id) {
    trace(std::string("RELEASE ") + n_(id) + "'s WAL");
    auto it = nodes_.find(id);
    if (it != nodes_.end()) {
        it->second->release_disk();
    } else {
        disks_.at(id)->release();
    }
}

// ---- observations -----------------------------------------------------------

void Cluster::on_entries(NodeId node, bool leader, const std::vector<Entry>& entries) {
    checker_.on_entries(node, leader, entries);
}

void Cluster::on_snapshot_installed(NodeId node, bool leader, const raft::SnapshotMeta& meta,
                                    const ValueLog& state) {
    ++result_.snapshots_installed;
    checker_.on_snapshot_installed(node, leader, meta, state);
}

void Cluster::on_snapshot_taken(NodeId node, const raft::SnapshotMeta& meta,
                                const ValueLog& state) {
    checker_.on_snapshot_taken(node, meta, state);
}

void Cluster::on_applied(NodeId node, const Entry& entry, const ValueLog& state) {
    checker_.on_applied(node, entry, state);
    if (entry.type != raft::EntryType::config || entry.index <= committed_config_index_) return;
    // A newly committed configuration: members it dropped stop (soon, and
    // never inside this node's own call stack).
    committed_config_index_ = entry.index;
    auto config = raft::decode_configuration(entry.data);
    if (!config) {
        violation(n_(node) + " applies a config entry " + s_(entry.index) +
                  " that does not decode");
        return;
    }
    trace(std::string("committed configuration at ") + s_(entry.index) + ": " +
          raft::to_string(*config));
    for (NodeId id : ever_member_) {
        if (!config->contains(id) && !removed_.count(id)) {
            sched_.after(rng_admin_.range(0, 200'000), [this, id] { stop_removed(id); });
        }
    }
    for (const auto& [id, info] : config->members) ever_member_.insert(id);
}

void Cluster::on_read_served(NodeId node, std::uint64_t request_id, Index read_index,
                             const ValueLog& state) {
    ReadRecord r;
    if (!history_.read_finished(request_id, &r)) {
        violation(n_(node) + " serves read " + s_(request_id) + " that nobody asked for");
        return;
    }
    ++history_.stats().reads_served;
    trace(n_(node) + " serves read " + s_(request_id) + " at index " + s_(read_index) +
          " (applied " + s_(state.applied()) + ", started when " + s_(r.commit_at_start) +
          " was committed)");
    checker_.on_read_served(node, read_index, r.commit_at_start, state);
}

void Cluster::on_read_failed(NodeId, std::uint64_t request_id) {
    ReadRecord r;
    if (history_.read_finished(request_id, &r)) ++history_.stats().reads_failed;
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
    for (auto& [id, disk] : disks_) disk->calm(calm_latency_max_us());
    trace("HEAL: faults stop; crashed members restart; a leader must commit everything, never " +
          format_time(params_.liveness_bound_us) + " without a commit, within " +
          format_time(params_.liveness_cap_us));
    for (NodeId id : armed_) {
        if (auto it = nodes_.find(id); it != nodes_.end()) it->second->arm_crash(-1, false);
    }
    armed_.clear();
    for (const auto& [id, disk] : disks_) {
        if (disk->held()) release_disk(id);
    }
    const std::set<NodeId> down = crashed_;
    for (NodeId id : down) restart(id);
    liveness_probe();
}

void Cluster::liveness_probe() {
    // One probe write must commit; retried until a leader takes it.
    if (probe_committed_) return;
    if (probe_ && probe_->index <= checker_.commit_known()) {
        if (checker_.committed_term(probe_->index) == probe_->term) {
            probe_committed_ = true;
            return;
        }
        probe_.reset();  // overwritten: try again
    }
    if (SimNode* l = leader(); probe_ && l && l->core().term() > probe_->term &&
                               l->core().term_at(probe_->index) != probe_->term) {
        probe_.reset();  // a later leader lacks it: it can never commit
    }
    if (!probe_) {
        if (SimNode* l = leader()) {
            auto r = l->propose("probe");
            if (r.ok()) {
                probe_ = *r;
                trace(std::string("liveness probe appended at ") + s_(r->index) + "/t" +
                      s_(r->term));
            }
        }
    }
    sched_.after(100'000, [this] { liveness_probe(); });
}

bool Cluster::liveness_reached(std::string* why_not) const {
    SimNode* l = leader();
    if (!l) {
        *why_not = "no leader";
        return false;
    }
    const raft::Core& c = l->core();
    if (!probe_committed_) {
        *why_not = std::string("the probe write has not committed (leader ") + n_(l->id()) +
                   ", commit " + s_(c.commit_index()) + ", last " + s_(c.last_index()) + ")";
        return false;
    }
    if (c.commit_index() != c.last_index() || c.term_at(c.commit_index()) != c.term()) {
        *why_not = std::string("leader ") + n_(l->id()) + " has not committed its log (commit " +
                   s_(c.commit_index()) + ", last " + s_(c.last_index()) + ")";
        return false;
    }
    for (const auto& [id, info] : c.configuration().members) {
        auto it = nodes_.find(id);
        if (it == nodes_.end()) {
            *why_not = std::string("member ") + n_(id) + " is not running";
            return false;
        }
        if (it->second->state().applied() < c.commit_index()) {
            *why_not = std::string("member ") + n_(id) + " applied " +
                       s_(it->second->state().applied()) + " of " + s_(c.commit_index());
            return false;
        }
    }
    return true;
}

std::string Cluster::describe_nodes() const {
    std::string out;
    for (const auto& [id, n] : nodes_) {
        const raft::Core& c = n->core();
        if (!out.empty()) out += "; ";
        out += n_(id) + " " + raft::role_name(c.role()) + " t" + s_(c.term()) + " commit " +
               s_(c.commit_index()) + " last " + s_(c.last_index()) + " config " +
               raft::to_string(c.configuration()) + (c.needs_ticks() ? "" : " (needs no ticks)") +
               (c.quiescent() ? " (quiescent)" : "");
        const SimDisk& d = *disks_.at(id);
        if (n->gated() > 0 || !d.wal_idle()) {
            out += " [" + s_(n->gated()) + " messages wait for write " + s_(n->gated_on()) + "; " +
                   s_(d.wal_queue().size()) + " WAL writes queued, the last " +
                   s_(d.wal_last_submitted()) + (d.held() ? ", held" : "") + "]";
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

RunResult Cluster::run() {
    // Founding members all start from raft::bootstrap (entry 1 = the configuration).
    Configuration initial;
    for (int i = 0; i < config_.nodes; ++i) initial.members[next_node_id_++] = raft::MemberInfo{};
    const raft::RestoredState boot = raft::bootstrap(initial);
    checker_.bootstrapped(boot);
    for (const auto& [id, info] : initial.members) {
        disks_[id] =
            std::make_unique<SimDisk>(params_, config_.bug == Bug::lying_disk, rng_disk_.split(id));
        disks_[id]->format(boot);
        ever_member_.insert(id);
    }
    trace(std::string("seed ") + s_(seed_) + ": " + params_.describe());
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

    Index settled_at = 0;
    bool live = false;
    while (!violation_) {
        if (!sched_.run_one()) {
            violation("no events left to run");
            break;
        }
        ++result_.events;
        checker_.after_step(nodes_, disks_);
        // A node that stopped inside a write is judged as it stood (what its
        // core committed counts), then crashed, and its disk judged again.
        if (!dying_.empty()) {
            crash_dying();
            checker_.after_step(nodes_, disks_);
        }
        if (script_ && phase_ == Phase::faults && !violation_) poll_script();
        if (checker_.commit_known() != settled_at) {
            settled_at = checker_.commit_known();
            last_commit_us_ = now_us();
            history_.settle(settled_at, [this](Index i) { return checker_.committed_term(i); });
        }
        if (idle_from_us_) {
            if (idle_check_done()) break;
        } else if (phase_ == Phase::liveness) {
            std::string why_not;
            if (liveness_reached(&why_not)) {
                live = true;
                trace(std::string("liveness reached ") + format_time(now_us() - heal_us_) +
                      " after healing");
                if (!config_.idle_check) break;
                idle_from_us_ = now_us();
                continue;
            }
            const std::uint64_t quiet_since = std::max(heal_us_, last_commit_us_);
            if (now_us() > quiet_since + params_.liveness_bound_us) {
                violation(std::string("Liveness: no commit for ") +
                          format_time(params_.liveness_bound_us) + " after healing, still " +
                          why_not + "; nodes: " + describe_nodes());
                break;
            }
            if (now_us() > heal_us_ + params_.liveness_cap_us) {
                violation(std::string("Liveness: ") + format_time(params_.liveness_cap_us) +
                          " after healing, still " + why_not + "; nodes: " + describe_nodes());
                break;
            }
        }
        if (result_.events >= config_.events_max) {
            violation(std::string("Storm: the run exceeded ") + s_(config_.events_max) +
                      " events (a livelock or message storm)");
            break;
        }
    }
    (void)live;
    result_.ok = !violation_;
    result_.safety = safety_violation_;
    result_.violation = violation_.value_or("");
    result_.trace_hash = trace_.hash();
    result_.end_us = now_us();
    result_.leaders_elected = checker_.leaders_elected();
    result_.committed = checker_.commit_known();
    result_.history = history_.stats();
    return result_;
}

}  // namespace keel::sim
