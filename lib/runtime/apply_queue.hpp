// runtime/apply_queue.hpp — the hand-off between the threads that commit
// entries and the one that applies them: the ApplyItems queued in log order
// (bounded by entries: queued_entries() lets the group refuse proposals
// with "busy" near the limit), and who applies next, the apply thread or an
// inline claimer (inline_policy.hpp), never both at once.
//
// Pooled (set_pooled: a Host's groups share a few apply threads,
// strand_pool.hpp), there is no apply thread of the group's own to wake:
// push and release_claim instead say when the group must be scheduled on
// the pool (true: the caller schedules it), and a pool thread runs one
// slice at a time (take_slice / end_slice).  The group stays scheduled from
// then until a slice ends with nothing queued, and no claim succeeds
// meanwhile, so the group's items are applied by one thread at a time, in
// order.  Nothing is scheduled before start_pooled() nor after seal().
//
// Owns: the queued items.
// Threads: push and queued_entries from any thread; take/done (or
// take_slice/end_slice) on the applying thread; try_claim/release_claim on
// the claiming thread; close, seal and take_rest from the thread that stops
// the apply worker.
#pragma once

#include <atomic>
#include <cstddef>
#include <utility>

#include "keel/assert.hpp"
#include "runtime/apply_item.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

class ApplyQueue {
public:
    // True (pooled only): the caller must schedule the group on the pool.
    [[nodiscard]] bool push(ApplyItem item) EXCLUDES(mu_) {
        bool schedule = false;
        bool pooled = false;
        {
            MutexLock lock(mu_);
            queued_entries_ += entry_count(item);
            queued_atomic_.store(queued_entries_, std::memory_order_relaxed);
            items_.push_back(std::move(item));
            pooled = pooled_;
            if (pooled) schedule = claim_schedule();
        }
        if (!pooled) cv_.notify_one();
        return schedule;
    }

    // ---- pooled ----
    void set_pooled() EXCLUDES(mu_) {
        MutexLock lock(mu_);
        pooled_ = true;
    }
    // From now on work is scheduled; true: some is queued already.
    [[nodiscard]] bool start_pooled() EXCLUDES(mu_) {
        MutexLock lock(mu_);
        started_ = true;
        return claim_schedule();
    }
    // A pool thread: takes everything queued (false: nothing).  REQUIRES:
    // the group is scheduled and runs on this thread.
    bool take_slice(ApplyItems& items) EXCLUDES(mu_) {
        MutexLock lock(mu_);
        KEEL_ASSERT(scheduled_, "a slice of a scheduled group");
        if (items_.empty()) return false;
        items.swap(items_);
        applying_ = true;
        return true;
    }
    // The slice applied `entries` entries; true: more is queued, the group
    // stays scheduled (the pool runs it again); false: it is not scheduled
    // any more.
    bool end_slice(std::size_t entries) EXCLUDES(mu_) {
        MutexLock lock(mu_);
        applying_ = false;
        queued_entries_ -= entries;
        queued_atomic_.store(queued_entries_, std::memory_order_relaxed);
        if (!items_.empty()) return true;
        scheduled_ = false;
        cv_.notify_all();  // seal() waits for this
        return false;
    }
    // No scheduling from now on; then waits until no pool thread runs the
    // group (`take_back`: called first, true if it took the group out of
    // the pool's run queue, when this thread must run its slices itself).
    template <typename TakeBack, typename RunSlice>
    void seal(TakeBack&& take_back, RunSlice&& run_slice) EXCLUDES(mu_) {
        {
            MutexLock lock(mu_);
            sealed_ = true;
            if (!scheduled_) return;
        }
        if (take_back()) {
            while (run_slice()) {
            }
            return;
        }
        MutexLock lock(mu_);
        while (scheduled_) cv_.wait(lock);
    }
    // Entries queued or being applied by the apply thread (lock-free).
    std::size_t queued_entries() const { return queued_atomic_.load(std::memory_order_relaxed); }

    // Apply thread: waits for items (queued items also wait for an inline
    // apply in progress: they come after its entries) and takes them all;
    // false once closed and drained.
    bool take(ApplyItems& items) EXCLUDES(mu_) {
        MutexLock lock(mu_);
        while (claimed_ || (!closed_ && items_.empty())) cv_.wait(lock);
        if (items_.empty()) return false;
        items.swap(items_);
        applying_ = true;
        return true;
    }
    // Apply thread: the items taken are done; `entries` of them were entries.
    void done(std::size_t entries) EXCLUDES(mu_) {
        MutexLock lock(mu_);
        applying_ = false;
        queued_entries_ -= entries;
        queued_atomic_.store(queued_entries_, std::memory_order_relaxed);
    }

    // Claims the next apply for the calling thread if the apply thread is
    // idle with nothing queued, the queue is open, and `also()` (run under
    // the lock, where nothing is applied meanwhile) agrees.
    template <typename F>
    bool try_claim(F&& also) EXCLUDES(mu_) {
        MutexLock lock(mu_);
        if (closed_ || claimed_ || applying_ || scheduled_ || !items_.empty() || !also())
            return false;
        claimed_ = true;
        return true;
    }
    // The claimer applied: queued items (and close()) may go on.  True
    // (pooled only): the caller must schedule the group on the pool.
    [[nodiscard]] bool release_claim() EXCLUDES(mu_) {
        bool waiting = false;
        {
            MutexLock lock(mu_);
            KEEL_ASSERT(claimed_, "release_claim() after a successful try_claim()");
            claimed_ = false;
            waiting = closed_ || !items_.empty();
            if (pooled_) {
                if (closed_) cv_.notify_all();
                return claim_schedule();
            }
        }
        if (waiting) cv_.notify_all();
        return false;
    }

    // No claim from now on, and take() returns false once drained; waits
    // out an inline apply in progress.
    void close() EXCLUDES(mu_) {
        {
            MutexLock lock(mu_);
            closed_ = true;
            cv_.notify_all();
            while (claimed_) cv_.wait(lock);
        }
        cv_.notify_all();
    }
    // What is left once the apply thread has gone (or never ran).
    ApplyItems take_rest() EXCLUDES(mu_) {
        ApplyItems rest;
        MutexLock lock(mu_);
        rest.swap(items_);
        queued_entries_ = 0;
        queued_atomic_.store(0);
        return rest;
    }

private:
    // Pooled: whether the group goes on the pool now (and is then marked
    // scheduled).
    bool claim_schedule() REQUIRES(mu_) {
        if (!started_ || sealed_ || scheduled_ || claimed_ || items_.empty()) return false;
        scheduled_ = true;
        return true;
    }

    Mutex mu_;
    CondVar cv_;
    ApplyItems items_ GUARDED_BY(mu_);
    std::size_t queued_entries_ GUARDED_BY(mu_) = 0;
    std::atomic<std::size_t> queued_atomic_{0};  // mirrors queued_entries_
    bool closed_ GUARDED_BY(mu_) = false;
    bool applying_ GUARDED_BY(mu_) = false;  // the apply thread is in a batch
    bool claimed_ GUARDED_BY(mu_) = false;   // an inline apply is in progress
    // Pooled: in the pool's run queue or run by a pool thread.
    bool pooled_ GUARDED_BY(mu_) = false;
    bool started_ GUARDED_BY(mu_) = false;
    bool sealed_ GUARDED_BY(mu_) = false;
    bool scheduled_ GUARDED_BY(mu_) = false;
};

}  // namespace keel::runtime
