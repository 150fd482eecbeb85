// The Replica under its core lock, beside the write path (write_path.cpp):
// role changes, a leader's snapshot installed, configuration changes, the
// messages sent (now, or through the I/O thread's outbox, in the order they
// were produced), ticks, fail-stop and shutdown, the status published.
#include <cstdio>

#include <fmt/format.h>
#include "runtime/member_context.hpp"
#include "runtime/replica.hpp"

namespace keel::runtime {

namespace {
bool campaigning(raft::Role r) {
    return r == raft::Role::pre_candidate || r == raft::Role::candidate;
}
}  // namespace

void Replica::on_soft_state(const raft::SoftState& ss) {
    if (campaigning(ss.role) && !campaigning(locked_.role)) board_.elections.fetch_add(1);
    // Queued first: the proposals failed below, and every later refusal,
    // reach their callers after the observer hears of it.
    announcer_.announce_soft_state(ss);
    if (locked_.role == raft::Role::leader && ss.role != raft::Role::leader) {
        locked_.proposals.fail_all(
            ErrorCode::aborted, "leadership lost; the entry may still commit", ss.leader,
            [this](std::function<void()> c) { announcer_.complete_after_events(std::move(c)); });
    }
    if (ss.role != locked_.role || ss.role == raft::Role::leader) {
        log(LogLevel::info, fmt::format("group {} role {} term {} leader {}", group(),
                                        raft::role_name(ss.role), ss.term, ss.leader));
    }
    locked_.role = ss.role;
    if (locked_.transfer && ss.leader == locked_.transfer->target) {
        auto done = std::move(locked_.transfer->done);
        locked_.transfer.reset();
        done(Status::ok_status());
    }
}

void Replica::on_snapshot_written(const raft::SnapshotMeta& meta) {
    if (halted()) return;
    // The apply thread captured the snapshot after applying meta.index, but
    // the core may not have heard of that yet (the apply progress is settled
    // once the lock is free) and refuses a snapshot beyond what it knows
    // applied: the core would keep the previous snapshot, whose file the
    // store no longer keeps, and a follower that needs it would wait for the
    // next.
    const raft::Index applied = apply_->applied_index();
    if (applied > core_->applied_index()) core_->on_applied(applied);
    auto s = core_->on_snapshot_taken(meta.index);
    if (!s.ok()) {
        // E.g. a snapshot from the leader was installed meanwhile, past it.
        log(LogLevel::info, fmt::format("snapshot at {} not recorded by the core: {}", meta.index,
                                        s.status().to_string()));
    } else {
        board_.raise_snapshot_index(meta.index);
        announcer_.announce([index = meta.index](Observer& o) { o.on_snapshot(index); });
    }
    run_core();
}

void Replica::install_snapshot(const raft::SnapshotMeta& meta) {
    const std::optional<std::string> staged = locked_.staged.take(meta.index, meta.term);
    KEEL_ASSERT(staged.has_value(), "the core installs only snapshots whose data was staged");
    // Crash window: the snapshot is published (durable) before the log is
    // reset, so a crash in between recovers from the snapshot (bootstrap
    // reconciles the old log against it).
    auto file = snapshots_->adopt(*staged, meta);
    if (!file.ok()) return fail_stop(file.status());
    const std::uint64_t seq = locked_.gate.reset();
    Status s = log_->reset_after_snapshot(meta.index, meta.term,
                                          [this, seq](Status st) { on_wal_write_done(seq, st); });
    if (!s.ok()) return fail_stop(s);
    ApplyRestore item;
    item.restore = [store = snapshots_.get(), f = file.value()](StateMachine& sm) -> Status {
        auto reader = store->open_reader(f);
        if (!reader.ok()) return reader.status();
        return sm.restore(*reader.value());
    };
    item.meta = meta;
    // Published before the restore is queued: the apply thread may finish
    // it at once, and a status showing applied_index past the snapshot must
    // show the snapshot too.
    board_.set_snapshot_index(meta.index);
    apply_->enqueue(std::move(item));
    announcer_.announce([index = meta.index](Observer& o) { o.on_snapshot(index); });
    log(LogLevel::info, fmt::format("installed snapshot at {} from the leader", meta.index));
}

void Replica::on_configuration(const raft::Configuration& config) {
    std::map<raft::NodeId, std::string> peers;
    std::vector<MemberStatus> members;
    for (const auto& [id, info] : config.members) {
        MemberStatus m;
        m.spec = member_spec(id, info);
        if (id != options_.id && !m.spec.raft_address.empty()) peers[id] = m.spec.raft_address;
        members.push_back(std::move(m));
    }
    // A joining node learns the cluster's addresses from its log; until then
    // it answers the members it was told about (NodeOptions::initial_members)
    // and those that said hello (peer_directory.hpp).
    if (options_.join)
        for (const MemberSpec& m : options_.initial_members)
            if (m.id != options_.id && !m.raft_address.empty() && !peers.count(m.id))
                peers[m.id] = m.raft_address;
    locked_.directory.set_configured(std::move(peers));
    update_peer_directory();
    std::vector<MemberSpec> specs;
    specs.reserve(members.size());
    for (const MemberStatus& m : members) specs.push_back(m.spec);
    announcer_.announce_members(std::move(specs));
    board_.set_members(std::move(members));
}

void Replica::send_messages(std::vector<raft::Message> messages) {
    if (!transport_) return;  // a lone node has nobody to talk to
    if (!locked_.gate.may_send()) {
        // They may rest on a term or vote not yet on disk: dropped (Raft
        // retransmits); a snapshot being sent is reported as not sent.
        for (const raft::Message& m : messages)
            if (m.type == raft::MessageType::snapshot) core_->report_snapshot(m.to, false);
        return;
    }
    // Snapshots leave on their own stream; the rest stay in `messages`, in
    // order (no second vector: this runs for every batch; decision 0050).
    std::size_t kept = 0;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        if (messages[i].type == raft::MessageType::snapshot) {
            send_snapshot(messages[i]);
            continue;
        }
        if (kept != i) messages[kept] = std::move(messages[i]);
        ++kept;
    }
    messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(kept), messages.end());
    if (!messages.empty() && !on_io_thread()) send_now_if_idle(messages);
    if (!messages.empty() && !shut_down())
        seat_.services.to_io_send(*seat_.io_closed, *transport_, std::move(messages));
}

