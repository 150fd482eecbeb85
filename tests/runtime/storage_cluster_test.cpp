// Storage faults in a cluster (three nodes over loopback TCP, each on its
// own fault-injecting FileSystem): a snapshot damaged on its way to a
// follower is refused before it replaces anything, and installed once it
// arrives intact; a leader whose disk is full hands leadership to a member
// that can write, and catches up by itself once space is back.
#include <catch2/catch.hpp>

#include "../common/fault_fs.hpp"
#include "cluster_support.hpp"

using namespace keel;
using keel::test::eventually;
using keel::test::FaultFs;
using keel::test::TestCluster;

namespace {

bool all_applied(TestCluster& c, const std::vector<NodeId>& ids,
                 const std::map<std::uint64_t, std::string>& acked) {
    for (NodeId id : ids) {
        auto applied = c.sm(id).applied();
        for (const auto& [index, data] : acked) {
            auto it = applied.find(index);
            if (it == applied.end() || it->second != data) return false;
        }
    }
    return true;
}

void put(TestCluster& c, std::map<std::uint64_t, std::string>& acked, const char* prefix, int i) {
    std::string data(prefix);
    data.append(std::to_string(i));
    acked[c.propose(data)] = data;
}

}  // namespace

TEST_CASE("a follower refuses a snapshot damaged in transfer and installs it once it is intact") {
    FaultFs fs[4];  // outlives the nodes
    TestCluster c(3);
    c.snapshot_every = 20;
    c.snapshot_trailing = 5;
    for (NodeId id = 1; id <= 3; ++id) c.file_systems[id] = &fs[id];
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    const NodeId leader = c.leader();
    const NodeId follower = leader == 3 ? 2 : 3;
    std::map<std::uint64_t, std::string> acked;
    for (int i = 0; i < 10; ++i) put(c, acked, "d", i);
    c.stop(follower);
    c.wipe(follower);
    for (int i = 10; i < 120; ++i) put(c, acked, "d", i);
    REQUIRE(eventually([&] { return c.node(c.leader()).status().snapshot_index > 20; }));

    // The staged file reads back with its first data byte flipped: the
    // trailer checks out, the data's checksum does not.
    fs[follower].set_corrupt_reads("/incoming/");
    c.start(follower);
    REQUIRE(eventually([&] { return c.node(follower).status().snapshots_damaged >= 1; }));
    CHECK(eventually([&] { return c.warned(follower, "does not match its checksum"); }));
    CHECK(c.sm(follower).restores() == 0);
    CHECK(c.node(follower).status().failure.empty());

    fs[follower].set_corrupt_reads("");  // the next transfer arrives intact
    REQUIRE(eventually([&] { return all_applied(c, {1, 2, 3}, acked); }));
    CHECK(c.sm(follower).restores() >= 1);
    CHECK(c.node(follower).status().snapshot_index > 0);
}

TEST_CASE("a leader whose disk is full hands leadership on and catches up once space is back") {
    FaultFs fs[4];  // outlives the nodes
    TestCluster c(3);
    for (NodeId id = 1; id <= 3; ++id) c.file_systems[id] = &fs[id];
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    const NodeId old_leader = c.leader();
    REQUIRE(old_leader != 0);
    std::map<std::uint64_t, std::string> acked;
    for (int i = 0; i < 20; ++i) put(c, acked, "f", i);

    fs[old_leader].full = true;
    // Its snapshot finds no room: the alarm goes up, writes are refused there.
    CHECK(c.node(old_leader).snapshot_now().get().code() == ErrorCode::no_space);
    CHECK(c.node(old_leader).status().alarms == std::vector<std::string>{kAlarmNoSpace});
    REQUIRE(eventually([&] { return c.node(old_leader).status().role != Role::leader; }));
    CHECK(eventually([&] { return c.warned(old_leader, "handing leadership to node"); }));
    // A member that can write leads, and writes go on there.
    for (int i = 20; i < 40; ++i) put(c, acked, "f", i);
    CHECK(c.leader() != old_leader);
    ProposeResult refused = c.node(old_leader).propose("x").get();
    CHECK_FALSE(refused.status.ok());

    fs[old_leader].full = false;  // space is back: no restart
    REQUIRE(eventually([&] { return c.node(old_leader).status().alarms.empty(); }));
    REQUIRE(eventually([&] { return all_applied(c, {1, 2, 3}, acked); }));
    CHECK(c.node(old_leader).status().failure.empty());
    for (NodeId id = 1; id <= 3; ++id) CHECK(c.sm(id).duplicate_applies() == 0);
}
