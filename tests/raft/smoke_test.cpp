// tests/raft/smoke_test.cpp — the basic paths end to end: a single node
// commits without ticks; three nodes elect a leader, replicate and commit.
#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

TEST_CASE("single voter becomes leader at once and commits on persist without ticks") {
    Cluster c({1});
    Core& n = c.core(1);
    REQUIRE(n.role() == Role::leader);
    REQUIRE(n.term() == 2);
    REQUIRE_FALSE(n.needs_ticks());
    // The no-op of term 2 is committed once durable.
    REQUIRE(n.commit_index() == 2);
    auto p = c.propose(1, "x");
    REQUIRE(p.index == 3);
    REQUIRE(n.commit_index() == 3);
    REQUIRE(c.node(1).applied.back().data == "x");
}

TEST_CASE("single voter commits only what is durable") {
    Cluster c({1});
    c.node(1).hold_persist = true;
    auto r = c.core(1).propose("a");
    REQUIRE(r.ok());
    c.process(1);
    REQUIRE(c.core(1).commit_index() == 2);
    c.release(1);
    REQUIRE(c.core(1).commit_index() == 3);
}

TEST_CASE("three nodes elect a leader, replicate and commit") {
    Cluster c({1, 2, 3});
    REQUIRE(c.core(1).needs_ticks());
    c.elect(1);
    REQUIRE(c.leader() == 1);
    REQUIRE(c.core(2).leader() == 1);
    REQUIRE(c.core(1).commit_index() == 2);  // the no-op
    c.propose(1, "hello");
    for (NodeId id : {1, 2, 3}) {
        c.tick(1);  // a heartbeat spreads the commit index
        c.deliver_all();
        REQUIRE(c.core(id).commit_index() == 3);
        REQUIRE(c.node(id).applied.back().data == "hello");
    }
}
