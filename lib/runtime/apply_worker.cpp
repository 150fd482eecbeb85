// The apply thread (or a Host's apply pool).  See apply_worker.hpp.
#include "runtime/apply_worker.hpp"

#include <pthread.h>

#include <chrono>
#include <utility>

#include "keel/assert.hpp"

namespace keel::runtime {

ApplyWorker::ApplyWorker(std::shared_ptr<StateMachine> sm, raft::SnapshotMeta applied,
                         raft::Index last_snapshot_index, std::uint64_t snapshot_every_entries,
                         Hooks hooks, LatencyHistogramRecorder* commit_latency, StrandPool* pool)
    : sm_(std::move(sm)),
      snapshot_every_(snapshot_every_entries),
      hooks_(std::move(hooks)),
      commit_latency_(commit_latency),
      pool_(pool),
      applied_(std::move(applied)),
      last_snapshot_index_(last_snapshot_index) {
    applied_index_.store(applied_.index);
    if (pool_ != nullptr) queue_.set_pooled();
}

ApplyWorker::~ApplyWorker() {
    stop();
}

void ApplyWorker::start() {
    KEEL_ASSERT(!thread_.joinable(), "apply worker started twice");
    if (pool_ != nullptr) {
        if (queue_.start_pooled()) pool_->schedule(*this);
        return;
    }
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "keel-apply");
        run();
    });
}

void ApplyWorker::stop() {
    // No apply may run once stop() returns: wait out an inline one.
    queue_.close();
    if (thread_.joinable()) thread_.join();
    if (pool_ != nullptr) {
        KEEL_ASSERT(StrandPool::running() != this, "an apply worker stopped from its own apply");
        queue_.seal([this] { return pool_->take_back(*this); },
                    [this] { return StrandPool::run_slice_here(*this); });
    }
    // Anything enqueued after the thread left (or never started) is not applied.
    ApplyItems rest = queue_.take_rest();
    for (ApplyItem& item : rest) {
        if (auto* e = std::get_if<ApplyEntries>(&item)) {
            for (ApplyWaiter& w : e->waiters) {
                ProposeResult r;
                r.status = Status(ErrorCode::aborted, "node stopped before the entry was applied");
                r.index = w.index;
                w.done(std::move(r));
            }
        } else if (auto* s = std::get_if<ApplySnapshot>(&item); s != nullptr && s->done) {
            s->done(Status(ErrorCode::aborted, "node stopped"));
        }
    }
}

void ApplyWorker::snapshot_finished() {
    snapshot_in_flight_.store(false);
    // One came due meanwhile: take it now, not at the next apply, which may
    // be long in coming (writes stopped).
    if (capture_skipped_.exchange(false)) enqueue(ApplySnapshot::automatic_one());
}

void ApplyWorker::note_skipped_capture() {
    capture_skipped_.store(true);
    // snapshot_finished() may have run between the caller's look and the
    // store: then nobody else will take it.
    if (!snapshot_in_flight_.load() && capture_skipped_.exchange(false))
        enqueue(ApplySnapshot::automatic_one());
}

void ApplyWorker::run() {
    ApplyItems items;
    while (queue_.take(items)) {
        const std::size_t entries = apply_batch(items);
        items.clear();
        queue_.done(entries);
    }
}

bool ApplyWorker::run_slice() {
    ApplyItems items;
    if (!queue_.take_slice(items)) return queue_.end_slice(0);
    const std::size_t entries = apply_batch(items);
    items.clear();
    return queue_.end_slice(entries);
}

