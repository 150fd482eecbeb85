// tests/raft/progress_test.cpp — Core::progress(): the leader's read-only
// view of each member's replication (match, next, probe/replicate/snapshot).
#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

namespace {

const PeerProgress& of(const std::vector<PeerProgress>& all, NodeId id) {
    for (const PeerProgress& p : all) {
        if (p.id == id) return p;
    }
    throw std::runtime_error(str_cat("no progress for node ", id));
}

std::vector<NodeId> ids_of(const std::vector<PeerProgress>& all) {
    std::vector<NodeId> out;
    for (const PeerProgress& p : all) out.push_back(p.id);
    return out;
}

}  // namespace

TEST_CASE("progress: a leader of 3 reports every member's match once replicated") {
    Cluster c({1, 2, 3});
    c.elect(1);
    REQUIRE(c.leader() == 1);
    for (int i = 0; i < 5; ++i) c.propose(1, str_cat("v", i));
    const Index last = c.core(1).last_index();
    REQUIRE(c.core(1).commit_index() == last);

    auto p = c.core(1).progress();
    CHECK(ids_of(p) == std::vector<NodeId>{1, 2, 3});
    for (NodeId id : {2, 3}) {
        INFO("follower " << id);
        CHECK(of(p, id).voter);
        CHECK(of(p, id).match == last);
        CHECK(of(p, id).next == last + 1);
        CHECK(of(p, id).state == ProgressState::replicate);
    }
    // The leader itself: its durable log, and where its next entry goes.
    CHECK(of(p, 1).voter);
    CHECK(of(p, 1).match == c.core(1).persisted_index());
    CHECK(of(p, 1).match == last);
    CHECK(of(p, 1).next == last + 1);
    CHECK(of(p, 1).state == ProgressState::replicate);
}

TEST_CASE("progress: followers and candidates report nothing") {
    Cluster c({1, 2, 3});
    CHECK(c.core(1).progress().empty());  // nobody leads yet
    c.elect(1);
    c.propose(1, "x");
    CHECK(c.core(2).role() == Role::follower);
    CHECK(c.core(2).progress().empty());
    CHECK(c.core(3).progress().empty());
    // A candidate (pre-candidate here) tracks no one's log either.
    c.isolate(2);
    c.tick(2, 100);
    REQUIRE(c.core(2).role() != Role::follower);
    REQUIRE(c.core(2).role() != Role::leader);
    CHECK(c.core(2).progress().empty());
}

TEST_CASE("progress: a deposed leader reports nothing") {
    Cluster c({1, 2, 3});
    c.elect(1);
    REQUIRE_FALSE(c.core(1).progress().empty());
    c.isolate(1);
    const NodeId new_leader = c.tick_until_one_leads({2, 3});
    REQUIRE(new_leader != 0);
    c.heal();
    // Heartbeats of the old term (the first tick after the no-op's commit
    // notices may send none): the reply tells 1 of the newer one.
    c.tick(1, 2);
    c.deliver_all();
    REQUIRE(c.core(1).role() == Role::follower);
    CHECK(c.core(1).progress().empty());
    CHECK(ids_of(c.core(new_leader).progress()) == std::vector<NodeId>{1, 2, 3});
}

TEST_CASE("progress: a lagging follower shows its own match, behind the others") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.propose(1, "a");
    const Index before = c.core(1).last_index();
    c.isolate(3);
    for (int i = 0; i < 4; ++i) c.propose(1, str_cat("b", i));
    const Index last = c.core(1).last_index();
    REQUIRE(last == before + 4);

    auto p = c.core(1).progress();
    CHECK(of(p, 2).match == last);
    CHECK(of(p, 3).match == before);
    CHECK(of(p, 3).match < of(p, 3).next);  // the invariant of progress.hpp
    // Committed by 1 and 2 alone: the report agrees with the commit index.
    CHECK(c.core(1).commit_index() == last);

    c.heal();
    c.tick_all(3);
    CHECK(of(c.core(1).progress(), 3).match == last);
}

TEST_CASE("progress: the leader's own match is its persisted index, not its last index") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.propose(1, "durable");
    const Index durable = c.core(1).persisted_index();
    REQUIRE(durable == c.core(1).last_index());

    c.node(1).hold_persist = true;  // the leader's disk has not acknowledged yet
    (void)c.core(1).propose("pending");
    c.process(1);
    const Index last = c.core(1).last_index();
    REQUIRE(last == durable + 1);
    auto p = c.core(1).progress();
    CHECK(of(p, 1).match == durable);
    CHECK(of(p, 1).next == last + 1);

    c.release(1);
    CHECK(of(c.core(1).progress(), 1).match == last);
}

