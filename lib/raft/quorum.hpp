// raft/quorum.hpp — majority arithmetic over a set of voters.
//
// Keel changes membership one server at a time, so a quorum is always a
// simple majority of the voters of the effective configuration (no joint
// configurations).  Learners never count.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <functional>
#include <map>
#include <vector>

#include "keel/assert.hpp"
#include "raft/types.hpp"

namespace keel::raft {

inline std::size_t quorum_size(std::size_t voter_count) {
    return voter_count / 2 + 1;
}

// The largest value that a majority of voters have reached or passed
// (value_of gives each voter's), or `none` with no voters.  Counted on the
// stack for up to kQuorumOnStack voters: it runs for every acknowledgement
// a leader takes (maybe_commit), and a heap buffer there was an allocation
// each time (decision 0050).
inline constexpr std::size_t kQuorumOnStack = 16;

template <typename T, typename ValueOf>
T quorum_value(const std::vector<NodeId>& voters, const ValueOf& value_of, T none) {
    if (voters.empty()) return none;
    const std::size_t n = voters.size();
    std::array<T, kQuorumOnStack> on_stack{};
    std::vector<T> on_heap;
    T* values = on_stack.data();
    if (n > kQuorumOnStack) {
        on_heap.resize(n);
        values = on_heap.data();
    }
    for (std::size_t i = 0; i < n; ++i) values[i] = value_of(voters[i]);
    // The k-th largest (0-based) is the value a majority reached.
    const std::size_t k = quorum_size(n) - 1;
    std::nth_element(values, values + k, values + n, std::greater<>());
    return values[k];
}

// The largest index that a majority of voters have reached (match_of gives
// each voter's match index).  0 with no voters.
template <typename MatchOf>
Index quorum_index(const std::vector<NodeId>& voters, const MatchOf& match_of) {
    return quorum_value<Index>(voters, match_of, 0);
}

enum class VoteResult : std::uint8_t { pending, won, lost };

// votes: voter -> granted.  Votes from non-voters are ignored.
inline VoteResult tally_votes(const std::vector<NodeId>& voters,
                              const std::map<NodeId, bool>& votes) {
    std::size_t granted = 0;
    std::size_t rejected = 0;
    for (NodeId id : voters) {
        auto it = votes.find(id);
        if (it == votes.end()) continue;
        (it->second ? granted : rejected) += 1;
    }
    std::size_t need = quorum_size(voters.size());
    if (granted >= need) return VoteResult::won;
    if (voters.size() - rejected < need) return VoteResult::lost;
    return VoteResult::pending;
}

// Whether the set of nodes for which `yes` holds contains a majority of voters.
template <typename Yes>
bool has_quorum(const std::vector<NodeId>& voters, const Yes& yes) {
    if (voters.empty()) return false;
    std::size_t n = 0;
    for (NodeId id : voters) n += yes(id) ? 1 : 0;
    return n >= quorum_size(voters.size());
}

}  // namespace keel::raft
