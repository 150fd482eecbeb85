// The Replica under its core lock: carrying out each batch of core output
// exactly per the contract in raft/actions.hpp, and handling the progress
// other threads report (WAL durable, applied, snapshot written, ticks; what
// peers send is in peer_input.cpp).  Socket and timer calls are queued for
// the I/O thread (to_io), in the order they were produced.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cstdio>
#include <iterator>

#include "runtime/acknowledgements.hpp"
#include "runtime/member_context.hpp"
#include "runtime/replica.hpp"

namespace keel::runtime {

namespace {
bool campaigning(raft::Role r) {
    return r == raft::Role::pre_candidate || r == raft::Role::candidate;
}
}  // namespace

void Replica::drain_inbox() {
    {
        std::lock_guard lock(inbox_mu_);
        draining_.swap(inbox_);
        inbox_nonempty_.store(false);
    }
    // Every proposal queued since the last wakeup goes into the core before
    // take_actions(), so a burst becomes one WAL batch.
    std::uint64_t accepted = 0;
    for (InboxProposal& p : draining_) {
        if (shut_down_ || failed_) {
            pending_proposals_.fetch_sub(1, std::memory_order_relaxed);
            ProposeResult r;
            r.status = Status(failed_ ? ErrorCode::failed : ErrorCode::aborted, "node stopped");
            p.done(std::move(r));
            continue;
        }
        auto proposed = core_->propose(std::move(p.data));
        if (!proposed.ok()) {
            ProposeResult r;
            r.status = proposed.status();
            r.leader_hint = core_->leader();
            refuse_proposal(std::move(p.done), std::move(r));
            continue;
        }
        ++accepted;
        proposals_.add(
            PendingProposal{proposed->index, proposed->term, std::move(p.done), p.start_ns});
    }
    draining_.clear();
    // Written only under the core lock (no atomic addition needed), read by
    // status() from anywhere.
    proposals_accepted_.store(proposals_accepted_.load(std::memory_order_relaxed) + accepted,
                              std::memory_order_relaxed);
    run_core();
}

void Replica::run_core() {
    if (shut_down_ || failed_) return;
    while (core_->has_actions()) {
        raft::Actions a;
        a.entries.swap(entries_buffer_);
        a.committed_entries.swap(committed_buffer_);
        core_->take_actions(a);
        execute(a);
        // A vector execute() did not move on is empty and keeps its capacity
        // for the next batch; one it moved on is replaced by a spare (if one
        // has come back).
        entries_buffer_ = a.entries.capacity() != 0 ? std::move(a.entries) : spare_entries_.take();
        committed_buffer_ = a.committed_entries.capacity() != 0 ? std::move(a.committed_entries)
                                                                : spare_entries_.take();
        entries_buffer_.clear();  // not moved on only when empty, unless execute() failed
        committed_buffer_.clear();
        if (failed_) return;
    }
    // The mode detector: a lone voter runs no timer at all.
    set_ticker_needed(core_->needs_ticks());
    publish_status();
}

void Replica::execute(raft::Actions& a) {
    if (a.soft_state) on_soft_state(*a.soft_state);
    // 1. A snapshot from the leader is installed before anything else.
    if (a.snapshot) install_snapshot(*a.snapshot);
    // 2. Term and vote durable before any message of this batch leaves
    //    (Figure 2); a commit-only change is saved lazily (with the next
    //    term/vote change, or at stop).
    //    Crash window: the metadata file is replaced at once, ahead of WAL
    //    writes queued before it, so a crash may leave it over any completed
    //    prefix of the queue (the last write torn).  The commit it records
    //    is the core's min(commit, persisted): persisted counts only what
    //    completed writes left in place (DurabilityGate reports by write id),
    //    and committed entries are never truncated, so every such prefix
    //    holds the entries up to it.
    //    Out of space, nothing of this batch or after leaves until it is
    //    saved (persist_hard_state, send_messages).
    if (a.hard_state) {
        persist_hard_state(*a.hard_state);
        if (failed_) return;
    }
    // A new configuration takes effect when appended: peers change now.
    if (a.configuration) on_configuration(*a.configuration);
    // 3. Entries to the WAL, asynchronously (group commit).
    if (!a.entries.empty()) persist_entries(std::move(a.entries), a.write_id);
    // 4. Messages: now, or once everything written so far is durable.
    if (!a.messages.empty()) send_messages(std::move(a.messages));
    gate_.hold_until_durable(a.messages_after_persist);
    if (!a.messages_after_persist.empty()) send_messages(std::move(a.messages_after_persist));
    // 5. Committed entries to the apply thread, with their waiters.
    if (!a.committed_entries.empty()) {
        ApplyEntries item;
        item.waiters = spare_waiters_.take();
        proposals_.take_committed(a.committed_entries, item.waiters);
        item.entries = std::move(a.committed_entries);
        // Inline only when the flusher has nothing else to write: otherwise
        // it writes (and fsyncs) what is queued while the apply thread
        // applies this batch, rather than delaying that write behind the
        // apply (docs/decisions/0004-runtime-write-path-tuning.md).
        if (may_apply_inline() &&
            (!inline_queue().empty() ||
             (!log_->wal().has_queued() &&
              apply_->claim_inline(item.entries.size(), inline_apply_budget_ns())))) {
            inline_queue().push_back(std::move(item));  // applied once the lock is let go
        } else {
            apply_->enqueue(std::move(item));
        }
    }
    // 6. A member needs entries the core dropped while it led alone: a
    // snapshot, taken on the apply thread after what is queued above.
    if (a.snapshot_wanted) {
        apply_->enqueue(ApplySnapshot::automatic_one());
    }
    if (!a.read_states.empty() || !a.read_failures.empty()) {
        const raft::Index applied = apply_->applied_index();
        for (const raft::ReadState& rs : a.read_states) reads_.on_read_state(rs, applied);
        for (const raft::ReadFailure& f : a.read_failures) reads_.on_failure(f);
    }
}

void Replica::on_soft_state(const raft::SoftState& ss) {
    if (campaigning(ss.role) && !campaigning(role_)) elections_.fetch_add(1);
    // Queued first: the proposals failed below, and every later refusal,
    // reach their callers after the observer hears of it.
    announce_soft_state(ss);
    if (role_ == raft::Role::leader && ss.role != raft::Role::leader) {
        proposals_.fail_all(
            ErrorCode::aborted, "leadership lost; the entry may still commit", ss.leader,
            [this](std::function<void()> c) { complete_after_events(std::move(c)); });
    }
    if (ss.role != role_ || ss.role == raft::Role::leader) {
        log(LogLevel::info, std::string("role ") + raft::role_name(ss.role) + " term " +
                                std::to_string(ss.term) + " leader " + std::to_string(ss.leader));
    }
    role_ = ss.role;
    if (transfer_ && ss.leader == transfer_->target) {
        auto done = std::move(transfer_->done);
        transfer_.reset();
        done(Status::ok_status());
    }
}

// Crash windows (LogStore::append queues a truncation of the conflicting
// suffix, then the append, two WAL operations in that order):
//   - before the truncation completes: the old suffix stands, as if this
//     batch had never been taken (nothing of it was acknowledged);
//   - between the truncation and the append: the log ends at the cut;
//   - inside the append: a torn tail, a prefix of these entries survives.
// In each the core has not counted any of them durable: only the
// completion of this append (reported by `write`) vouches for them.
void Replica::persist_entries(std::vector<raft::Entry> entries, raft::WriteId write) {
    const std::uint64_t seq = gate_.appended(write);
    const std::uint64_t start = monotonic_ns();
    // A follower's I/O thread writes a small batch itself (on_message).
    const bool io_writes = ticker_wanted_ && handling_message() &&
                           core_->role() == raft::Role::follower &&
                           entries.size() <= k_follower_io_write_max_entries;
    if (io_writes) io_write_queued_ = true;
    const wal::Wal::Writer writer =
        io_writes ? wal::Wal::Writer::caller : wal::Wal::Writer::flusher;
    Status s = log_->append(entries, writer, [this, seq, start](Status st) {
        const std::uint64_t took = monotonic_ns() - start;
        fsync_latency_.record_ns(took);
        // Only the WAL's writing thread writes it (this callback, one batch
        // at a time); others read it.
        const std::uint64_t old = durable_ns_smoothed_.load(std::memory_order_relaxed);
        durable_ns_smoothed_.store((old * 7 + took) / 8, std::memory_order_relaxed);
        on_wal_write_done(seq, st);
    });
    spare_entries_.give(std::move(entries));
    if (!s.ok()) fail_stop(s);
}

// The WAL's flusher thread: the write is durable (or failed).  Only
// recorded here; the commit happens once per group commit, right after its
// callbacks (wal::Options::after_batch), under the core lock: no hop.
void Replica::on_wal_write_done(std::uint64_t seq, const Status& st) {
    if (!st.ok()) wal_failed_.store(true);
    // Completions come in submission order, so seq only grows.
    KEEL_ASSERT(seq > durable_seq_.load(), "WAL completions arrive in order");
    durable_seq_.store(seq);
    wal_progress_pending_.store(true);
}

void Replica::on_wal_progress() {
    if (shut_down_ || failed_) return;
    if (wal_failed_.load()) {
        const Status why = wal_->failure();
        return fail_stop(why.ok() ? Status(ErrorCode::failed, "WAL write failed") : why);
    }
    std::vector<raft::Message> released;
    gate_.durable_through(durable_seq_.load(), *core_, released);
    coalesce_acknowledgements(released);
    if (!released.empty()) send_messages(std::move(released));
    run_core();
}

void Replica::on_applied_progress() {
    if (shut_down_ || failed_) return;
    const raft::Index applied = apply_->applied_index();
    if (applied > core_->applied_index()) core_->on_applied(applied);
    reads_.on_applied(applied);
    const raft::Index durable = std::min(apply_->durable_index(), core_->applied_index());
    if (durable > sm_durable_seen_) follow_durable_state_machine(durable);
    run_core();
}

void Replica::on_snapshot_written(const raft::SnapshotMeta& meta) {
    if (shut_down_ || failed_) return;
    auto s = core_->on_snapshot_taken(meta.index);
    if (!s.ok()) {
        // E.g. a snapshot from the leader was installed meanwhile, past it.
        log(LogLevel::info, "snapshot at " + std::to_string(meta.index) +
                                " not recorded by the core: " + s.status().to_string());
    } else {
        {
            std::lock_guard lock(status_mu_);
            status_.snapshot_index = std::max(status_.snapshot_index, meta.index);
        }
        announce([index = meta.index](Observer& o) { o.on_snapshot(index); });
    }
    run_core();
}

void Replica::install_snapshot(const raft::SnapshotMeta& meta) {
    auto it = staged_.find({meta.index, meta.term});
    KEEL_ASSERT(it != staged_.end(), "the core installs only snapshots whose data was staged");
    const std::string staged = it->second;
    staged_.erase(staged_.begin(), std::next(it));
    // Crash window: the snapshot is published (durable) before the log is
    // reset, so a crash in between recovers from the snapshot (bootstrap
    // reconciles the old log against it).
    auto file = snapshots_->adopt(staged, meta);
    if (!file.ok()) return fail_stop(file.status());
    const std::uint64_t seq = gate_.reset();
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
    {
        // Published before the restore is queued: the apply thread may finish
        // it at once, and a status showing applied_index past the snapshot
        // must show the snapshot too.
        std::lock_guard lock(status_mu_);
        status_.snapshot_index = meta.index;
    }
    apply_->enqueue(std::move(item));
    announce([index = meta.index](Observer& o) { o.on_snapshot(index); });
    log(LogLevel::info, "installed snapshot at " + std::to_string(meta.index) + " from the leader");
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
    directory_.set_configured(std::move(peers));
    update_peer_directory();
    std::vector<MemberSpec> specs;
    specs.reserve(members.size());
    for (const MemberStatus& m : members) specs.push_back(m.spec);
    announce_members(std::move(specs));
    std::lock_guard lock(status_mu_);
    status_.members = std::move(members);
}

void Replica::send_messages(std::vector<raft::Message> messages) {
    if (!transport_) return;  // a lone node has nobody to talk to
    if (!gate_.may_send()) {
        // They may rest on a term or vote not yet on disk: dropped (Raft
        // retransmits); a snapshot being sent is reported as not sent.
        for (const raft::Message& m : messages)
            if (m.type == raft::MessageType::snapshot) core_->report_snapshot(m.to, false);
        return;
    }
    std::vector<raft::Message> plain;
    plain.reserve(messages.size());
    for (raft::Message& m : messages) {
        if (m.type == raft::MessageType::snapshot) {
            send_snapshot(m);
        } else {
            plain.push_back(std::move(m));
        }
    }
    if (!plain.empty() && !on_io_thread()) send_now_if_idle(plain);
    if (!plain.empty())
        to_io([this, plain = std::move(plain)]() mutable { transport_->send(std::move(plain)); });
}

// A proposer's appends and a follower's acknowledgement after its fsync are
// written by the thread that made them (the proposer, the WAL's flusher)
// instead of waking the I/O thread to write them: one thread hand-off less
// on each of the two legs of a replication round trip.  Only while nothing
// is queued for the I/O thread nor being run by it, so nothing written now
// overtakes a message sent earlier; the I/O thread writes the rest.
void Replica::send_now_if_idle(std::vector<raft::Message>& messages) {
    std::lock_guard lock(outbox_mu_);
    if (!outbox_.empty() || outbox_running_) return;
    transport_->send_now(messages);
}

void Replica::send_snapshot(const raft::Message& m) {
    KEEL_ASSERT(m.snapshot.has_value(), "a snapshot message carries its metadata");
    auto busy = outgoing_snapshot_.find(m.to);
    if (busy != outgoing_snapshot_.end() && busy->second == m.snapshot->index) return;
    std::optional<SnapshotFile> file = snapshots_->latest();
    if (!file || file->meta.index != m.snapshot->index || file->meta.term != m.snapshot->term) {
        log(LogLevel::warn,
            "no snapshot file for the core's snapshot at " + std::to_string(m.snapshot->index));
        core_->report_snapshot(m.to, false);
        return;
    }
    outgoing_snapshot_[m.to] = m.snapshot->index;
    // The transport streams the file itself (bounded chunks); the receiver
    // gets a byte copy, which is a valid snapshot file (metadata included).
    to_io([this, m, path = file->path] { transport_->send_snapshot(m, path); });
}

void Replica::on_tick() {
    if (shut_down_ || failed_) return;
    core_->tick();
    if (transfer_ && --transfer_->ticks_left == 0) {
        auto done = std::move(transfer_->done);
        transfer_.reset();
        done(Status(ErrorCode::timeout, "leadership transfer did not complete"));
    }
    run_core();
}

void Replica::fail_stop(const Status& why) {
    if (failed_) return;
    failed_ = true;
    log(LogLevel::error, "fail-stop: " + why.to_string());
    set_ticker_needed(false);
    proposals_.fail_all(ErrorCode::failed, why.to_string(), 0);
    reads_.fail_all(ErrorCode::failed, why.to_string());
    {
        std::lock_guard lock(status_mu_);
        status_.failure = why.to_string();
    }
    publish_status();
    announce([why](Observer& o) { o.on_failed(why); }, /*last=*/true);
    if (options_.on_failure) options_.on_failure(why);
}

void Replica::shutdown_on_io() {
    if (!failed_) {
        // The commit index is saved lazily; save it now so a restart re-applies at once.
        (void)log_->save_hard_state(gate_.hard_state());
    }
    // On the I/O thread (posted by stop()): sockets and the timer go now;
    // work queued for them earlier is dropped.
    KEEL_ASSERT(on_io_thread(), "shutdown runs on the I/O thread");
    shut_down_ = true;
    io_stopped_ = true;
    ticker_->stop();
    no_space_ticker_->stop();
    if (transport_) transport_->stop();
    std::vector<InboxProposal> inbox;
    {
        std::lock_guard lock(inbox_mu_);
        inbox.swap(inbox_);
        inbox_nonempty_.store(false);
    }
    for (InboxProposal& p : inbox) {
        pending_proposals_.fetch_sub(1, std::memory_order_relaxed);
        ProposeResult r;
        r.status = Status(ErrorCode::aborted, "node stopped");
        p.done(std::move(r));
    }
    proposals_.fail_all(ErrorCode::aborted, "node stopped; the entry may still be committed", 0);
    reads_.fail_all(ErrorCode::aborted, "node stopped");
    if (transfer_) {
        auto done = std::move(transfer_->done);
        transfer_.reset();
        done(Status(ErrorCode::aborted, "node stopped"));
    }
    for (const auto& [key, path] : staged_) std::remove(path.c_str());
    staged_.clear();
}

void Replica::to_io(std::function<void()> work) {
    std::lock_guard lock(outbox_mu_);
    outbox_.push_back(std::move(work));
}

void Replica::set_ticker_needed(bool needed) {
    if (needed == ticker_wanted_) return;
    ticker_wanted_ = needed;
    single_mode_.store(!needed, std::memory_order_relaxed);
    log_->wal().set_idle_spin_us(needed ? 0 : k_single_mode_flusher_spin_us);
    to_io([this, needed] { ticker_->set_needed(needed); });
}

void Replica::flush_io_outbox() {
    if (on_io_thread()) return run_io_outbox();
    {
        std::lock_guard lock(outbox_mu_);
        if (outbox_.empty() || outbox_posted_) return;
        outbox_posted_ = true;
    }
    post([this] { run_io_outbox(); });
}

void Replica::run_io_outbox() {
    std::vector<std::function<void()>> work;
    {
        std::lock_guard lock(outbox_mu_);
        if (outbox_.empty()) return;
        work.swap(outbox_);
        outbox_posted_ = false;
        outbox_running_ = true;
    }
    for (auto& w : work)
        if (!io_stopped_) w();
    std::lock_guard lock(outbox_mu_);
    outbox_running_ = false;
}

void Replica::publish_status() {
    std::lock_guard lock(status_mu_);
    status_.id = options_.id;
    status_.role = public_role(core_->role());
    status_.term = core_->term();
    status_.leader_id = core_->leader();
    status_.commit_index = core_->commit_index();
    status_.first_index = core_->first_index();
    status_.last_index = core_->last_index();
    status_.mode = core_->needs_ticks() ? Mode::cluster : Mode::single;
    // The leader's view of each member's log (0 on a follower: it has none).
    // Copied here, after each batch, so that status() never takes the core
    // lock: a reader holding it would strand work other threads leave for
    // the holder (kick_core), as a proposal in single mode, where nothing
    // else runs the core.
    for (MemberStatus& m : status_.members) m.match_index = 0;
    if (core_->role() == raft::Role::leader && status_.members.size() > 1) {
        for (const raft::PeerProgress& p : core_->progress())
            for (MemberStatus& m : status_.members)
                if (m.spec.id == p.id) m.match_index = p.match;
    }
}

}  // namespace keel::runtime
