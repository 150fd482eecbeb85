// runtime/apply_worker.hpp — the apply thread: applies committed entries to
// the StateMachine, completes proposals, and decides when to snapshot.
//
// The core lock's holder enqueues ApplyItems (apply_item.hpp) in log order
// (apply_queue.hpp); the apply thread takes everything queued at each
// wakeup, applies it, runs the proposers' callbacks, then reports its
// progress through on_applied (called on the thread that applied; the
// replica records it for the core lock's holder).  The queue is bounded by
// entries (queued_entries() lets the replica refuse proposals with "busy"
// near the limit); committed entries themselves are never refused: they are
// already decided.
//
// A small batch may be applied instead by the thread that committed it (the
// WAL flusher in single-node mode, the I/O thread in cluster mode:
// inline_policy.hpp), through claim_inline / apply_claimed below: one thread
// wakeup less between the commit and the proposer's answer.
//
// Snapshots: after an apply that crosses snapshot_every_entries, or on an
// explicit request, the apply thread calls StateMachine::snapshot() (quick:
// the state machine captures a view) and hands the returned function, with
// the metadata as of the applied index, to on_snapshot (the replica runs it
// on the background thread).  At most one automatic snapshot is in flight.
//
// "The apply thread" is the group's own thread (keel::Node::open), or, for
// the groups of a keel::Host, whichever thread of the Host's apply pool
// (strand_pool.hpp) runs the group now: one at a time, in order, as the
// group's own thread would, so everything said here of the apply thread
// holds of it, and StateMachine's contract (one call at a time, each seeing
// the previous ones) is kept.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <variant>
#include <vector>

#include "keel/node.hpp"
#include "keel/state_machine.hpp"
#include "raft/types.hpp"
#include "runtime/apply_item.hpp"
#include "runtime/apply_queue.hpp"
#include "runtime/latency_histogram.hpp"
#include "runtime/strand_pool.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

class ApplyWorker final : private StrandPool::Strand {
public:
    struct Hooks {
        // After each batch: everything up to `index` is applied.
        std::function<void(raft::Index index)> on_applied;
        // A snapshot to write: the function, and the metadata as of its index;
        // `asked_for`: snapshot_now() or a retry, not an automatic one.
        // `done` must be called with the outcome.
        std::function<void(SnapshotFunction, raft::SnapshotMeta, bool asked_for,
                           std::function<void(Status)> done)>
            on_snapshot;
        // StateMachine::restore failed (the state machine is half-way): no
        // entry is applied after it, and waiters fail.  The replica fail-stops.
        std::function<void(Status)> on_restore_failed;
        std::function<void(LogLevel, const std::string&)> log;
        // Around each batch of applies and proposal callbacks (may be empty):
        // lets the replica gather the proposals those callbacks submit into
        // one wakeup of the I/O thread, so they share one WAL batch.
        // batch_end comes after the batch's on_applied.
        std::function<void()> batch_begin;
        std::function<void()> batch_end;
        // After an item's entries are applied and its waiters completed (may
        // be empty): its vectors, handed back for reuse.
        std::function<void(std::vector<raft::Entry>, std::vector<ApplyWaiter>)> recycle;
    };

    // `applied` is what the state machine reflects already (the restored
    // snapshot's metadata, a durable state machine's own position, or index
    // 0 with the bootstrap configuration); `last_snapshot_index` the keel
    // snapshot the node started from (0: none).  `pool` (null: a thread of
    // the worker's own) must outlive the worker.
    ApplyWorker(std::shared_ptr<StateMachine> sm, raft::SnapshotMeta applied,
                raft::Index last_snapshot_index, std::uint64_t snapshot_every_entries, Hooks hooks,
                LatencyHistogramRecorder* commit_latency, StrandPool* pool = nullptr);
    ~ApplyWorker() override;  // stop()

    // Starts the thread, or lets the pool run what is queued.
    void start();
    // Completes what is queued, then stops the thread (pooled: waits until
    // no pool thread runs the group; one that is only queued there is run
    // on the calling thread instead).  Waiters of items never applied get
    // aborted.  REQUIRES: not on this worker's apply thread.
    void stop();

