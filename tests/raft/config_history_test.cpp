// ConfigHistory's version (raft/config_history.hpp): it moves on every change
// to the history, so Core::has_actions compares the latest configuration with
// the one it reported only when it may differ, and a truncation back to an
// earlier configuration is still seen as a change.
#include <catch2/catch.hpp>

#include "raft/config_history.hpp"

namespace {

using keel::raft::ConfigHistory;
using keel::raft::Configuration;

Configuration members(std::initializer_list<keel::raft::NodeId> ids) {
    Configuration c;
    for (keel::raft::NodeId id : ids) c.members[id].voter = true;
    return c;
}

}  // namespace

TEST_CASE("the config history's version moves on every change and only then", "[raft][config]") {
    ConfigHistory h;
    auto v = h.version();
    CHECK(v != 0);  // a reporter that starts at 0 compares once

    h.reset(5, members({1, 2, 3}));
    CHECK(h.version() != v);
    v = h.version();
    (void)h.latest();
    (void)h.at(7);
    CHECK(h.version() == v);  // reads leave it

    h.add(8, members({1, 2, 3, 4}));
    CHECK(h.version() != v);
    v = h.version();

    CHECK_FALSE(h.truncate_from(9));  // nothing after 8: no change
    CHECK(h.version() == v);
    CHECK(h.truncate_from(8));  // back to {1, 2, 3}
    CHECK(h.version() != v);
    CHECK(h.latest() == members({1, 2, 3}));
    v = h.version();

    h.add(10, members({1, 2}));
    v = h.version();
    h.compact(4);  // nothing superseded by 4
    CHECK(h.version() == v);
    h.compact(10);
    CHECK(h.version() != v);
}

TEST_CASE("latest_contains answers as the latest configuration does, after every change",
          "[raft][config]") {
    ConfigHistory h;
    auto agrees = [&h] {
        for (keel::raft::NodeId id = 0; id <= 12; ++id)
            if (h.latest_contains(id) != h.latest().contains(id)) return false;
        return true;
    };
    CHECK(agrees());  // empty
    h.reset(5, members({1, 2, 3}));
    CHECK(agrees());
    CHECK(h.latest_contains(3));
    h.add(8, members({1, 2, 3, 4}));
    CHECK(agrees());
    CHECK(h.latest_contains(4));
    // Past kLatestIdsMax members: the map answers.
    h.add(9, members({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
    CHECK(agrees());
    CHECK(h.latest_contains(10));
    h.add(11, members({2, 3, 4}));
    CHECK(agrees());
    CHECK_FALSE(h.latest_contains(1));
    CHECK(h.truncate_from(11));  // back to ten members
    CHECK(agrees());
    CHECK(h.truncate_from(9));  // back to {1, 2, 3, 4}
    CHECK(agrees());
    CHECK_FALSE(h.latest_contains(5));
    h.compact(8);  // forgets {1, 2, 3}; the latest stays
    CHECK(agrees());
    h.reset(20, members({7}));
    CHECK(agrees());
    CHECK(h.latest_contains(7));
    CHECK_FALSE(h.latest_contains(4));
}

TEST_CASE("latest_lone_voter names the latest configuration's only voter, after every change",
          "[raft][config]") {
    ConfigHistory h;
    auto lone = [&h] {
        const keel::raft::Configuration& c = h.latest();
        return c.voter_count() == 1 ? c.voters().front() : keel::raft::kNoNode;
    };
    CHECK(h.latest_lone_voter() == keel::raft::kNoNode);  // empty
    h.reset(5, members({1}));
    CHECK(h.latest_lone_voter() == 1);
    h.add(8, members({1, 2}));
    CHECK(h.latest_lone_voter() == lone());
    CHECK(h.latest_lone_voter() == keel::raft::kNoNode);
    auto one_voter_one_learner = members({1, 2});
    one_voter_one_learner.members[2].voter = false;
    h.add(9, one_voter_one_learner);
    CHECK(h.latest_lone_voter() == 1);
    h.add(10, members({2}));
    CHECK(h.latest_lone_voter() == 2);
    CHECK(h.truncate_from(10));  // back to voter 1 and learner 2
    CHECK(h.latest_lone_voter() == 1);
    CHECK(h.truncate_from(9));  // back to {1, 2}
    CHECK(h.latest_lone_voter() == keel::raft::kNoNode);
    h.reset(20, members({7}));
    CHECK(h.latest_lone_voter() == lone());
    CHECK(h.latest_lone_voter() == 7);
}

TEST_CASE("latest_voters lists the latest configuration's voters, after every change",
          "[raft][config]") {
    ConfigHistory h;
    auto same = [&h] { return h.latest_voters() == h.latest().voters(); };
    CHECK(h.latest_voters().empty());
    h.reset(5, members({3, 1, 2}));
    CHECK(h.latest_voters() == std::vector<keel::raft::NodeId>{1, 2, 3});
    auto with_learner = members({1, 2, 3, 4});
    with_learner.members[4].voter = false;
    h.add(8, with_learner);
    CHECK(same());
    CHECK(h.latest_voters().size() == 3);
    h.add(9, members({1, 2, 3, 4}));
    CHECK(same());
    CHECK(h.latest_voters().size() == 4);
    CHECK(h.truncate_from(9));  // the learner again
    CHECK(same());
    CHECK(h.latest_voters().size() == 3);
    h.compact(8);
    CHECK(same());
    h.reset(20, members({7}));
    CHECK(h.latest_voters() == std::vector<keel::raft::NodeId>{7});
}
