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
                 std::uint64_t incarnation, const RunConfig& config, const SwarmParams& params,
                 Rng rng)
    : host_(host),
      disk_(disk),
      params_(params),
      core_(options, disk.recover()),
      incarnation_(incarnation),
      bug_(config.bug),
      tick_always_(config.tick_always),
      lazy_ticks_(config.lazy_ticks),
      rng_(rng) {
    hard_state_ = disk.restored().hard_state;
    const DiskFiles& f = disk.raw();
    if (f.snapshot) {
        auto restored = ValueLog::deserialize(f.snapshot_data);
        if (!restored || restored->applied() != f.snapshot->index) {
            host_.violation(std::string("node ") + std::to_string(options.id) +
                            ": stored snapshot data does not match its metadata");
        } else {
            state_ = *restored;
            applied_term_ = f.snapshot->term;
            applied_config_ = f.snapshot->config;
        }
    }
    drain();
}

bool SimNode::tick() {
    // A lone voter or a quiescent core needs no ticks (core.hpp): honour
    // needs_ticks() like the runtime does.
    if (dead_ || (!core_.needs_ticks() && !tick_always_)) return false;
    if (!lazy_ticks_) {
        core_.tick();
        drain();
        return true;
    }
    // As the runtime does (lib/runtime/replica_ticks.cpp): held back until
    // one is due, or until the next other input (pay_ticks).
    ++ticks_owed_;
    if (ticks_owed_ >= core_.ticks_until_due()) pay_ticks();
    return true;
}

void SimNode::pay_ticks() {
    if (ticks_owed_ == 0 || dead_) return;
    const std::uint64_t owed = ticks_owed_;
    ticks_owed_ = 0;
    core_.tick(owed);
    drain();
}

void SimNode::peer_down(NodeId peer) {
    pay_ticks();
    if (dead_) return;
    core_.peer_down(peer);
    drain();
}

void SimNode::deliver(const Message& m, const std::string& snapshot_data) {
    pay_ticks();
    if (dead_) return;
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
    pay_ticks();
    if (dead_) return Status(ErrorCode::aborted, "node stopped");
    auto r = core_.propose(std::move(data));
    drain();
    return r;
}

Status SimNode::read_index(std::uint64_t request_id) {
    pay_ticks();
    if (dead_) return Status(ErrorCode::aborted, "node stopped");
    Status st = core_.read_index(request_id);
    drain();
    return st;
}

Status SimNode::transfer_leadership(NodeId target) {
    pay_ticks();
    if (dead_) return Status(ErrorCode::aborted, "node stopped");
    Status st = core_.transfer_leadership(target);
    drain();
    return st;
}

Result<raft::Proposed> SimNode::change_membership(const raft::ConfigChange& change) {
    pay_ticks();
    if (dead_) return Status(ErrorCode::aborted, "node stopped");
    auto r = core_.propose_config_change(change);
    drain();
    return r;
}

// As the runtime's apply thread: the state machine's state at its applied
// index, written to a snapshot file on the background queue; the core hears
// of it once the file is published (finish_snapshot).
void SimNode::take_snapshot() {
    pay_ticks();
    if (dead_) return;
    const Index at = state_.applied();
    const auto& file = disk_.raw().snapshot;
    if (at == 0 || snapshot_writing_ || (file && file->index >= at)) return;
    snapshot_writing_ = true;
    DiskOp op;
    op.kind = DiskOpKind::snapshot_file;
    op.meta = raft::SnapshotMeta{at, applied_term_, applied_config_};
    op.data = state_.serialize();
    host_.trace(std::string("n") + std::to_string(id()) + " writes " + describe(op.meta));
    submit(std::move(op));
}

void SimNode::finish_snapshot(const DiskOp& op) {
    snapshot_writing_ = false;
    const std::string me = std::string("n") + std::to_string(id());
    if (auto state = ValueLog::deserialize(op.data)) host_.on_snapshot_taken(id(), op.meta, *state);
    auto meta = core_.on_snapshot_taken(op.meta.index);
    if (!meta.ok()) {
        // E.g. a snapshot from the leader was installed meanwhile, past it.
        host_.trace(me + " snapshot at " + std::to_string(op.meta.index) +
                    " refused by the core: " + meta.status().to_string());
        return;
    }
    if (meta->index != op.meta.index || meta->term != op.meta.term ||
        meta->config != op.meta.config) {
        host_.violation(me + ": on_snapshot_taken(" + std::to_string(op.meta.index) +
                        ") returned " + describe(*meta) + " for a file holding " +
                        describe(op.meta));
    }
    host_.trace(me + " took " + describe(*meta));
}

void SimNode::report_snapshot(NodeId peer, bool ok) {
    pay_ticks();
    if (dead_) return;
    core_.report_snapshot(peer, ok);
    drain();
}

