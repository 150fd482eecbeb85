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

TEST_CASE("same seeds and inputs give the same outputs (determinism)") {
    auto run = [] {
        Cluster c({1, 2, 3, 4, 5});
        c.isolate(5);
        c.tick_all(40);
        NodeId l = c.leader();
        for (int i = 0; i < 10; ++i) (void)c.core(l).propose(str_cat("v", i));
        c.heal();
        c.tick_all(10);
        std::vector<std::string> trace;
        for (const Message& m : c.sent_log) trace.push_back(to_string(m));
        return trace;
    };
    std::vector<std::string> first = run();
    CHECK(first.size() > 100);
    CHECK(run() == first);
}

TEST_CASE("report_unreachable sends a pipelining follower back to probing") {
    auto c = lone_core(1, {1, 2, 3});
    (void)win_election(*c);
    Index noop = c->last_index();
    (void)c->step(append_ok(2, 1, c->term(), noop));
    (void)c->take_actions();
    // Replicate state: two proposals go out back to back (3 is still probing).
    REQUIRE(c->propose("a").ok());
    auto appends = of_type(c->take_actions().messages, MessageType::append);
    REQUIRE(c->propose("b").ok());
    for (const Message& m : of_type(c->take_actions().messages, MessageType::append))
        appends.push_back(m);
    REQUIRE(appends.size() == 2);
    CHECK(appends[1].log_index == noop + 1);  // optimistic: sent before the first is acked
    c->report_unreachable(2);
    // Probe state: resend from the match index, one message, then wait.
    REQUIRE(c->propose("c").ok());
    appends = of_type(c->take_actions().messages, MessageType::append);
    REQUIRE(appends.size() == 1);
    CHECK(appends[0].to == 2);
    CHECK(appends[0].log_index == noop);
    CHECK(appends[0].entries.size() == 3);
    REQUIRE(c->propose("d").ok());
    CHECK(of_type(c->take_actions().messages, MessageType::append).empty());
}

namespace {
// Leader 1 of {1, 2, 3}: its no-op durable, acknowledged by both followers
// (so both replicate) and committed; every batch so far taken.
std::unique_ptr<Core> leader_of_three() {
    auto c = lone_core(1, {1, 2, 3});
    const WriteId noop_write = win_election(*c).write_id;
    const Index noop = c->last_index();
    c->on_persisted(noop_write);
    for (NodeId peer : {NodeId{2}, NodeId{3}}) (void)c->step(append_ok(peer, 1, c->term(), noop));
    (void)c->take_actions();
    REQUIRE(c->commit_index() == noop);
    return c;
}
}  // namespace

TEST_CASE("a burst of proposals between two batches leaves as one append per follower") {
    auto c = leader_of_three();
    const Index noop = c->last_index();
    for (int i = 0; i < 100; ++i) {
        std::string data("p");  // appended: GCC 12 warns falsely (-Wrestrict) on "p" + string
        data.append(std::to_string(i));
        REQUIRE(c->propose(std::move(data)).ok());
    }
    REQUIRE(c->has_actions());
    Actions a = c->take_actions();
    CHECK(a.entries.size() == 100);
    auto appends = of_type(a.messages, MessageType::append);
    REQUIRE(appends.size() == 2);
    for (const Message& m : appends) {
        CHECK(m.log_index == noop);
        CHECK(m.entries.size() == 100);
    }
    // Nothing is left over for a later batch.
    CHECK(!c->has_actions());
}

TEST_CASE("a leader that steps down before its batch is taken sends no appends") {
    auto c = lone_core(1, {1, 2, 3});
    (void)win_election(*c);
    (void)c->take_actions();
    REQUIRE(c->propose("x").ok());
    // A higher term arrives before the runtime takes the batch.
    (void)c->step(
        Message{.type = MessageType::heartbeat, .from = 2, .to = 1, .term = c->term() + 1});
    CHECK(c->role() == Role::follower);
    CHECK(of_type(c->take_actions().messages, MessageType::append).empty());
}