// A proposer's appends and a follower's acknowledgement after its fsync are
// written by the thread that made them (the proposer, the WAL's flusher)
// instead of waking the I/O thread to write them: one thread hand-off less
// on each of the two legs of a replication round trip.  Only while nothing
// is queued for the I/O thread nor being run by it, so nothing written now
// overtakes a message sent earlier; the I/O thread writes the rest.
void Replica::send_now_if_idle(std::vector<raft::Message>& messages) {
    seat_.services.if_outbox_idle([&] { transport_->send_now(messages); });
}

void Replica::send_snapshot(const raft::Message& m) {
    KEEL_ASSERT(m.snapshot.has_value(), "a snapshot message carries its metadata");
    auto busy = locked_.outgoing_snapshot.find(m.to);
    if (busy != locked_.outgoing_snapshot.end() && busy->second.index == m.snapshot->index) return;
    std::optional<SnapshotFile> file = snapshots_->latest();
    if (!file || file->meta.index != m.snapshot->index || file->meta.term != m.snapshot->term) {
        log(LogLevel::warn,
            fmt::format("no snapshot file for the core's snapshot at {}", m.snapshot->index));
        core_->report_snapshot(m.to, false);
        return;
    }
    auto& outgoing = locked_.outgoing_snapshot[m.to];
    outgoing.index = m.snapshot->index;
    outgoing.pins.push_back(snapshots_->pin(*file));  // before the transport opens it
    // The transport streams the file itself (bounded chunks); the receiver
    // gets a byte copy, which is a valid snapshot file (metadata included).
    to_io([this, m, path = file->path] { transport_->send_snapshot(m, path); });
}

