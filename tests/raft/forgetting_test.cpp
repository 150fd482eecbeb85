// tests/raft/forgetting_test.cpp — members drop from memory what every
// member stored and they applied (Options::forget_stored_everywhere,
// lib/raft/forgetting.cpp), and every question the core is asked afterwards
// still has its answer.
#include <catch2/catch.hpp>

#include "harness.hpp"
#include "raft/refusal.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

namespace {

// The node restarts from what its runtime stored, with a state machine
// restored from its last installed snapshot (or empty).
void restart(Cluster& c, NodeId id) {
    Node& n = c.node(id);
    RestoredState r;
    r.hard_state = n.hard_state;
    r.snapshot = n.installed;
    r.entries = n.storage;
    r.applied = n.installed ? n.installed->index : 0;
    n.applied_index = r.applied;
    c.add(id, test_options(id), std::move(r));
}

// Every node of the cluster has applied and dropped everything up to `index`.
void check_dropped_through(Cluster& c, Index index) {
    for (NodeId id : c.ids()) {
        INFO("node " << id);
        CHECK(c.core(id).applied_index() >= index);
        CHECK(c.core(id).first_index() == index + 1);
        CHECK(c.core(id).stored_everywhere() >= index);
    }
}

bool applied_data(Cluster& c, NodeId id, const std::string& data) {
    const auto& applied = c.node(id).applied;
    return std::any_of(applied.begin(), applied.end(),
                       [&](const Entry& e) { return std::string(e.data) == data; });
}

bool any_installed(Cluster& c) {
    for (NodeId id : c.ids()) {
        if (c.node(id).installed) return true;
    }
    return false;
}

}  // namespace

TEST_CASE(
    "every member drops what all members stored and it applied; the boundary keeps its term") {
    for (bool forget : {true, false}) {
        INFO("forget_stored_everywhere " << forget);
        Cluster c({1, 2, 3}, {}, [&](Options& o) { o.forget_stored_everywhere = forget; });
        c.elect(1);
        for (int i = 0; i < 10; ++i) c.propose(1, str_cat("v", i));
        c.tick_all(2);  // the followers hear the leader's count on the next heartbeat
        const Index last = c.core(1).last_index();
        if (!forget) {
            for (NodeId id : c.ids()) CHECK(c.core(id).first_index() == 1);
            continue;
        }
        check_dropped_through(c, last);
        for (NodeId id : c.ids()) {
            CHECK(c.core(id).term_at(last) == c.core(1).term());
            CHECK(c.core(id).entries(1, last + 1).empty());
        }
        // Writes, commits and reads go on from a log held only past its end.
        c.propose(1, "more");
        CHECK(c.node(3).applied.back().data == "more");
        REQUIRE(c.core(1).read_index(7).ok());
        c.tick_all(1);
        REQUIRE_FALSE(c.node(1).read_states.empty());
        CHECK(c.node(1).read_states.back().index == last + 1);
        CHECK_FALSE(any_installed(c));
    }
}

TEST_CASE(
    "a lagging follower or learner holds every member's entries in memory until it has them") {
    Cluster c({1, 2}, {3});
    c.elect(1);
    c.propose(1, "before");
    c.tick_all(2);
    const Index before = c.core(1).last_index();
    check_dropped_through(c, before);
    c.isolate(3);  // the learner
    for (int i = 0; i < 10; ++i) c.propose(1, str_cat("v", i));
    c.tick_all(2);
    // Applied on 1 and 2, but not stored on 3: kept.
    CHECK(c.core(1).applied_index() == c.core(1).last_index());
    CHECK(c.core(1).first_index() == before + 1);
    CHECK(c.core(2).first_index() == before + 1);
    CHECK(c.core(1).stored_everywhere() == before);
    c.heal();
    c.tick_all(3);
    // The learner caught up by appends, and everyone dropped it all.
    CHECK_FALSE(any_installed(c));
    CHECK(c.node(3).applied.back().data == "v9");
    check_dropped_through(c, c.core(1).last_index());
}

TEST_CASE("a follower drops nothing it has not applied, whatever the leader counts") {
    auto f = lone_core(2, {1, 2, 3}, 2, {2, 2, 2}, 1);
    // The leader says 1..4 are committed and stored everywhere.
    Message m = append_message(1, 2, 2, 4, 2, {}, 4);
    m.index = 4;
    Actions a = step_and_take(*f, m);
    CHECK(f->stored_everywhere() == 4);
    REQUIRE_FALSE(a.committed_entries.empty());
    REQUIRE(a.committed_entries.back().index == 4);
    CHECK(f->first_index() == 1);  // handed to the runtime, not applied yet
    f->on_applied(2);
    CHECK(f->first_index() == 3);
    CHECK(f->term_at(2) == 2);
    f->on_applied(4);
    CHECK(f->first_index() == 5);
    CHECK(f->term_at(4) == 2);
    // Its leader probes below what it dropped: it matches (committed).
    a = step_and_take(*f, append_message(1, 2, 2, 3, 2, {Entry{2, 4, EntryType::normal, "e4"}}, 4));
    REQUIRE(a.messages_after_persist.size() == 1);
    CHECK_FALSE(a.messages_after_persist[0].reject);
    CHECK(a.messages_after_persist[0].index == 4);
}

