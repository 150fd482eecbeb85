// sim/history.hpp — what the simulated clients did and saw.
//
// Writes are appends of unique values; a write is accepted when a leader
// appended it at (index, term), and it committed iff the committed entry at
// that index has that term (otherwise it was overwritten and lost, which
// Raft allows for writes never acknowledged).  Reads record the highest
// commit index known when they started; the checker compares what they
// return with the committed prefix (checkers.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "keel/assert.hpp"
#include "raft/types.hpp"

namespace keel::sim {

struct ProposalRecord {
    raft::Index index = 0;
    raft::Term term = 0;
    std::uint64_t start_us = 0;
};

struct ReadRecord {
    raft::NodeId node = raft::kNoNode;
    std::uint64_t incarnation = 0;
    raft::Index commit_at_start = 0;
    std::uint64_t start_us = 0;
};

struct HistoryStats {
    std::uint64_t proposals = 0;  // attempted
    std::uint64_t accepted = 0;   // appended by a leader
    std::uint64_t committed = 0;
    std::uint64_t lost = 0;   // overwritten before commit
    std::uint64_t reads = 0;  // attempted
    std::uint64_t reads_served = 0;
    std::uint64_t reads_failed = 0;
};

class History {
public:
    // Reads still waiting for an answer; more means a leak.
    static constexpr std::size_t kReadsPendingMax = 100'000;

    void proposal_accepted(raft::Index index, raft::Term term, std::uint64_t now_us) {
        ++stats_.accepted;
        pending_.push_back(ProposalRecord{index, term, now_us});
    }
    // Settles every pending proposal whose index is committed, given the
    // committed term at an index (a callable Term(Index)).
    template <typename TermAt>
    void settle(raft::Index commit_known, TermAt committed_term) {
        std::vector<ProposalRecord> still;
        for (const auto& p : pending_) {
            if (p.index > commit_known) {
                still.push_back(p);
            } else if (committed_term(p.index) == p.term) {
                ++stats_.committed;
            } else {
                ++stats_.lost;
            }
        }
        pending_.swap(still);
    }
    const std::vector<ProposalRecord>& pending() const { return pending_; }

    void read_started(std::uint64_t request_id, const ReadRecord& r) {
        KEEL_ASSERT(reads_.size() < kReadsPendingMax, "pending reads over their limit");
        reads_[request_id] = r;
    }
    // The read's record, removed; nullptr-like empty optional if unknown.
    bool read_finished(std::uint64_t request_id, ReadRecord* out) {
        auto it = reads_.find(request_id);
        if (it == reads_.end()) return false;
        *out = it->second;
        reads_.erase(it);
        return true;
    }

    HistoryStats& stats() { return stats_; }
    const HistoryStats& stats() const { return stats_; }

private:
    std::vector<ProposalRecord> pending_;
    std::map<std::uint64_t, ReadRecord> reads_;
    HistoryStats stats_;
};

}  // namespace keel::sim
