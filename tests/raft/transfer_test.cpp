// tests/raft/transfer_test.cpp — leadership transfer.
#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

TEST_CASE("transfer to a lagging follower: catch it up, then TimeoutNow") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.cut(1, 3);
    for (int i = 0; i < 5; ++i) c.propose(1, str_cat("w", i));
    Index last = c.core(1).last_index();
    REQUIRE(c.core(3).last_index() < last);
    c.heal();
    REQUIRE(c.core(1).transfer_leadership(3).ok());
    // While the transfer is under way, proposals are refused.
    CHECK(c.core(1).propose("x").status().code() == keel::ErrorCode::busy);
    c.deliver_all();
    c.tick_all(2);
    CHECK(c.core(3).role() == Role::leader);
    CHECK(c.core(1).role() == Role::follower);
    CHECK(c.core(3).last_index() >= last);  // caught up (and may have dropped it since)
    CHECK(c.core(3).commit_index() >= last);
    CHECK(c.core(1).leader() == 3);
}

TEST_CASE("transfer to an up-to-date follower sends TimeoutNow at once") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.tick_all(2);
    REQUIRE(c.core(1).transfer_leadership(2).ok());
    Actions a = c.core(1).take_actions();
    auto tn = of_type(a.messages, MessageType::timeout_now);
    REQUIRE(tn.size() == 1);
    CHECK(tn[0].to == 2);
}

TEST_CASE("a transfer that does not complete within an election timeout is aborted") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.isolate(3);
    REQUIRE(c.core(1).transfer_leadership(3).ok());
    CHECK_FALSE(c.core(1).propose("x").ok());
    for (int i = 0; i < 10; ++i) {
        c.tick(1);
        c.deliver_all();
    }
    CHECK(c.core(1).role() == Role::leader);
    CHECK(c.core(1).propose("x").ok());
}

TEST_CASE("a leader cut off from its quorum steps down although transfers keep being asked") {
    // The transfer's deadline has its own clock: restarting CheckQuorum's at
    // every request kept such a leader in office for as long as they came.
    Cluster c({1, 2, 3});
    c.elect(1);
    c.isolate(1);
    for (int i = 0; i < 30 && c.core(1).role() == Role::leader; ++i) {
        REQUIRE(c.core(1).transfer_leadership(i % 2 == 0 ? 2 : 3).ok());
        c.tick(1);
        c.deliver_all();
    }
    CHECK(c.core(1).role() == Role::follower);
}

TEST_CASE("transfer: only to a voter; not on a follower") {
    Cluster c({1, 2}, {3});
    c.elect(1);
    CHECK(c.core(1).transfer_leadership(3).code() == keel::ErrorCode::invalid_argument);
    CHECK(c.core(1).transfer_leadership(9).code() == keel::ErrorCode::invalid_argument);
    CHECK(c.core(1).transfer_leadership(1).code() == keel::ErrorCode::invalid_argument);
    CHECK(c.core(2).transfer_leadership(1).code() == keel::ErrorCode::not_leader);
}

TEST_CASE("a learner ignores TimeoutNow") {
    Cluster c({1, 2}, {3});
    c.elect(1);
    Term term = c.core(3).term();
    (void)c.core(3).step(
        Message{.type = MessageType::timeout_now, .from = 1, .to = 3, .term = term});
    CHECK(c.core(3).role() == Role::follower);
    CHECK(c.core(3).term() == term);
}

TEST_CASE("TimeoutNow makes the target campaign at once, bypassing PreVote and leases") {
    Cluster c({1, 2, 3});
    c.elect(1);
    Term term = c.core(2).term();
    (void)c.core(2).step(
        Message{.type = MessageType::timeout_now, .from = 1, .to = 2, .term = term});
    CHECK(c.core(2).role() == Role::candidate);
    CHECK(c.core(2).term() == term + 1);
    Actions a = c.core(2).take_actions();
    auto votes = of_type(a.messages, MessageType::vote);
    REQUIRE(votes.size() == 2);
    CHECK(votes[0].transfer);
}
