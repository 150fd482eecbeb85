// raft/log.cpp — see log.hpp.
#include "raft/log.hpp"

#include <algorithm>

#include "keel/assert.hpp"

namespace keel::raft {

void RaftLog::reset(Index prev_index, Term prev_term, std::vector<Entry> entries) {
    prev_index_ = prev_index;
    prev_term_ = prev_term;
    entries_.clear();
    for (auto& e : entries) {
        KEEL_ASSERT(e.index == last_index() + 1, "restored entries must be contiguous");
        KEEL_ASSERT(e.term >= last_term(), "entry terms never decrease along the log");
        entries_.push_back(std::move(e));
    }
    committed_ = handed_ = applied_ = prev_index;
    persisted_ = last_index();
    unstable_ = last_index() + 1;
    check_invariants();
}

std::optional<Term> RaftLog::term_at(Index index) const {
    if (index == prev_index_) return prev_term_;
    if (index < prev_index_ || index > last_index()) return std::nullopt;
    return entries_[index - prev_index_ - 1].term;
}

const Entry& RaftLog::at(Index index) const {
    KEEL_ASSERT(index > prev_index_ && index <= last_index(), "log index out of range");
    return entries_[index - prev_index_ - 1];
}

std::vector<Entry> RaftLog::slice(Index from, Index to_exclusive, std::size_t max_bytes) const {
    std::vector<Entry> out;
    slice(from, to_exclusive, max_bytes, out);
    return out;
}

void RaftLog::slice(Index from, Index to_exclusive, std::size_t max_bytes,
                    std::vector<Entry>& out) const {
    KEEL_ASSERT(from >= first_index(), "slice of compacted entries");
    to_exclusive = std::min(to_exclusive, last_index() + 1);
    if (to_exclusive > from) out.reserve(out.size() + (to_exclusive - from));
    const std::size_t first_out = out.size();
    std::size_t size_bytes = 0;
    for (Index i = from; i < to_exclusive; ++i) {
        const Entry& e = at(i);
        if (out.size() > first_out && size_bytes + e.data.size() > max_bytes) break;
        size_bytes += e.data.size();
        out.push_back(e);
    }
}

void RaftLog::append(Entry entry) {
    KEEL_ASSERT(entry.index == last_index() + 1, "append must extend the log by one");
    KEEL_ASSERT(entry.term >= last_term(), "entry terms never decrease along the log");
    entries_.push_back(std::move(entry));
}

Index RaftLog::merge(const std::vector<Entry>& entries) {
    Index truncated_at = 0;
    for (const Entry& e : entries) {
        if (e.index <= prev_index_) continue;  // compacted: committed, so it matches
        KEEL_ASSERT(e.index <= last_index() + 1, "merge would leave a gap in the log");
        if (e.index <= last_index()) {
            if (at(e.index).term == e.term) continue;  // already have it (Log Matching)
            // Conflict: delete the existing entry and all that follow it.
            KEEL_ASSERT(e.index > committed_, "a committed entry is never truncated");
            entries_.resize(e.index - prev_index_ - 1);
            persisted_ = std::min(persisted_, e.index - 1);
            unstable_ = std::min(unstable_, e.index);
            writes_vouch_to_at_most(e.index - 1);
            if (truncated_at == 0) truncated_at = e.index;
        }
        append(e);
    }
    check_invariants();
    return truncated_at;
}

std::pair<Index, Term> RaftLog::find_conflict_by_term(Index index, Term term) const {
    index = std::min(index, last_index());
    for (; index > prev_index_; --index) {
        Term t = at(index).term;
        if (t <= term) return {index, t};
    }
    return {prev_index_, prev_term_};
}

void RaftLog::compact(Index index) {
    if (index <= prev_index_) return;
    KEEL_ASSERT(index <= applied_, "only applied entries may be compacted");
    KEEL_ASSERT(index < unstable_, "only entries handed out for persistence may be compacted");
    prev_term_ = at(index).term;
    entries_.erase(entries_.begin(),
                   entries_.begin() + static_cast<std::ptrdiff_t>(index - prev_index_));
    prev_index_ = index;
    check_invariants();
}

void RaftLog::commit_to(Index index) {
    if (index <= committed_) return;  // commit never goes backwards
    KEEL_ASSERT(index <= last_index(), "cannot commit entries the log does not hold");
    committed_ = index;
}

bool RaftLog::persisted_to(WriteId write) {
    KEEL_ASSERT(write <= last_write_, "a durability report for a write never handed out");
    // Writes become durable in the order they were handed out, each on top
    // of the ones before it: the disk now holds what the latest of them left,
    // which agrees with this log up to that write's vouches_to.
    std::optional<Index> durable;
    while (!pending_writes_.empty() && pending_writes_.front().id <= write) {
        durable = pending_writes_.front().vouches_to;
        pending_writes_.pop_front();
    }
    if (!durable || *durable <= persisted_) return false;
    KEEL_ASSERT(*durable <= last_index() && *durable < unstable_,
                "a write vouches only for entries it handed out");
    persisted_ = *durable;
    return true;
}

void RaftLog::writes_vouch_to_at_most(Index index) {
    for (PendingWrite& w : pending_writes_) w.vouches_to = std::min(w.vouches_to, index);
}

void RaftLog::applied_to(Index index) {
    KEEL_ASSERT(index <= handed_, "cannot apply entries that were never handed out");
    if (index > applied_) applied_ = index;
}

bool RaftLog::has_committed_to_hand() const {
    return handed_ < std::min(committed_, persisted_);
}

std::vector<Entry> RaftLog::take_committed(std::size_t max_bytes) {
    std::vector<Entry> out;
    take_committed(max_bytes, out);
    return out;
}

void RaftLog::take_committed(std::size_t max_bytes, std::vector<Entry>& out) {
    Index to = std::min(committed_, persisted_);
    if (handed_ >= to) return;
    slice(handed_ + 1, to + 1, max_bytes, out);
    handed_ = out.back().index;
}

WriteId RaftLog::take_unstable(std::vector<Entry>& out) {
    if (unstable_ > last_index()) return 0;
    out.reserve(out.size() + (last_index() - unstable_ + 1));
    for (Index i = unstable_; i <= last_index(); ++i) out.push_back(at(i));
    unstable_ = last_index() + 1;
    pending_writes_.push_back(PendingWrite{++last_write_, last_index()});
    return last_write_;
}

void RaftLog::restore_snapshot(Index index, Term term) {
    KEEL_ASSERT(index > committed_, "a snapshot older than the commit index is never installed");
    prev_index_ = index;
    prev_term_ = term;
    entries_.clear();
    committed_ = persisted_ = handed_ = applied_ = index;
    unstable_ = index + 1;
    // The snapshot is durable as installed (Actions: step 1); the stored log
    // is reset after it, so no earlier write vouches for anything beyond it.
    writes_vouch_to_at_most(index);
    check_invariants();
}

void RaftLog::restore_indexes(Index committed, Index applied) {
    KEEL_ASSERT(committed <= last_index(), "restored commit index beyond the restored log");
    KEEL_ASSERT(applied <= committed, "restored applied index beyond the commit index");
    KEEL_ASSERT(applied >= prev_index_, "restored state machine older than the snapshot");
    committed_ = std::max(committed_, committed);
    handed_ = applied_ = applied;
    check_invariants();
}

void RaftLog::check_invariants() const {
    KEEL_ASSERT(prev_index_ <= applied_ && applied_ <= handed_ && handed_ <= committed_,
                "log indexes out of order (prev <= applied <= handed <= committed)");
    KEEL_ASSERT(committed_ <= last_index(), "commit index beyond the log");
    KEEL_ASSERT(handed_ <= persisted_ && persisted_ <= last_index() && persisted_ < unstable_,
                "persisted index out of order (handed <= persisted < unstable)");
}

}  // namespace keel::raft
