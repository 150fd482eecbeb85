// runtime/proposal_tracker.hpp — who is waiting for which log entry.
//
// The core lock's holder records (index, term) for every entry this node
// proposed as leader.  When entries commit, a waiter whose entry still has its term is
// handed to the apply thread (completed after apply); a waiter whose index
// committed with another term lost its entry to another leader's (Raft
// §5.3: overwritten) and is failed.  On leadership loss every waiter is
// failed with "aborted": the entry may still commit under the new leader,
// so the caller learns the outcome is unknown, never a false success.
//
// Every waiter leaving the tracker (handed to the apply thread or failed)
// is subtracted from the replica's count of pending proposals
// (ProposalInbox::admit), which bounds proposals not yet committed
// (NodeOptions::max_pending_proposals).
//
// Memory: the queue keeps, after each commit, a block for as many waiters
// as were pending before it (at most max_pending_proposals): a busy leader
// refills it batch after batch without a heap request.
//
// Thread: under the replica's core lock.
#pragma once

#include <algorithm>
#include <atomic>
#include <vector>

#include "keel/assert.hpp"
#include "keel/ring_queue.hpp"
#include "runtime/apply_worker.hpp"

namespace keel::runtime {

struct PendingProposal {
    raft::Index index = 0;
    raft::Term term = 0;
    std::function<void(ProposeResult)> done;
    std::uint64_t start_ns = 0;
};

class ProposalTracker {
public:
    // `pending` counts proposals not yet committed; decremented here.
    explicit ProposalTracker(std::atomic<std::size_t>& pending) : pending_count_(pending) {}

    void add(PendingProposal p) {
        KEEL_ASSERT(pending_.empty() || pending_.back().index < p.index,
                    "a leader's proposals have increasing indexes");
        pending_.push_back(std::move(p));
    }

    // `committed` is contiguous.  Appends to `out` the waiters to complete
    // after apply; fails (now) those whose entries were overwritten.
    void take_committed(const std::vector<raft::Entry>& committed, std::vector<ApplyWaiter>& out) {
        if (committed.empty()) return;
        const raft::Index first = committed.front().index;
        const raft::Index last = committed.back().index;
        const std::size_t before = pending_.size();
        out.reserve(out.size() + std::min<std::size_t>(before, committed.size()));
        std::size_t taken = 0;
        for (; taken < before && pending_[taken].index <= last; ++taken) {
            PendingProposal& p = pending_[taken];
            KEEL_ASSERT(p.index >= first, "a waiter's entry committed without it being told");
            if (committed[p.index - first].term == p.term) {
                out.push_back(ApplyWaiter{p.index, std::move(p.done), p.start_ns});
            } else {
                ProposeResult r;
                r.status = Status(ErrorCode::aborted, "entry overwritten by another leader");
                r.index = p.index;
                p.done(std::move(r));
            }
        }
        // Taken out at once, the block kept for as many as were pending: the
        // next batch's proposals refill it (docs/decisions/0037-*.md).
        pending_.erase_front_keeping(taken, before);
        pending_count_.fetch_sub(taken, std::memory_order_relaxed);
    }

    // Fails every waiter.  `complete` (if set) is handed each completion
    // instead of running it now (the replica delivers those after the
    // observer's events: event_queue.hpp).
    void fail_all(ErrorCode code, const std::string& why, raft::NodeId leader_hint,
                  const std::function<void(std::function<void()>)>& complete = {}) {
        RingQueue<PendingProposal> pending;
        pending.swap(pending_);
        pending_count_.fetch_sub(pending.size(), std::memory_order_relaxed);
        for (PendingProposal& p : pending) {
            ProposeResult r;
            r.status = Status(code, why);
            r.index = p.index;
            r.leader_hint = leader_hint;
            if (complete) {
                complete(
                    [done = std::move(p.done), r = std::move(r)]() mutable { done(std::move(r)); });
            } else {
                p.done(std::move(r));
            }
        }
    }

    std::size_t size() const { return pending_.size(); }

private:
    std::atomic<std::size_t>& pending_count_;
    RingQueue<PendingProposal> pending_;
};

}  // namespace keel::runtime
