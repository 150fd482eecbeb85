// Spreading the groups' leaders over the members: the plan of one member.
#include <catch2/catch.hpp>

#include <map>
#include <memory>

#include "fake_node.hpp"
#include "group_balancer.hpp"
#include "kv_state_machine.hpp"
#include "leader_balance.hpp"

using namespace keel;
using namespace keel::daemon;

namespace {

// `n` groups of voters 1..voters, group g led by leaders[g - 1]; every
// member caught up (match_index == last_index) unless listed in `lagging`.
std::vector<GroupView> views(NodeId self, const std::vector<NodeId>& leaders, NodeId voters,
                             std::vector<NodeId> lagging = {}) {
    std::vector<GroupView> out;
    for (std::size_t i = 0; i < leaders.size(); ++i) {
        GroupView g;
        g.group = i + 1;
        g.leader = leaders[i];
        g.led_here = leaders[i] == self;
        g.last_index = 10;
        for (NodeId id = 1; id <= voters; ++id) {
            const bool lags = std::find(lagging.begin(), lagging.end(), id) != lagging.end();
            g.members.push_back({MemberSpec{id, "r", "h", true}, lags ? 5u : 10u, true});
        }
        out.push_back(g);
    }
    return out;
}

// Applies every member's plan in turn until none moves anything; returns
// the leaders per member.
std::map<NodeId, std::size_t> settle(std::vector<NodeId> leaders, NodeId voters) {
    for (int round = 0; round < 1000; ++round) {
        bool moved = false;
        for (NodeId self = 1; self <= voters; ++self) {
            for (const LeaderMove& m : plan_leader_moves(views(self, leaders, voters), self, 4)) {
                REQUIRE(leaders[m.group - 1] == self);
                leaders[m.group - 1] = m.to;
                moved = true;
            }
        }
        if (!moved) break;
    }
    std::map<NodeId, std::size_t> led;
    for (NodeId l : leaders) ++led[l];
    return led;
}

}  // namespace

TEST_CASE("a member leading every group hands away all but its share", "[daemon][balance]") {
    std::vector<NodeId> leaders(10, 1);
    auto moves = plan_leader_moves(views(1, leaders, 3), 1, 100);
    REQUIRE(moves.size() == 6);  // keeps ceil(10 / 3) = 4
    std::map<NodeId, int> to;
    for (const LeaderMove& m : moves) ++to[m.to];
    CHECK(to[2] == 3);
    CHECK(to[3] == 3);
    // Bounded per round.
    CHECK(plan_leader_moves(views(1, leaders, 3), 1, 2).size() == 2);
}

TEST_CASE("leaders settle evenly from any start", "[daemon][balance]") {
    CHECK(settle(std::vector<NodeId>(12, 1), 3) ==
          std::map<NodeId, std::size_t>{{1, 4}, {2, 4}, {3, 4}});
    // After a failover: member 3's groups went to 1 and 2; 3 is back.
    std::vector<NodeId> after = {1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2};
    CHECK(settle(after, 3) == std::map<NodeId, std::size_t>{{1, 4}, {2, 4}, {3, 4}});
    auto uneven = settle(std::vector<NodeId>(1000, 2), 3);
    for (NodeId id : {1, 2, 3}) {
        CHECK(uneven[id] >= 333);
        CHECK(uneven[id] <= 334);
    }
}

TEST_CASE("nothing moves when balanced, alone, or towards a lagging voter", "[daemon][balance]") {
    CHECK(plan_leader_moves(views(1, {1, 2, 3, 1}, 3), 1, 10).empty());
    CHECK(plan_leader_moves(views(1, {1, 1, 1}, 1), 1, 10).empty());
    // 2 and 3 lag in every group: no target.
    CHECK(plan_leader_moves(views(1, {1, 1, 1, 1}, 3, {2, 3}), 1, 10).empty());
    // Only 3 is caught up: everything goes there, up to its share.
    auto moves = plan_leader_moves(views(1, {1, 1, 1, 1, 1, 1}, 3, {2}), 1, 10);
    REQUIRE(moves.size() == 2);
    for (const LeaderMove& m : moves) CHECK(m.to == 3);
}

TEST_CASE("a voter the leader does not replicate to is no target, however caught up it looks",
          "[daemon][balance]") {
    // 3 was down (the transport reported it unreachable: probe) and leads
    // nothing; nothing was written, so its match is the last index.
    std::vector<NodeId> leaders = {1, 1, 1, 1, 1, 1, 2, 2, 2};
    auto probing = views(1, leaders, 3);
    for (GroupView& g : probing) g.members[2].replicating = false;
    // 3 is left out of the shares: the two live members share 9 (5 and 4),
    // and no transfer goes to 3, which would time out.
    auto meanwhile = plan_leader_moves(probing, 1, 10);
    REQUIRE(meanwhile.size() == 1);
    CHECK(meanwhile[0].to == 2);
    // Nothing from 2, which leads fewer than its share of the two.
    auto from_two = views(2, leaders, 3);
    for (GroupView& g : from_two) g.members[2].replicating = false;
    CHECK(plan_leader_moves(from_two, 2, 10).empty());
    // Back and answering: 3 takes its share.
    auto moves = plan_leader_moves(views(1, leaders, 3), 1, 10);
    REQUIRE(moves.size() == 3);
    for (const LeaderMove& m : moves) CHECK(m.to == 3);
}

TEST_CASE("the balancer asks keel to move what the plan says, a round at a time",
          "[daemon][balance]") {
    constexpr std::size_t kGroups = 6;
    std::vector<std::shared_ptr<KvStateMachine>> maps;
    std::vector<std::unique_ptr<testing::FakeNode>> nodes;  // voters 1 and 2, led by 1
    std::vector<KvGroup> groups;
    for (std::size_t g = 1; g <= kGroups; ++g) {
        maps.push_back(std::make_shared<KvStateMachine>());
        nodes.push_back(std::make_unique<testing::FakeNode>(maps.back()));
        groups.push_back(KvGroup{g, nodes.back().get(), maps.back().get()});
    }
    GroupBalancer balancer(groups);
    CHECK(balancer.round() == 3);  // keeps ceil(6 / 2) = 3
    std::size_t led_by_2 = 0;
    for (const auto& node : nodes) led_by_2 += node->leader == 2;
    CHECK(led_by_2 == 3);
    CHECK(balancer.round() == 0);
    CHECK(balancer.moves() == 3);
    CHECK(balancer.failed_moves() == 0);
}

TEST_CASE("a voter whose transfer failed is left out of the shares and of the targets",
          "[daemon][balance]") {
    // 1 leads 6 of 9 after 3 went down; 3 looks caught up (nothing written).
    std::vector<NodeId> leaders = {1, 1, 1, 1, 1, 1, 2, 2, 2};
    auto towards_three = plan_leader_moves(views(1, leaders, 3), 1, 10);
    REQUIRE(towards_three.size() == 3);
    for (const LeaderMove& m : towards_three) CHECK(m.to == 3);
    // With 3 left out: the two share 9 (5 and 4).
    auto moves = plan_leader_moves(views(1, leaders, 3), 1, 10, {3});
    REQUIRE(moves.size() == 1);
    CHECK(moves[0].to == 2);
}
