// Majority arithmetic (raft/quorum.hpp): the value a majority of voters
// reached, against a sort of every voter's value, for every voter count
// on the stack buffer and past it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "raft/quorum.hpp"

namespace {

using keel::raft::Index;
using keel::raft::NodeId;

// The reference: sort every voter's value, largest first, and take the one
// at the majority's rank.
Index by_sorting(std::vector<Index> values) {
    std::sort(values.begin(), values.end(), std::greater<>());
    return values[keel::raft::quorum_size(values.size()) - 1];
}

}  // namespace

TEST_CASE("quorum_index is the largest index a majority reached", "[raft][quorum]") {
    const std::vector<NodeId> three{1, 2, 3};
    auto match = [](std::vector<Index> m) {
        return [m](NodeId id) { return m[id - 1]; };
    };
    CHECK(keel::raft::quorum_index(three, match({5, 3, 9})) == 5);
    CHECK(keel::raft::quorum_index(three, match({0, 0, 9})) == 0);
    CHECK(keel::raft::quorum_index(three, match({7, 7, 7})) == 7);
    const std::vector<NodeId> four{1, 2, 3, 4};  // a majority of four is three
    CHECK(keel::raft::quorum_index(four, match({9, 8, 2, 1})) == 2);
    CHECK(keel::raft::quorum_index(std::vector<NodeId>{}, match({})) == 0);
    CHECK(keel::raft::quorum_value<std::int64_t>(std::vector<NodeId>{}, [](NodeId) {
              return std::int64_t{4};
          }, -1) == -1);
}

TEST_CASE("quorum_index agrees with sorting, on the stack and past it", "[raft][quorum]") {
    std::mt19937_64 rng(20261207);
    for (std::size_t n = 1; n <= 2 * keel::raft::kQuorumOnStack + 3; ++n) {
        std::vector<NodeId> voters;
        std::vector<Index> values;
        for (std::size_t i = 0; i < n; ++i) {
            voters.push_back(100 + i);
            values.push_back(rng() % 8);  // repeats on purpose
        }
        for (int round = 0; round < 20; ++round) {
            std::shuffle(values.begin(), values.end(), rng);
            const Index got = keel::raft::quorum_index(
                voters, [&](NodeId id) { return values[id - 100]; });
            INFO("voters " << n << ", round " << round);
            CHECK(got == by_sorting(values));
        }
    }
}

TEST_CASE("has_quorum counts a majority of voters", "[raft][quorum]") {
    const std::vector<NodeId> five{1, 2, 3, 4, 5};
    CHECK(keel::raft::has_quorum(five, [](NodeId id) { return id <= 3; }));
    CHECK_FALSE(keel::raft::has_quorum(five, [](NodeId id) { return id <= 2; }));
    CHECK_FALSE(keel::raft::has_quorum(std::vector<NodeId>{}, [](NodeId) { return true; }));
}