TEST_CASE("progress: a new leader probes; learners are reported as non-voters") {
    auto l = lone_core(1, {1, 2, 3}, 1, {}, 1, nullptr, {4});
    const WriteId noop_write = win_election(*l).write_id;
    const Index noop = l->last_index();
    auto p = l->progress();
    CHECK(ids_of(p) == std::vector<NodeId>{1, 2, 3, 4});
    for (NodeId id : {2, 3, 4}) {
        INFO("member " << id);
        // Probing from the end of the log as it was before the no-op: nothing known yet.
        CHECK(of(p, id).state == ProgressState::probe);
        CHECK(of(p, id).match == 0);
        CHECK(of(p, id).next == noop);
    }
    CHECK(of(p, 2).voter);
    CHECK_FALSE(of(p, 4).voter);
    CHECK(of(p, 1).match == noop - 1);  // what it restored from disk; the no-op is not durable yet
    l->on_persisted(noop_write);
    CHECK(of(l->progress(), 1).match == noop);

    // An acknowledgement moves a follower to replicate with its match.
    (void)l->step(Message{.type = MessageType::append_response,
                          .from = 2,
                          .to = 1,
                          .term = l->term(),
                          .index = noop});
    p = l->progress();
    CHECK(of(p, 2).state == ProgressState::replicate);
    CHECK(of(p, 2).match == noop);
    CHECK(of(p, 2).next == noop + 1);
    CHECK(of(p, 3).state == ProgressState::probe);
}

TEST_CASE("progress: a follower behind the leader's snapshot is in snapshot state") {
    Cluster c({1, 2, 3}, {}, [](Options& o) { o.snapshot_trailing_entries = 0; });
    c.elect(1);
    c.isolate(3);
    for (int i = 0; i < 5; ++i) c.propose(1, str_cat("v", i));
    c.tick_all(1);
    const Index applied = c.core(1).applied_index();
    REQUIRE(c.core(1).on_snapshot_taken(applied).ok());
    REQUIRE(c.core(3).last_index() < c.core(1).first_index());
    c.heal();
    c.tick(1);  // a heartbeat: 3's answer makes the leader send the snapshot
    bool snapshot_sent = false;
    for (int i = 0; i < 100 && !snapshot_sent; ++i) {
        for (const Message& m : c.network) {
            snapshot_sent = snapshot_sent || (m.type == MessageType::snapshot && m.to == 3);
        }
        if (!snapshot_sent) REQUIRE(c.deliver_one());
    }
    REQUIRE(snapshot_sent);
    auto p = c.core(1).progress();
    CHECK(of(p, 3).state == ProgressState::snapshot);
    CHECK(of(p, 2).state == ProgressState::replicate);
    CHECK(std::string(progress_state_name(of(p, 3).state)) == "snapshot");

    c.deliver_all();
    c.tick_all(2);
    p = c.core(1).progress();
    CHECK(of(p, 3).state == ProgressState::replicate);
    CHECK(of(p, 3).match == c.core(1).last_index());
}

TEST_CASE("progress: reading it changes nothing") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.propose(1, "x");
    REQUIRE_FALSE(c.core(1).has_actions());
    auto first = c.core(1).progress();
    CHECK_FALSE(c.core(1).has_actions());
    CHECK(c.core(1).progress() == first);
}

TEST_CASE("progress: a member whose removal is uncommitted is still reported, as a non-voter") {
    Cluster c({1, 2, 3, 4});
    c.elect(1);
    c.propose(1, "a");
    REQUIRE(c.core(1).propose_config_change(ConfigChange{ConfigChange::Kind::remove, 4, ""}).ok());
    c.process(1);  // appended, not yet replicated
    auto p = c.core(1).progress();
    CHECK(ids_of(p) == std::vector<NodeId>{1, 2, 3, 4});
    CHECK_FALSE(of(p, 4).voter);  // no longer counts toward the quorum
    CHECK(of(p, 3).voter);
    c.deliver_all();  // the removal commits: 4 is forgotten
    CHECK(ids_of(c.core(1).progress()) == std::vector<NodeId>{1, 2, 3});
}

TEST_CASE("progress: a leader removing itself reports itself as a non-voter until it steps down") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.propose(1, "a");
    REQUIRE(c.core(1).propose_config_change(ConfigChange{ConfigChange::Kind::remove, 1, ""}).ok());
    c.process(1);
    auto p = c.core(1).progress();
    CHECK(ids_of(p) == std::vector<NodeId>{1, 2, 3});
    CHECK_FALSE(of(p, 1).voter);
    CHECK(of(p, 1).match == c.core(1).last_index());  // the harness persists at once
    c.deliver_all();
    CHECK(c.core(1).role() != Role::leader);
    CHECK(c.core(1).progress().empty());
}

TEST_CASE("match_index: each member's match of progress(), without the copy") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.propose(1, "a");
    c.isolate(3);
    c.propose(1, "b");
    c.node(1).hold_persist = true;  // the leader's own match lags its log
    (void)c.core(1).propose("c");
    c.process(1);
    const auto p = c.core(1).progress();
    REQUIRE(p.size() == 3);
    for (const PeerProgress& m : p) {
        INFO("member " << m.id);
        CHECK(c.core(1).match_index(m.id) == m.match);
    }
    CHECK(c.core(1).match_index(1) == c.core(1).persisted_index());
    CHECK(c.core(1).match_index(3) < c.core(1).match_index(2));
    CHECK(c.core(1).match_index(9) == 0);  // not a member
    CHECK(c.core(2).match_index(2) == 0);  // a follower tracks no one
    CHECK(c.core(2).match_index(1) == 0);
}