void SimNode::report_unreachable(NodeId peer) {
    pay_ticks();
    if (dead_) return;
    core_.report_unreachable(peer);
    drain();
}

void SimNode::arm_crash(int skip_writes, bool write_first) {
    crash_skip_ = skip_writes;
    crash_write_first_ = write_first;
}

bool SimNode::sync_write(const std::function<void()>& write, const char* what) {
    if (crash_skip_ < 0 || crash_skip_-- > 0) {
        write();
        return true;
    }
    if (crash_write_first_) write();
    dead_ = true;
    host_.trace(std::string("n") + std::to_string(id()) + " crashes " +
                (crash_write_first_ ? "right after" : "right before") + " writing " + what);
    host_.crash_requested(id());
    return false;
}

void SimNode::submit(DiskOp op) {
    const DiskOp& queued = disk_.submit(std::move(op), host_.now_us());
    const bool background = queued.kind == DiskOpKind::snapshot_file;
    if (disk_.head(background) == &queued) schedule_completion(queued);
}

void SimNode::schedule_completion(const DiskOp& op) {
    const std::uint64_t now = host_.now_us();
    const std::uint64_t id = op.id;
    // The head may be another group's write (one drive per process).
    host_.schedule_disk_done(op.group, core_.id(), incarnation_, id,
                             op.done_us > now ? op.done_us - now : 0);
}

void SimNode::disk_done(std::uint64_t op_id) {
    pay_ticks();
    if (dead_) return;
    const DiskOp* wal_head = disk_.head(false);
    if (wal_head && wal_head->id == op_id && disk_.held()) {
        disk_.drive().set_stalled();  // whoever releases the drive schedules it again
        return;
    }
    DiskOp op;
    if (auto error = disk_.complete(op_id, &op)) {
        host_.violation(std::string("node ") + std::to_string(id()) + " storage: " + *error);
    }
    const bool background = op.kind == DiskOpKind::snapshot_file;
    if (const DiskOp* next = disk_.head(background)) schedule_completion(*next);
    if (op.kind == DiskOpKind::snapshot_file) {
        finish_snapshot(op);
    } else {
        release_gated();
        if (op.kind == DiskOpKind::append) report_durable(op);
    }
    drain();
}

// The runtime's DurabilityGate: the core hears of each completed append by
// the write id it was handed with.
void SimNode::report_durable(const DiskOp& op) {
    const Entry& last = op.entries.back();
    raft::WriteId report = op.write_id;
    if (bug_ == Bug::stale_durability_report) {
        // The injected bug: a runtime that names the completed write by its
        // last entry, and takes the newest write holding that (index, term)
        // for it — after a truncation and a re-append, a write still queued.
        for (const DiskOp& queued : disk_.wal_queue()) {
            if (queued.kind != DiskOpKind::append || queued.group != disk_.group()) continue;
            for (const Entry& e : queued.entries)
                if (e.index == last.index && e.term == last.term) report = queued.write_id;
        }
        if (report != op.write_id)
            host_.trace(std::string("BUG stale_durability_report: n") + std::to_string(id()) +
                        " reports write " + std::to_string(report) + " for write " +
                        std::to_string(op.write_id));
    }
    host_.trace(std::string("n") + std::to_string(id()) + " durable up to " +
                std::to_string(last.index) + "/t" + std::to_string(last.term));
    core_.on_persisted(report);
}

void SimNode::drain() {
    // Each batch may trigger more work (on_applied); a healthy core settles
    // quickly, so the number of rounds is bounded.
    for (int rounds = 0; !dead_ && core_.has_actions(); ++rounds) {
        if (rounds >= 1000) {
            host_.violation(std::string("node ") + std::to_string(id()) +
                            " keeps producing actions");
            return;
        }
        process(core_.take_actions());
    }
}

bool SimNode::save_hard_state(const raft::HardState& hs) {
    return sync_write([&] { disk_.save_hard_state(hs); }, "its hard state");
}

void SimNode::persist(std::vector<Entry> entries, raft::WriteId write) {
    // runtime/log_store.cpp: a conflicting suffix is truncated first, as a
    // WAL operation of its own, then the entries are appended.
    const Index first = entries.front().index;
    if (first < disk_.wal_next_submitted()) {
        DiskOp truncate;
        truncate.kind = DiskOpKind::truncate;
        truncate.index = first - 1;
        submit(std::move(truncate));
    }
    DiskOp append;
    append.kind = DiskOpKind::append;
    append.entries = std::move(entries);
    append.write_id = write;
    submit(std::move(append));
}