TEST_CASE("an append or heartbeat claiming more stored everywhere than committed is refused") {
    for (MessageType type : {MessageType::append, MessageType::heartbeat}) {
        auto f = lone_core(2, {1, 2, 3}, 2, {2, 2}, 1);
        Message m{.type = type, .from = 1, .to = 2, .term = 2, .commit = 2, .index = 3};
        if (type == MessageType::append) m.log_index = 3, m.log_term = 2;
        const keel::Status st = f->step(m);
        CHECK(refusal_reason(st) == std::string(kRefusedMalformed));
        CHECK(f->stored_everywhere() == 0);
        CHECK(f->term() == 2);
        m.index = 2;
        CHECK(f->step(m).ok());
        CHECK(f->stored_everywhere() == 2);
    }
}

TEST_CASE("a restarted follower holds its stored log again and drops it once told") {
    Cluster c({1, 2, 3});
    c.elect(1);
    for (int i = 0; i < 5; ++i) c.propose(1, str_cat("v", i));
    c.tick_all(2);
    const Index before = c.core(1).last_index();
    check_dropped_through(c, before);
    restart(c, 3);
    CHECK(c.core(3).first_index() == 1);  // the whole stored log, from storage
    CHECK(c.core(3).stored_everywhere() == 0);
    c.propose(1, "after");
    c.tick_all(2);
    CHECK_FALSE(any_installed(c));
    CHECK(c.node(3).applied.back().data == "after");
    check_dropped_through(c, c.core(1).last_index());
}

TEST_CASE("a new leader that dropped entries probes its followers without a snapshot") {
    Cluster c({1, 2, 3});
    c.elect(1);
    for (int i = 0; i < 5; ++i) c.propose(1, str_cat("v", i));
    c.tick_all(2);
    check_dropped_through(c, c.core(1).last_index());
    // 3 misses the next writes (1 and 2 keep them: not stored everywhere).
    c.isolate(3);
    for (int i = 0; i < 5; ++i) c.propose(1, str_cat("w", i));
    c.tick_all(1);
    const Index dropped = c.core(2).first_index() - 1;
    CHECK(c.core(3).last_index() == dropped);
    // 1 goes; 2, holding the log only after `dropped`, is elected and must
    // probe 3 back to 3's last entry: that is where 2's in-memory log starts.
    c.heal();
    c.isolate(1);
    REQUIRE(c.tick_until_one_leads({2, 3}) == 2);
    c.tick_all(3);
    CHECK(c.core(3).commit_index() == c.core(2).commit_index());
    CHECK(applied_data(c, 3, "w4"));
    CHECK_FALSE(any_installed(c));
    // The new leader counts afresh once every member answers again.
    c.heal();
    c.tick_all(3);
    check_dropped_through(c, c.core(2).last_index());
}

TEST_CASE("a member added after the entries were dropped gets a snapshot taken for it") {
    Cluster c({1, 2, 3});
    c.elect(1);
    for (int i = 0; i < 5; ++i) c.propose(1, str_cat("v", i));
    c.tick_all(2);
    const Index dropped = c.core(1).first_index() - 1;
    check_dropped_through(c, dropped);
    c.add(4, test_options(4), RestoredState{});
    REQUIRE(c.core(1)
                .propose_config_change(ConfigChange{ConfigChange::Kind::add_learner, 4, "x"})
                .ok());
    c.deliver_all();
    c.tick_all(3);
    // The leader asked its runtime for a snapshot (the harness takes it at
    // the applied index) and sent it: no one else needed one.
    REQUIRE(c.core(1).snapshot());
    CHECK(c.core(1).snapshot()->index >= dropped);
    REQUIRE(c.node(4).installed);
    CHECK_FALSE(c.node(2).installed);
    CHECK_FALSE(c.node(3).installed);
    c.propose(1, "after");
    c.tick_all(2);
    CHECK(c.node(4).applied.back().data == "after");
    check_dropped_through(c, c.core(1).last_index());
}

TEST_CASE("a leader elected after a member joined sends it a snapshot of entries it dropped") {
    Cluster c({1, 2, 3});
    c.elect(1);
    for (int i = 0; i < 5; ++i) c.propose(1, str_cat("v", i));
    c.tick_all(2);
    check_dropped_through(c, c.core(1).last_index());
    // 4 is added, but 1 goes before it can send 4 anything.
    c.add(4, test_options(4), RestoredState{});
    c.cut(1, 4);
    REQUIRE(c.core(1)
                .propose_config_change(ConfigChange{ConfigChange::Kind::add_learner, 4, "x"})
                .ok());
    c.deliver_all();
    c.tick_all(1);
    REQUIRE(c.core(2).configuration().contains(4));
    CHECK_FALSE(c.node(4).installed);
    c.isolate(1);
    const NodeId leader = c.tick_until_one_leads({2, 3});
    REQUIRE(leader != 0);
    c.tick_all(3);
    REQUIRE(c.core(leader).snapshot());
    REQUIRE(c.node(4).installed);
    c.propose(leader, "after");
    c.tick_all(2);
    CHECK(c.node(4).applied.back().data == "after");
}
