#include "sim_node.hpp"

#include <algorithm>

namespace keel::sim {

using raft::Actions;
using raft::Entry;
using raft::Index;
using raft::Message;
using raft::MessageType;
using raft::NodeId;

namespace {

std::string describe(const raft::SnapshotMeta& m) {
    return std::string("snapshot(index ") + std::to_string(m.index) + " term " +
           std::to_string(m.term) + ")";
}

}  // namespace

SimNode::SimNode(NodeHost& host, SimDisk& disk, const raft::Options& options,
                 std::uint64_t incarnation, const RunConfig& config, Rng rng)
    : host_(host),
      disk_(disk),
      core_(options, disk.restored()),
      incarnation_(incarnation),
      bug_(config.bug),
      tick_always_(config.tick_always),
      rng_(rng) {
    const DurableState& d = disk.durable();
    hard_state_ = d.hard_state;
    if (d.snapshot) {
        latest_snapshot_ = Snapshot{*d.snapshot, d.snapshot_data};
        auto restored = ValueLog::deserialize(d.snapshot_data);
        if (!restored || restored->applied() != d.snapshot->index) {
            host_.violation(std::string("node ") + std::to_string(options.id) +
                            ": stored snapshot data does not match its metadata");
        } else {
            state_ = *restored;
        }
    }
    drain();
}

void SimNode::tick() {
    // A lone voter needs no ticks (core.hpp): honour needs_ticks() like the runtime does.
    if (!core_.needs_ticks() && !tick_always_) return;
    core_.tick();
    drain();
}

void SimNode::deliver(const Message& m, const std::string& snapshot_data) {
    if (m.type == MessageType::snapshot && m.snapshot) {
        // Keep only the newest few staged snapshots (a bounded buffer).
        if (staged_.size() >= 4) staged_.erase(staged_.begin());
        staged_[{m.snapshot->index, m.snapshot->term}] = snapshot_data;
    }
    Status st = core_.step(m);
    if (!st.ok())
        host_.trace(std::string("n") + std::to_string(id()) + " dropped: " + st.to_string());
    drain();
}

Result<raft::Proposed> SimNode::propose(std::string data) {
    auto r = core_.propose(std::move(data));
    drain();
    return r;
}

Status SimNode::read_index(std::uint64_t request_id) {
    Status st = core_.read_index(request_id);
    drain();
    return st;
}

Status SimNode::transfer_leadership(NodeId target) {
    Status st = core_.transfer_leadership(target);
    drain();
    return st;
}

Result<raft::Proposed> SimNode::change_membership(const raft::ConfigChange& change) {
    auto r = core_.propose_config_change(change);
    drain();
    return r;
}

void SimNode::take_snapshot() {
    const Index at = state_.applied();
    if (at == 0 || (latest_snapshot_ && latest_snapshot_->meta.index >= at)) return;
    auto meta = core_.on_snapshot_taken(at);
    if (!meta.ok()) {
        host_.trace(std::string("n") + std::to_string(id()) + " snapshot at " + std::to_string(at) +
                    " refused: " + meta.status().to_string());
        drain();
        return;
    }
    if (meta->index != at) {
        host_.violation(std::string("on_snapshot_taken(") + std::to_string(at) + ") returned " +
                        describe(*meta));
    }
    latest_snapshot_ = Snapshot{*meta, state_.serialize()};
    host_.trace(std::string("n") + std::to_string(id()) + " took " + describe(*meta));
    host_.on_snapshot_taken(id(), *meta, state_);
    DiskOp op;
    op.kind = DiskOpKind::save_snapshot;
    op.meta = *meta;
    op.data = latest_snapshot_->data;
    submit(std::move(op));
    drain();
}

void SimNode::report_snapshot(NodeId peer, bool ok) {
    core_.report_snapshot(peer, ok);
    drain();
}

void SimNode::report_unreachable(NodeId peer) {
    core_.report_unreachable(peer);
    drain();
}

std::uint64_t SimNode::submit(DiskOp op) {
    const DiskOp& queued = disk_.submit(std::move(op), host_.now_us());
    const std::uint64_t id = queued.id;
    host_.schedule_node(core_.id(), incarnation_, queued.done_us - host_.now_us(),
                        [id](SimNode& n) { n.disk_done(id); });
    return id;
}

void SimNode::disk_done(std::uint64_t op_id) {
    DiskOp op;
    if (auto error = disk_.complete(op_id, &op)) {
        host_.violation(std::string("node ") + std::to_string(id()) + " storage: " + *error);
    }
    release_gated();
    if (op.kind == DiskOpKind::batch && !op.entries.empty()) {
        const Entry& last = op.entries.back();
        host_.trace(std::string("n") + std::to_string(id()) + " durable up to " +
                    std::to_string(last.index) + "/t" + std::to_string(last.term));
        core_.on_persisted(op.write_id);
    }
    drain();
}

void SimNode::drain() {
    // Each batch may trigger more work (on_applied); a healthy core settles
    // quickly, so the number of rounds is bounded.
    for (int rounds = 0; core_.has_actions(); ++rounds) {
        if (rounds >= 1000) {
            host_.violation(std::string("node ") + std::to_string(id()) +
                            " keeps producing actions");
            return;
        }
        process(core_.take_actions());
    }
}

void SimNode::process(Actions a) {
    const std::string me = std::string("n") + std::to_string(id());
    if (a.soft_state) {
        host_.trace(me + " is " + raft::role_name(a.soft_state->role) + " in term " +
                    std::to_string(a.soft_state->term) + " (leader " +
                    std::to_string(a.soft_state->leader) + ")");
    }
    // 1. A snapshot from the leader, before anything else.
    if (a.snapshot) install_snapshot(*a.snapshot);
    // 2 and 3. Entries appended asynchronously (on_persisted when durable),
    // in one atomic write with the hard state, as a WAL batch would be.  A
    // term/vote change must be durable before any message of this batch leaves.
    if (a.hard_state || !a.entries.empty()) {
        DiskOp op;
        op.kind = DiskOpKind::batch;
        bool term_or_vote = false;
        if (a.hard_state) {
            term_or_vote =
                a.hard_state->term != hard_state_.term || a.hard_state->vote != hard_state_.vote;
            hard_state_ = *a.hard_state;
            op.hard_state = *a.hard_state;
        }
        if (!a.entries.empty()) {
            host_.on_entries(id(), core_.role() == raft::Role::leader, a.entries);
            op.entries = std::move(a.entries);
            op.write_id = a.write_id;
        }
        const std::uint64_t op_id = submit(std::move(op));
        if (term_or_vote) send_barrier_op_ = op_id;
    }
    // 4. Messages now (after the term/vote write); the rest after everything queued.
    for (auto& m : a.messages) send_or_gate(std::move(m), send_barrier_op_);
    const std::uint64_t all_queued = disk_.last_submitted();
    for (auto& m : a.messages_after_persist) send_or_gate(std::move(m), all_queued);
    // 5. Apply, then serve reads.
    if (!a.committed_entries.empty()) apply(a.committed_entries);
    // 6. A snapshot the core asked for (entries it dropped while it led
    // alone), taken a little later, as the runtime's apply thread would.
    if (a.snapshot_wanted) {
        host_.schedule_node(core_.id(), incarnation_, kSnapshotWantedDelayUs,
                            [](SimNode& n) { n.take_snapshot(); });
    }
    for (const auto& rs : a.read_states) {
        KEEL_ASSERT(pending_reads_.size() < kPendingReadsMax, "pending reads over their limit");
        pending_reads_.emplace_back(rs.request_id, rs.index);
    }
    serve_reads();
    for (const auto& rf : a.read_failures) {
        host_.trace(me + " read " + std::to_string(rf.request_id) + " failed (leader hint " +
                    std::to_string(rf.leader_hint) + ")");
        host_.on_read_failed(id(), rf.request_id);
    }
    if (a.configuration) host_.trace(me + " configuration " + raft::to_string(*a.configuration));
}

void SimNode::install_snapshot(const raft::SnapshotMeta& meta) {
    const std::string me = std::string("n") + std::to_string(id());
    auto it = staged_.find({meta.index, meta.term});
    if (it == staged_.end()) {
        host_.violation(me + " told to install " + describe(meta) + " it never received");
        return;
    }
    auto restored = ValueLog::deserialize(it->second);
    if (!restored || restored->applied() != meta.index) {
        host_.violation(me + ": data of " + describe(meta) + " does not match it");
        return;
    }
    host_.trace(me + " installs " + describe(meta));
    state_ = *restored;
    latest_snapshot_ = Snapshot{meta, it->second};
    host_.on_snapshot_installed(id(), core_.role() == raft::Role::leader, meta, state_);
    DiskOp op;
    op.kind = DiskOpKind::install_snapshot;
    op.meta = meta;
    op.data = it->second;
    staged_.erase(staged_.begin(), std::next(it));
    // Nothing may leave before the snapshot (and the log it replaces) is durable.
    send_barrier_op_ = submit(std::move(op));
}

void SimNode::apply(const std::vector<Entry>& committed) {
    for (const Entry& e : committed) {
        if (e.index != state_.applied() + 1) {
            host_.violation(std::string("n") + std::to_string(id()) + " given entry " +
                            std::to_string(e.index) + " to apply after " +
                            std::to_string(state_.applied()));
            return;
        }
        if (bug_ == Bug::skip_apply && e.type == raft::EntryType::normal && rng_.chance(0.02)) {
            state_.apply(e.index, raft::EntryType::noop, 0);  // the injected bug: value lost
        } else {
            state_.apply(e.index, e.type, entry_digest(e));
        }
        host_.on_applied(id(), e, state_);
    }
    core_.on_applied(state_.applied());
}

void SimNode::serve_reads() {
    auto ready = [&](const auto& r) { return r.second <= state_.applied(); };
    for (const auto& [request_id, index] : pending_reads_) {
        if (index <= state_.applied()) host_.on_read_served(id(), request_id, index, state_);
    }
    pending_reads_.erase(std::remove_if(pending_reads_.begin(), pending_reads_.end(), ready),
                         pending_reads_.end());
}

void SimNode::send_or_gate(Message m, std::uint64_t barrier_op) {
    if (barrier_op <= disk_.last_completed() && gated_.empty()) {
        send_now(m);
    } else {
        gated_.push_back(Gated{std::max(barrier_op, gated_.empty() ? 0 : gated_.back().barrier_op),
                               std::move(m)});
    }
}

void SimNode::release_gated() {
    while (!gated_.empty() && gated_.front().barrier_op <= disk_.last_completed()) {
        send_now(gated_.front().message);
        gated_.pop_front();
    }
}

void SimNode::send_now(const Message& m) {
    std::string data;
    if (m.type == MessageType::snapshot) {
        if (!m.snapshot || !latest_snapshot_ || latest_snapshot_->meta.index != m.snapshot->index ||
            latest_snapshot_->meta.term != m.snapshot->term) {
            host_.violation(std::string("n") + std::to_string(id()) +
                            " sends a snapshot it does not hold: " + raft::to_string(m));
            return;
        }
        data = latest_snapshot_->data;
    }
    host_.send(m, std::move(data));
}

}  // namespace keel::sim