std::size_t ApplyWorker::apply_batch(ApplyItems& items) {
    const raft::Index before = applied_.index;
    const std::uint64_t start = monotonic_ns();
    std::uint64_t task_ns = 0;  // not the state machine's: left out of the estimate
    std::size_t entries = 0;
    if (hooks_.batch_begin) hooks_.batch_begin();
    for (ApplyItem& item : items) entries += apply_one(item, task_ns);
    if (entries != 0) {
        // Cost per entry of the state machine and the callbacks, smoothed:
        // what claim_inline() predicts a batch will take.  (Not the proposals
        // those callbacks submit, handed to the core at batch_end: some thread
        // does that work before they reach the WAL either way.)
        const std::uint64_t per_entry = (monotonic_ns() - start - task_ns) / entries;
        const std::uint64_t old = apply_ns_per_entry_.load(std::memory_order_relaxed);
        apply_ns_per_entry_.store((old * 7 + per_entry) / 8, std::memory_order_relaxed);
    }
    entries_applied_.fetch_add(entries);
    if (applied_.index != before) {
        // Between applies, like every call into the state machine; before
        // on_applied, which reports it to the replica (log compaction).
        if (!broken_) durable_index_.store(std::min(sm_->applied_index(), applied_.index));
        applied_index_.store(applied_.index);
        hooks_.on_applied(applied_.index);
    }
    // After on_applied: the core lock that reports the progress also takes
    // in the proposals the callbacks made, and batch_end finds none left
    // (one trip through the core per batch instead of two).
    if (hooks_.batch_end) hooks_.batch_end();
    return entries;
}

std::size_t ApplyWorker::apply_one(ApplyItem& item, std::uint64_t& task_ns) {
    if (broken_) {
        refuse(item);
        return entry_count(item);
    }
    if (auto* e = std::get_if<ApplyEntries>(&item)) {
        const std::size_t n = e->entries.size();
        apply_entries(*e);
        if (hooks_.recycle) hooks_.recycle(std::move(e->entries), std::move(e->waiters));
        return n;
    }
    if (auto* r = std::get_if<ApplyRestore>(&item)) {
        Status s = r->restore(*sm_);
        if (!s.ok()) {
            // A half-restored state machine cannot go on applying.
            hooks_.log(LogLevel::error, "snapshot restore failed: " + s.to_string());
            broken_ = true;
            if (hooks_.on_restore_failed) hooks_.on_restore_failed(s);
            return 0;
        }
        applied_ = r->meta;
        last_snapshot_index_ = applied_.index;
    } else if (auto* snap = std::get_if<ApplySnapshot>(&item)) {
        if (snap->automatic) {
            maybe_snapshot({});
        } else {
            maybe_snapshot(std::move(snap->done), snap->again);
        }
    } else if (auto* task = std::get_if<ApplyTask>(&item)) {
        const std::uint64_t task_start = monotonic_ns();
        task->run();
        task_ns += monotonic_ns() - task_start;
    }
    return 0;
}

bool ApplyWorker::claim_inline(std::size_t entries, std::uint64_t budget_ns) {
    if (budget_ns == 0) return false;
    if (entries * apply_ns_per_entry_.load(std::memory_order_relaxed) > budget_ns) return false;
    // A batch that crosses snapshot_every_entries is claimed too: the
    // claimer applies it and leaves the capture to the apply thread
    // (apply_claimed).
    return queue_.try_claim([] { return true; });
}

void ApplyWorker::apply_claimed(ApplyItems& items) {
    claimed_ = true;
    apply_batch(items);
    claimed_ = false;
    items.clear();
    const bool capture = capture_wanted_;
    capture_wanted_ = false;
    // Queued items, or stop(), wait for it.
    if (queue_.release_claim()) pool_->schedule(*this);
    // StateMachine::snapshot() runs on the apply thread (its contract), and
    // may take a while: one item wakes the apply thread for it, while the
    // claimer goes back to its own work.
    if (capture) enqueue(ApplySnapshot::automatic_one());
}

