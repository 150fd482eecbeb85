// runtime/proposal_inbox.hpp — proposals from any thread, waiting for the
// core lock's holder, who takes them all into the core at once (one batch:
// one WAL append).
//
// Threads: push() from any thread; take() by the core lock's holder (or by
// the I/O thread at shutdown).  nonempty() from anywhere, without the lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "keel/node.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

struct InboxProposal {
    SharedBytes data;
    std::function<void(ProposeResult)> done;
    std::uint64_t start_ns = 0;
};

class ProposalInbox {
public:
    // Counts a proposal accepted, unless `max` are pending already: in the
    // inbox or waiting for their entries to commit (ProposalTracker, which
    // shares the count).  Any thread.
    bool admit(std::size_t max) {
        if (pending_.fetch_add(1, std::memory_order_relaxed) >= max) {
            pending_.fetch_sub(1, std::memory_order_relaxed);
            return false;
        }
        return true;
    }
    // A proposal accepted left: committed, failed or refused.
    void release(std::size_t n = 1) { pending_.fetch_sub(n, std::memory_order_relaxed); }
    std::atomic<std::size_t>& pending() { return pending_; }

    // Queues `p`; returns how many wait now.
    std::size_t push(InboxProposal p) EXCLUDES(mu_) {
        MutexLock lock(mu_);
        queue_.push_back(std::move(p));
        // The flag is cleared only under this lock, with the whole inbox
        // taken: with others queued before this one, it is set already.
        if (queue_.size() == 1) nonempty_.store(true);
        return queue_.size();
    }
    // Swaps everything waiting into `into` (which the caller has emptied).
    void take(std::vector<InboxProposal>& into) EXCLUDES(mu_) {
        MutexLock lock(mu_);
        into.swap(queue_);
        nonempty_.store(false);
    }
    bool nonempty() const { return nonempty_.load(); }

private:
    Mutex mu_;
    std::vector<InboxProposal> queue_ GUARDED_BY(mu_);
    std::atomic<bool> nonempty_{false};
    std::atomic<std::size_t> pending_{0};
};

}  // namespace keel::runtime