    void enqueue(ApplyItem item) {
        if (queue_.push(std::move(item))) pool_->schedule(*this);
    }
    // Entries queued or being applied (lock-free; for backpressure).
    std::size_t queued_entries() const { return queue_.queued_entries(); }
    raft::Index applied_index() const { return applied_index_.load(); }
    // What a durable state machine last reported it holds
    // (StateMachine::applied_index, asked after each batch); 0 for one
    // that keeps nothing.
    raft::Index durable_index() const { return durable_index_.load(); }
    // Entries applied since start (noop and configuration entries included).
    std::uint64_t entries_applied() const { return entries_applied_.load(); }
    // Called (from any thread) when the automatic snapshot handed out
    // earlier has finished, so another one may start: at once if one came
    // due while it was in flight.
    void snapshot_finished();
    // Inline apply (inline_policy.hpp): the thread that committed entries
    // may apply a batch itself instead of waking the apply thread.
    // claim_inline() succeeds when the apply thread is idle with nothing
    // queued, the batch is predicted to take at most budget_ns (from the
    // measured cost per entry; 0 = never).  A claimed batch that crosses
    // snapshot_every_entries is applied by the claimer, and the capture
    // (StateMachine::snapshot()) queued for the apply thread, unless an
    // automatic snapshot is in flight.  After a successful claim, items
    // enqueue()d meanwhile wait, and the claimer must call apply_claimed()
    // with the claimed items (in log order), from a thread holding no keel
    // lock.  The state machine still sees one apply at a time, in order.
    bool claim_inline(std::size_t entries, std::uint64_t budget_ns);
    void apply_claimed(ApplyItems& items);

private:
    void run();
    // Pooled: one slice on a pool thread (StrandPool::Strand).
    bool run_slice() override;
    // Applies `items` (apply thread, or an inline claimer); returns the
    // number of entries.
    std::size_t apply_batch(ApplyItems& items);
    // One item of a batch; returns its entries.
    std::size_t apply_one(ApplyItem& item, std::uint64_t& task_ns);
    void apply_entries(ApplyEntries& item);
    void maybe_snapshot(std::function<void(Status)> requested, bool again = false);
    // An automatic snapshot came due while one was in flight: taken once
    // that one finishes (snapshot_finished).
    void note_skipped_capture();
    // After a failed restore: completes an item without applying it.
    void refuse(ApplyItem& item);

    std::shared_ptr<StateMachine> sm_;
    const std::uint64_t snapshot_every_;
    Hooks hooks_;
    LatencyHistogramRecorder* commit_latency_;
    StrandPool* const pool_;

    ApplyQueue queue_;
    std::atomic<std::uint64_t> entries_applied_{0};
    // Smoothed cost of one entry (apply and callbacks); starts pessimistic.
    std::atomic<std::uint64_t> apply_ns_per_entry_{2000};

    // Apply state: touched by the apply thread, or by an inline claimer
    // (never both at once).
    raft::SnapshotMeta applied_;           // index/term of the last applied entry, config as of it
    raft::Index last_snapshot_index_ = 0;  // the last snapshot captured (written or not)
    // The write of the last capture failed: a request at the same index
    // captures again (set on the thread that wrote it).
    std::atomic<bool> last_snapshot_failed_{false};
    std::atomic<raft::Index> applied_index_{0};
    std::atomic<raft::Index> durable_index_{0};
    std::atomic<bool> snapshot_in_flight_{false};
    std::atomic<bool> capture_skipped_{false};  // note_skipped_capture()
    bool broken_ = false;                       // a restore failed: nothing is applied any more
    // An inline claimer is applying (apply_claimed); its batch crossed
    // snapshot_every_entries, so the apply thread is to capture once the
    // claimer lets go.
    bool claimed_ = false;
    bool capture_wanted_ = false;
    std::vector<CommittedEntry> batch_;
    std::vector<std::string> results_;
    std::thread thread_;
};

}  // namespace keel::runtime