void ApplyWorker::apply_entries(ApplyEntries& item) {
    batch_.clear();
    for (const raft::Entry& e : item.entries) {
        KEEL_ASSERT(e.index == applied_.index + 1, "committed entries are applied in order, once");
        KEEL_ASSERT(e.term >= applied_.term, "terms never decrease along the log");
        applied_.index = e.index;
        applied_.term = e.term;
        if (e.type == raft::EntryType::normal) {
            batch_.push_back(CommittedEntry{e.index, e.term, e.data});
        } else if (e.type == raft::EntryType::config) {
            auto config = raft::decode_configuration(e.data);
            KEEL_ASSERT(config.has_value(), "a committed configuration entry decodes");
            applied_.config = std::move(*config);
        }
    }
    results_.clear();
    if (!batch_.empty()) {
        results_.resize(batch_.size());
        sm_->apply(batch_, results_);
        KEEL_ASSERT(results_.size() == batch_.size(), "one result per applied entry");
    }
    // Visible before any proposer hears back (status() after a future
    // completes must show the entry applied).
    applied_index_.store(applied_.index);
    const std::uint64_t now = item.waiters.empty() ? 0 : monotonic_ns();
    // Recorded before any proposer hears back, like applied_index.
    if (commit_latency_ && !item.waiters.empty()) {
        LatencyHistogramRecorder::Tally latencies;
        for (const ApplyWaiter& w : item.waiters)
            if (w.start_ns != 0 && now > w.start_ns) latencies.record_ns(now - w.start_ns);
        commit_latency_->add(latencies);
    }
    std::size_t j = 0;
    for (ApplyWaiter& w : item.waiters) {
        while (j < batch_.size() && batch_[j].index < w.index) ++j;
        ProposeResult r;
        r.index = w.index;
        if (j < batch_.size() && batch_[j].index == w.index) r.result = std::move(results_[j]);
        w.done(std::move(r));
    }
    if (snapshot_every_ == 0 || applied_.index - last_snapshot_index_ < snapshot_every_) return;
    if (!claimed_) {
        maybe_snapshot({});
    } else if (!snapshot_in_flight_.load()) {
        capture_wanted_ = true;
    } else {
        note_skipped_capture();  // (the apply thread would skip it now: no wakeup)
    }
}

void ApplyWorker::refuse(ApplyItem& item) {
    if (auto* e = std::get_if<ApplyEntries>(&item)) {
        for (ApplyWaiter& w : e->waiters) {
            ProposeResult r;
            r.status = Status(ErrorCode::failed, "the state machine failed to restore a snapshot");
            r.index = w.index;
            w.done(std::move(r));
        }
    } else if (auto* s = std::get_if<ApplySnapshot>(&item)) {
        if (s->done) s->done(Status(ErrorCode::failed, "the state machine failed"));
    } else if (auto* task = std::get_if<ApplyTask>(&item)) {
        task->run();  // the replica's own work (a commit), not an apply
    }
}

void ApplyWorker::maybe_snapshot(std::function<void(Status)> requested, bool again) {
    // Nothing new to capture: unless the last attempt failed after its
    // capture, a snapshot of applied_ exists already.
    const bool last_failed = last_snapshot_failed_.load(std::memory_order_acquire);
    if (applied_.index == 0 || (applied_.index == last_snapshot_index_ && !again && !last_failed)) {
        if (requested) requested(Status::ok_status());
        return;
    }
    const bool asked_for = static_cast<bool>(requested);
    std::function<void(Status)> done = std::move(requested);
    if (!done) {
        if (snapshot_in_flight_.exchange(true)) {  // one automatic snapshot at a time
            note_skipped_capture();
            return;
        }
        done = [this](Status s) {
            if (!s.ok()) hooks_.log(LogLevel::warn, "automatic snapshot failed: " + s.to_string());
            snapshot_finished();
        };
    }
    // The write finishes on another thread: its failure is noted there, and
    // read back by the next request.
    done = [this, inner = std::move(done)](Status s) {
        if (!s.ok()) last_snapshot_failed_.store(true, std::memory_order_release);
        inner(std::move(s));
    };
    SnapshotFunction fn = sm_->snapshot();
    last_snapshot_index_ = applied_.index;
    last_snapshot_failed_.store(false, std::memory_order_release);
    hooks_.on_snapshot(std::move(fn), applied_, asked_for, std::move(done));
}

}  // namespace keel::runtime
