// runtime/apply_queue.hpp — the hand-off between the threads that commit
// entries and the one that applies them: the ApplyItems queued in log order
// (bounded by entries: queued_entries() lets the group refuse proposals
// with "busy" near the limit), and who applies next, the apply thread or an
// inline claimer (inline_policy.hpp), never both at once.
//
// Owns: the queued items.
// Threads: push and queued_entries from any thread; take/done on the apply
// thread; try_claim/release_claim on the claiming thread; close and
// take_rest from the thread that stops the apply worker.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <utility>

#include "keel/assert.hpp"
#include "runtime/apply_item.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

class ApplyQueue {
public:
    void push(ApplyItem item) EXCLUDES(mu_) {
        {
            MutexLock lock(mu_);
            queued_entries_ += entry_count(item);
            queued_atomic_.store(queued_entries_, std::memory_order_relaxed);
            items_.push_back(std::move(item));
        }
        cv_.notify_one();
    }
    // Entries queued or being applied by the apply thread (lock-free).
    std::size_t queued_entries() const { return queued_atomic_.load(std::memory_order_relaxed); }

    // Apply thread: waits for items (queued items also wait for an inline
    // apply in progress: they come after its entries) and takes them all;
    // false once closed and drained.
    bool take(std::deque<ApplyItem>& items) EXCLUDES(mu_) {
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
        if (closed_ || claimed_ || applying_ || !items_.empty() || !also()) return false;
        claimed_ = true;
        return true;
    }
    // The claimer applied: queued items (and close()) may go on.
    void release_claim() EXCLUDES(mu_) {
        bool waiting = false;
        {
            MutexLock lock(mu_);
            KEEL_ASSERT(claimed_, "release_claim() after a successful try_claim()");
            claimed_ = false;
            waiting = closed_ || !items_.empty();
        }
        if (waiting) cv_.notify_all();
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
    std::deque<ApplyItem> take_rest() EXCLUDES(mu_) {
        std::deque<ApplyItem> rest;
        MutexLock lock(mu_);
        rest.swap(items_);
        queued_entries_ = 0;
        queued_atomic_.store(0);
        return rest;
    }

private:
    Mutex mu_;
    CondVar cv_;
    std::deque<ApplyItem> items_ GUARDED_BY(mu_);
    std::size_t queued_entries_ GUARDED_BY(mu_) = 0;
    std::atomic<std::size_t> queued_atomic_{0};  // mirrors queued_entries_
    bool closed_ GUARDED_BY(mu_) = false;
    bool applying_ GUARDED_BY(mu_) = false;  // the apply thread is in a batch
    bool claimed_ GUARDED_BY(mu_) = false;   // an inline apply is in progress
};

}  // namespace keel::runtime
