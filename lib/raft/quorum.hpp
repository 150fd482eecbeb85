// raft/quorum.hpp — majority arithmetic over a set of voters.
//
// Keel changes membership one server at a time, so a quorum is always a
// simple majority of the voters of the effective configuration (no joint
// configurations).  Learners never count.
#pragma once

#include <algorithm>
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
// (value_of gives each voter's), or `none` with no voters.
template <typename T>
T quorum_value(const std::vector<NodeId>& voters, const std::function<T(NodeId)>& value_of,
               T none) {
    if (voters.empty()) return none;
    std::vector<T> values;
    values.reserve(voters.size());
    for (NodeId id : voters) values.push_back(value_of(id));
    std::sort(values.begin(), values.end(), std::greater<>());
    return values[quorum_size(voters.size()) - 1];
}

// The largest index that a majority of voters have reached (match_of gives
// each voter's match index).  0 with no voters.
inline Index quorum_index(const std::vector<NodeId>& voters,
                          const std::function<Index(NodeId)>& match_of) {
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
inline bool has_quorum(const std::vector<NodeId>& voters, const std::function<bool(NodeId)>& yes) {
    if (voters.empty()) return false;
    std::size_t n = 0;
    for (NodeId id : voters) n += yes(id) ? 1 : 0;
    return n >= quorum_size(voters.size());
}

}  // namespace keel::raft
