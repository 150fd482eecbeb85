// The write path, in the order it runs: a proposal from the caller's thread
// into the core and the WAL, the WAL's completion back into the core, the
// commit handed to the state machine (docs/architecture.md follows it file
// by file).  Everything here but propose_async and the WAL's callbacks runs
// under the core lock (core_lock.hpp).
#include <algorithm>
#include <iterator>

#include "runtime/acknowledgements.hpp"
#include "runtime/replica.hpp"

namespace keel::runtime {

// 1. The caller's thread: validate, queue in the inbox, run the core.
void Replica::propose_async(SharedBytes data, std::function<void(ProposeResult)> done) {
    const std::size_t queued = admit_proposal(std::move(data), std::move(done));
    if (queued == 0) return;
    // Under the core lock, the holder takes the inbox in before releasing
    // it.  Inside a batch of proposal callbacks, the batch's end does (in
    // single-node mode also every kDeferredProposalsChunk proposals: the
    // WAL starts on the first chunk while the apply thread is still
    // answering the rest).  Otherwise this thread runs the core itself.
    if (holding_core() || inline_.gathers(queued)) return;
    kick_core();
}

// The same, all queued before the core runs once for them.
void Replica::propose_batch_async(std::vector<Proposal> proposals) {
    std::size_t queued = 0;
    for (Proposal& p : proposals)
        queued = std::max(queued, admit_proposal(std::move(p.data), std::move(p.done)));
    if (queued == 0 || holding_core() || inline_.gathers(queued)) return;
    kick_core();
}

std::size_t Replica::admit_proposal(SharedBytes data, std::function<void(ProposeResult)> done) {
    auto fail = [&](ErrorCode code, const char* why) -> std::size_t {
        ProposeResult r;
        r.status = Status(code, why);
        done(std::move(r));
        return 0;
    };
    if (stopping()) return fail(ErrorCode::aborted, "node stopped");
    if (data.size() > options_.max_entry_bytes)
        return fail(ErrorCode::too_large, "entry larger than max_entry_bytes");
    if (health_.no_space_causes.load(std::memory_order_relaxed) != 0)
        return fail(ErrorCode::no_space,
                    "storage is full: writes are refused until space is freed");
    if (apply_->queued_entries() >= options_.max_apply_queue_entries)
        return fail(ErrorCode::busy, "apply queue full");
    if (!inbox_.admit(options_.max_pending_proposals))
        return fail(ErrorCode::busy, "too many pending proposals");
    return inbox_.push(InboxProposal{std::move(data), std::move(done), monotonic_ns()});
}

// What other threads recorded while the lock was busy (CoreLock::settle_locked).
void Replica::settle(unsigned work) {
    if ((work & CoreLock::kWalProgress) != 0) on_wal_progress();
    // Proposals before the applied progress: those the applied entries'
    // callbacks made carry the new commit index to the followers, which
    // the core sends alone once the leader has applied it
    // (raft/replication.cpp, on_commit_advanced).
    if (inbox_.nonempty()) drain_inbox();
    if ((work & CoreLock::kAppliedProgress) != 0) on_applied_progress();
    if ((work & CoreLock::kWalHealth) != 0) on_wal_health();
}

// 2. Every proposal queued since the last drain goes into the core before
// take_actions(), so a burst becomes one WAL batch.
void Replica::drain_inbox() {
    Locked& l = locked_;
    inbox_.take(l.draining);
    std::uint64_t accepted = 0;
    for (InboxProposal& p : l.draining) {
        if (halted()) {
            inbox_.release();
            ProposeResult r;
            r.status = Status(l.failed ? ErrorCode::failed : ErrorCode::aborted, "node stopped");
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
        l.proposals.add(
            PendingProposal{proposed->index, proposed->term, std::move(p.done), p.start_ns});
    }
    l.draining.clear();
    // Written only under the core lock (no atomic addition needed), read by
    // status() from anywhere.
    board_.proposals_accepted.store(
        board_.proposals_accepted.load(std::memory_order_relaxed) + accepted,
        std::memory_order_relaxed);
    run_core();
}

// 3. Every input is followed by take_actions() and the batch carried out.
void Replica::run_core() {
    if (halted()) return;
    Locked& l = locked_;
    while (core_->has_actions()) {
        raft::Actions a;
        a.entries.swap(l.entries_buffer);
        a.committed_entries.swap(l.committed_buffer);
        core_->take_actions(a);
        execute(a);
        // A vector execute() did not move on is empty and keeps its capacity
        // for the next batch; one it moved on is replaced by a spare (if one
        // has come back).
        l.entries_buffer =
            a.entries.capacity() != 0 ? std::move(a.entries) : spares_.entries.take();
        l.committed_buffer = a.committed_entries.capacity() != 0 ? std::move(a.committed_entries)
                                                                 : spares_.entries.take();
        l.entries_buffer.clear();  // not moved on only when empty, unless execute() failed
        l.committed_buffer.clear();
        if (l.failed) return;
    }
    // The mode detector: a lone voter runs no timer at all.  A transfer's
    // bound is counted in ticks (on_tick), and a group may quiesce after its
    // core gave the transfer up: the ticks run on until the caller is told.
    set_ticker_needed(core_->needs_ticks() || locked_.transfer.has_value());
    publish_status();
}

// 4. One batch of core output, exactly per the contract in raft/actions.hpp.
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
    //    On a shared WAL the hard state is a record queued like the entries
    //    (decision 0025): every message waits in the gate until it is
    //    durable (step 4), ordered with the writes queued before it as an
    //    append is (the commit it records is covered as above).
    if (a.hard_state) {
        persist_hard_state(*a.hard_state);
        if (locked_.failed) return;
    }
    // A new configuration takes effect when appended: peers change now.
    if (a.configuration) on_configuration(*a.configuration);
    // 3. Entries to the WAL, asynchronously (group commit).
    if (!a.entries.empty()) persist_entries(std::move(a.entries), a.write_id);
    // 4. Messages: now, or once everything written so far is durable
    //    (all of them while a queued term or vote is not).
    if (locked_.gate.hard_state_in_flight()) locked_.gate.hold_until_durable(a.messages);
    if (!a.messages.empty()) send_messages(std::move(a.messages));
    locked_.gate.hold_until_durable(a.messages_after_persist);
    if (!a.messages_after_persist.empty()) send_messages(std::move(a.messages_after_persist));
    // 5. Committed entries to the state machine, with their waiters.
    if (!a.committed_entries.empty()) commit(a.committed_entries);
    // 6. A member needs entries the core dropped while it led alone: a
    // snapshot, taken on the apply thread after what is queued above.
    if (a.snapshot_wanted) apply_->enqueue(ApplySnapshot::automatic_one());
    if (!a.read_states.empty() || !a.read_failures.empty()) {
        const raft::Index applied = apply_->applied_index();
        for (const raft::ReadState& rs : a.read_states) locked_.reads.on_read_state(rs, applied);
        for (const raft::ReadFailure& f : a.read_failures) locked_.reads.on_failure(f);
    }
}

// 5. Entries to the WAL.  Crash windows (LogStore::append queues a
// truncation of the conflicting suffix, then the append, two WAL operations
// in that order):
//   - before the truncation completes: the old suffix stands, as if this
//     batch had never been taken (nothing of it was acknowledged);
//   - between the truncation and the append: the log ends at the cut;
//   - inside the append: a torn tail, a prefix of these entries survives.
// In each the core has not counted any of them durable: only the
// completion of this append (reported by `write`) vouches for them.
void Replica::persist_entries(std::vector<raft::Entry> entries, raft::WriteId write) {
    const std::uint64_t seq = locked_.gate.appended(write);
    const std::uint64_t start = monotonic_ns();
    // A follower's I/O thread writes a small batch itself (on_message), on a
    // WAL of the group's own.  Not on a Host's shared WAL: the I/O thread
    // serves every group, and an fdatasync there would hold up the messages
    // of all of them, whose appends the flusher gathers into one batch
    // meanwhile (docs/groups.md, "Figures").
    const bool io_writes = seat_.services.wal() == nullptr &&
                           inline_.io_writes(core_->role() == raft::Role::follower, entries.size());
    const wal::Wal::Writer writer =
        io_writes ? wal::Wal::Writer::caller : wal::Wal::Writer::flusher;
    Status s = log_->append(entries, writer, [this, seq, start](Status st) {
        const std::uint64_t took = monotonic_ns() - start;
        board_.fsync_latency.record_ns(took);
        inline_.record_durable_ns(took);
        on_wal_write_done(seq, st);
    });
    spares_.entries.give(std::move(entries));
    if (!s.ok()) fail_stop(s);
}

// 6. The WAL's writing thread: the write is durable (or failed).  Only
// recorded here; the commit happens once per group commit, right after its
// callbacks (wal::Options::after_batch), under the core lock: no hop.
void Replica::on_wal_write_done(std::uint64_t seq, const Status& st) {
    if (!st.ok()) health_.wal_failed.store(true);
    // Completions come in submission order, so seq only grows.
    KEEL_ASSERT(seq > durable_seq_.load(), "WAL completions arrive in order");
    durable_seq_.store(seq);
    core_lock_.note(CoreLock::kWalProgress);
}

// 7. The WAL's writing thread, after the callbacks of one group commit:
// commit what it made durable, then apply inline what the commit claimed
// (no lock held).
void Replica::on_wal_batch_done() {
    if (!core_lock_.noted(CoreLock::kWalProgress)) return;
    // Single-node mode with the next batch already queued: the flusher goes
    // on to write it, and the apply thread (idle while that batch's
    // proposers wait for their fsync) commits this one.  The commit would
    // otherwise sit between two fsyncs on the only thread that writes.  A
    // closed loop of K proposers then keeps two cohorts of K/2 in turn on
    // the disk and in the state machine, overlapping each one's CPU work
    // with the other's fsync.  (Cluster mode commits here: the commit also
    // releases messages held for this write.)
    if (!inline_.cluster_mode() && wal_->has_queued()) {
        apply_->enqueue(ApplyTask{[this] { kick_core(); }});
        return;
    }
    inline_.begin_flusher_commit();
    kick_core();
    inline_.end_flusher_commit();
    inline_.apply_flusher_claims(*apply_);
}

// 8. Under the core lock: the core hears which of its writes are durable
// (the lone voter commits), and the acknowledgements held for them leave.
void Replica::on_wal_progress() {
    if (halted()) return;
    if (health_.wal_failed.load()) {
        const Status why = wal_->failure();
        return fail_stop(why.ok() ? Status(ErrorCode::failed, "WAL write failed") : why);
    }
    std::vector<raft::Message> released;
    locked_.gate.durable_through(durable_seq_.load(), *core_, released);
    coalesce_acknowledgements(released);
    if (!released.empty()) send_messages(std::move(released));
    run_core();
}

// 9. Committed entries, with the waiters whose entries they are, to the
// apply thread, or claimed by this thread to apply once it lets go of the
// lock (inline_policy.hpp).  The apply (apply_worker.cpp) completes the
// callers' futures.
void Replica::commit(std::vector<raft::Entry>& committed) {
    ApplyEntries item;
    item.waiters = spares_.waiters.take();
    locked_.proposals.take_committed(committed, item.waiters);
    item.entries = std::move(committed);
    if (!inline_.offer(item, *apply_, log_->wal())) apply_->enqueue(std::move(item));
}

// 10. The apply thread reported progress: the core, the reads waiting for
// it, and a durable state machine's position follow.
void Replica::on_applied_progress() {
    if (halted()) return;
    const raft::Index applied = apply_->applied_index();
    if (applied > core_->applied_index()) core_->on_applied(applied);
    locked_.reads.on_applied(applied);
    const raft::Index durable = std::min(apply_->durable_index(), core_->applied_index());
    if (durable > health_.sm_durable_seen) follow_durable_state_machine(durable);
    run_core();
}

}  // namespace keel::runtime