void SimNode::process(Actions a) {
    const std::string me = std::string("n") + std::to_string(id());
    if (a.soft_state) {
        host_.trace(me + " is " + raft::role_name(a.soft_state->role) + " in term " +
                    std::to_string(a.soft_state->term) + " (leader " +
                    std::to_string(a.soft_state->leader) + ")");
    }
    // What the core asked for, whether or not a crash inside this batch
    // lets it reach the disk (the checkers mirror each node's log from it).
    std::optional<std::string> snapshot_data;
    if (a.snapshot) snapshot_data = adopt_snapshot(*a.snapshot);
    if (!a.entries.empty()) host_.on_entries(id(), core_.role() == raft::Role::leader, a.entries);
    // 1. A snapshot from the leader, before anything else.
    if (snapshot_data && !install_snapshot(*a.snapshot, *snapshot_data)) return;
    // 2. A term or vote change is durable before anything of this batch
    // leaves; a commit alone is saved with the next one (or at once, with
    // commit_save_p: the contract allows any time).
    if (a.hard_state) {
        const raft::HardState& saved = disk_.raw().hard_state;
        const bool term_or_vote =
            a.hard_state->term != hard_state_.term || a.hard_state->vote != hard_state_.vote;
        hard_state_ = *a.hard_state;
        if ((term_or_vote ||
             (hard_state_.commit != saved.commit && rng_.chance(params_.commit_save_p))) &&
            !save_hard_state(hard_state_))
            return;
    }
    // 3. Entries: queued on the WAL.
    if (!a.entries.empty()) persist(std::move(a.entries), a.write_id);
    // 4. Messages now; the rest once every WAL operation queued so far has completed.
    for (auto& m : a.messages) send_now(m);
    const std::uint64_t all_queued = disk_.wal_last_submitted();
    for (auto& m : a.messages_after_persist) send_or_gate(std::move(m), all_queued);
    // 5. Apply, then serve reads.
    if (!a.committed_entries.empty()) apply(a.committed_entries);
    // 6. A snapshot the core asked for (a member needs entries it dropped
    // from memory), taken a little later, as the runtime's apply thread would.
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

// The state machine restored from a leader's snapshot; returns its data
// (nullopt, and a violation, if it was never received or does not match).
std::optional<std::string> SimNode::adopt_snapshot(const raft::SnapshotMeta& meta) {
    const std::string me = std::string("n") + std::to_string(id());
    auto it = staged_.find({meta.index, meta.term});
    if (it == staged_.end()) {
        host_.violation(me + " told to install " + describe(meta) + " it never received");
        return std::nullopt;
    }
    auto restored = ValueLog::deserialize(it->second);
    if (!restored || restored->applied() != meta.index) {
        host_.violation(me + ": data of " + describe(meta) + " does not match it");
        return std::nullopt;
    }
    host_.trace(me + " installs " + describe(meta));
    state_ = *restored;
    applied_term_ = meta.term;
    applied_config_ = meta.config;
    host_.on_snapshot_installed(id(), core_.role() == raft::Role::leader, meta, state_);
    std::string data = it->second;
    staged_.erase(staged_.begin(), std::next(it));
    return data;
}

// runtime/actions_executor.cpp, install_snapshot: the file is published
// (durable), then meta records it, then the WAL is reset after it — a crash
// between any two leaves what recovery reconciles.
bool SimNode::install_snapshot(const raft::SnapshotMeta& meta, const std::string& data) {
    if (!sync_write([&] { disk_.install_snapshot_file(meta, data); }, "a leader's snapshot file"))
        return false;
    if (!sync_write([&] { disk_.save_snapshot_marker(meta); }, "the snapshot's marker"))
        return false;
    DiskOp reset;
    reset.kind = DiskOpKind::reset;
    reset.index = meta.index + 1;
    submit(std::move(reset));
    return true;
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
        applied_term_ = e.term;
        if (e.type == raft::EntryType::config) {
            if (auto config = raft::decode_configuration(e.data)) applied_config_ = *config;
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
    if (disk_.wal_completed_through(barrier_op) && gated_.empty()) {
        send_now(m);
    } else {
        gated_.push_back(Gated{std::max(barrier_op, gated_.empty() ? 0 : gated_.back().barrier_op),
                               std::move(m)});
    }
}

void SimNode::release_gated() {
    while (!gated_.empty() && disk_.wal_completed_through(gated_.front().barrier_op)) {
        send_now(gated_.front().message);
        gated_.pop_front();
    }
}

void SimNode::send_now(const Message& m) {
    std::string data;
    if (m.type == MessageType::snapshot) {
        // The runtime streams the newest snapshot file.
        const DiskFiles& f = disk_.raw();
        if (!m.snapshot || !f.snapshot || f.snapshot->index != m.snapshot->index ||
            f.snapshot->term != m.snapshot->term) {
            host_.violation(std::string("n") + std::to_string(id()) +
                            " sends a snapshot it does not hold: " + raft::to_string(m));
            return;
        }
        data = f.snapshot_data;
    }
    host_.send(m, std::move(data));
}

}  // namespace keel::sim