void Replica::on_tick() {
    // The clock steps this group only when it is due (schedule_next_tick);
    // taking the core lock handed the core its ticks already (after_lock).
    catch_up_ticks();
}

void Replica::fail_stop(const Status& why) {
    if (locked_.failed) return;
    locked_.failed = true;
    log(LogLevel::error, "fail-stop: " + why.to_string());
    set_ticker_needed(false);
    locked_.proposals.fail_all(ErrorCode::failed, why.to_string(), 0);
    locked_.reads.fail_all(ErrorCode::failed, why.to_string());
    board_.set_failure(why.to_string());
    publish_status();
    announcer_.announce([why](Observer& o) { o.on_failed(why); }, /*last=*/true);
    if (options_.on_failure) options_.on_failure(why);
}

void Replica::shutdown_on_io() {
    if (!locked_.failed) {
        // The commit index is saved lazily; save it now so a restart
        // re-applies at once.  On a shared WAL, queued only: a disk that is
        // full must not hold up the stop (the store waits for what it
        // queued as it goes): skipped then.
        if (log_->queues_hard_state()) {
            if (!log_->wal().no_space())
                (void)log_->queue_hard_state(locked_.gate.hard_state(), [](Status) {});
        } else {
            (void)log_->save_hard_state(locked_.gate.hard_state());
        }
    }
    // On the I/O thread (posted by stop()): the channel and the timers go
    // now; work queued or posted for them earlier is dropped.
    KEEL_ASSERT(on_io_thread(), "shutdown runs on the I/O thread");
    lifecycle_.store(Lifecycle::shut_down);
    *seat_.io_closed = true;
    timers_.tick->close();
    timers_.no_space->close();
    seat_.services.liveness().detach(seat_.group);
    if (transport_) transport_->stop();
    std::vector<InboxProposal> inbox;
    inbox_.take(inbox);
    for (InboxProposal& p : inbox) {
        inbox_.release();
        ProposeResult r;
        r.status = Status(ErrorCode::aborted, "node stopped");
        p.done(std::move(r));
    }
    locked_.proposals.fail_all(ErrorCode::aborted, "node stopped; the entry may still be committed",
                               0);
    locked_.reads.fail_all(ErrorCode::aborted, "node stopped");
    if (locked_.transfer) {
        auto done = std::move(locked_.transfer->done);
        locked_.transfer.reset();
        done(Status(ErrorCode::aborted, "node stopped"));
    }
    locked_.staged.clear();
}

void Replica::set_ticker_needed(bool needed) {
    // A quiescent group needs no tick but still has other members: the
    // mode (inline policy, flusher spin) stays the cluster's.
    const bool cluster = needed || (!locked_.failed && core_->quiescent());
    if (cluster != inline_.cluster_mode()) {
        inline_.set_cluster_mode(cluster);
        log_->set_single_mode(!cluster);
    }
    if (needed == locked_.ticks_needed) return;
    locked_.ticks_needed = needed;
    // Ticks count from now: none were owed while none were needed.
    if (needed) locked_.ticks_seen = seat_.services.clock().ticks();
    to_io([this, needed] { timers_.tick->set_needed(needed); });
}

void Replica::publish_status() {
    board_.publish(*core_);
}

void Replica::refuse_proposal(std::function<void(ProposeResult)> done, ProposeResult r) {
    // Counted until the caller hears: refusals waiting behind a slow
    // observer stay bounded by max_pending_proposals.
    announcer_.complete_after_events([this, done = std::move(done), r = std::move(r)]() mutable {
        inbox_.release();
        done(std::move(r));
    });
}

}  // namespace keel::runtime