TEST_CASE("a new commit index rides on the appends of the same batch") {
    auto c = leader_of_three();
    const Index noop = c->last_index();
    REQUIRE(c->propose("a").ok());
    Actions first = c->take_actions();
    REQUIRE(first.entries.size() == 1);
    c->on_persisted(first.write_id);
    (void)c->take_actions();
    // "b" is proposed; before the batch is taken, 2 acknowledges "a": the
    // commit advances, and the batch carries "b" to each follower with the
    // new commit index, and nothing else.
    REQUIRE(c->propose("b").ok());
    (void)c->step(append_ok(2, 1, c->term(), noop + 1));
    REQUIRE(c->commit_index() == noop + 1);
    Actions a = c->take_actions();
    auto appends = of_type(a.messages, MessageType::append);
    REQUIRE(appends.size() == 2);
    for (const Message& m : appends) {
        CHECK(m.entries.size() == 1);
        CHECK(m.commit == noop + 1);
    }
    // With nothing else to send, the news goes alone once the leader has
    // applied it: 3 acknowledges "b", the commit advances again, and when
    // "b" is applied 3, which holds it, gets a commit notice (a heartbeat of
    // context 0: replication.cpp, send_commit_news); 2, whose answer for "b"
    // is on its way, gets its notice with that answer.
    c->on_persisted(a.write_id);  // "b"
    (void)c->take_actions();
    (void)c->step(append_ok(3, 1, c->term(), noop + 2));
    REQUIRE(c->commit_index() == noop + 2);
    Actions commit = c->take_actions();
    CHECK(of_type(commit.messages, MessageType::append).empty());
    REQUIRE_FALSE(commit.committed_entries.empty());
    c->on_applied(noop + 2);
    Actions applied = c->take_actions();
    CHECK(of_type(applied.messages, MessageType::append).empty());
    std::vector<Message> notices = of_type(applied.messages, MessageType::heartbeat);
    REQUIRE(notices.size() == 1);
    CHECK(notices[0].to == 3);
    CHECK(notices[0].context == kCommitNoticeContext);
    CHECK(notices[0].commit == noop + 2);
    (void)c->step(append_ok(2, 1, c->term(), noop + 2));
    notices = of_type(c->take_actions().messages, MessageType::heartbeat);
    REQUIRE(notices.size() == 1);
    CHECK(notices[0].to == 2);
    CHECK(notices[0].context == kCommitNoticeContext);
    CHECK(notices[0].commit == noop + 2);
}

TEST_CASE("a new commit index never rides on an append of an earlier term in the same batch") {
    auto c = leader_of_three();
    const Term t = c->term();
    const Index noop = c->last_index();
    REQUIRE(c->commit_index() == noop);
    // Within one batch (nothing taken until the end): "a" leaves for 2 in
    // term t, the node is deposed, then re-elected in term t + 2, and its
    // new no-op commits.
    REQUIRE(c->propose("a").ok());
    (void)c->step(Message{.type = MessageType::heartbeat_response, .from = 2, .to = 1, .term = t});
    (void)c->step(Message{.type = MessageType::heartbeat, .from = 3, .to = 1, .term = t + 1});
    REQUIRE(c->role() == Role::follower);
    for (int i = 0; i < 100 && c->role() == Role::follower; ++i) c->tick();
    (void)c->step(
        Message{.type = MessageType::pre_vote_response, .from = 2, .to = 1, .term = t + 2});
    (void)c->step(Message{.type = MessageType::vote_response, .from = 2, .to = 1, .term = t + 2});
    REQUIRE(c->role() == Role::leader);
    REQUIRE(c->term() == t + 2);
    const Index noop2 = c->last_index();
    // Both followers acknowledge it (the leader's own copy is not handed
    // out for writing yet, so it cannot count).
    for (NodeId peer : {NodeId{2}, NodeId{3}}) (void)c->step(append_ok(peer, 1, t + 2, noop2));
    REQUIRE(c->commit_index() == noop2);
    int old_appends = 0;
    for (const Message& m : of_type(c->take_actions().messages, MessageType::append)) {
        if (m.term != t) continue;
        ++old_appends;
        CHECK(m.to == 2);
        CHECK(m.commit == noop);  // as formed: the term-t leader's commit
    }
    CHECK(old_appends == 1);
}
