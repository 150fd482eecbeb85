// tests/raft/admission_members_test.cpp — what step() refuses for its
// sender (raft/admission.cpp): who a follower, a candidate, a joiner and a
// leader hear, and from whom they hear nothing.  Every refused message must
// leave the core exactly as it was.
#include <catch2/catch.hpp>

#include "admission_support.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

TEST_CASE("a follower that hears its leader hears no stranger") {
    // An append at term + 1 from a node that is not a member used to depose
    // leaders and move followers to its term.
    auto c = follower_of_1();
    Message append{.type = MessageType::append,
                   .from = 9,
                   .to = 2,
                   .term = 3,
                   .log_index = 2,
                   .log_term = 2,
                   .commit = 2};
    require_refused(*c, append, kRefusedNotAMember);
    require_refused(*c, heartbeat(9, 2, 3), kRefusedNotAMember);
    require_refused(*c,
                    Message{.type = MessageType::snapshot,
                            .from = 9,
                            .to = 2,
                            .term = 3,
                            .snapshot = SnapshotMeta{50, 3, make_config({9})}},
                    kRefusedNotAMember);
    require_refused(*c, Message{.type = MessageType::timeout_now, .from = 9, .to = 2, .term = 2},
                    kRefusedNotAMember);
    require_refused(*c,
                    Message{.type = MessageType::vote,
                            .from = 9,
                            .to = 2,
                            .term = 2,
                            .log_index = 100,
                            .log_term = 2},
                    kRefusedNotAMember);
    // A response from a stranger never reaches the leader's bookkeeping.
    auto l = leader_1();
    require_refused(*l, append_ok(9, 1, l->term(), l->last_index()), kRefusedNotAMember);
    require_refused(*l, append_ok(9, 1, l->term() + 1, 0), kRefusedNotAMember);
    require_refused(
        *l, Message{.type = MessageType::heartbeat_response, .from = 9, .to = 1, .term = l->term()},
        kRefusedNotAMember);
}

TEST_CASE("a candidate counts no stranger's vote, and no stranger's term moves it") {
    auto c = lone_core(1, {1, 2, 3}, 1, {}, 1, [](Options& o) { o.pre_vote = false; });
    for (int i = 0; i < 100 && c->role() == Role::follower; ++i) c->tick();
    REQUIRE(c->role() == Role::candidate);
    require_refused(
        *c, Message{.type = MessageType::vote_response, .from = 9, .to = 1, .term = c->term()},
        kRefusedNotAMember);
    require_refused(*c,
                    Message{.type = MessageType::vote_response,
                            .from = 9,
                            .to = 1,
                            .term = c->term() + 1,
                            .reject = true},
                    kRefusedNotAMember);
}

TEST_CASE("a node still empty after --join hears the leader that adds it, and no one else") {
    Options o = test_options(4);
    Core joiner(o, RestoredState{});
    (void)joiner.take_actions();
    // The leader adding it is not in its (empty) configuration: heard.
    CHECK(joiner
              .step(Message{.type = MessageType::append,
                            .from = 1,
                            .to = 4,
                            .term = 3,
                            .log_index = 5,
                            .log_term = 3})
              .ok());
    CHECK(joiner.leader() == 1);
    CHECK(joiner.term() == 3);
    // Answers are for members only.
    require_refused(joiner, append_ok(1, 4, 3, 0), kRefusedNotAMember);
    require_refused(joiner,
                    Message{.type = MessageType::heartbeat_response, .from = 7, .to = 4, .term = 4},
                    kRefusedNotAMember);
}

TEST_CASE("a joiner that follows the leader adding it hears no stranger until it loses it") {
    Options o = test_options(4);
    Core joiner(o, RestoredState{});
    (void)joiner.take_actions();
    REQUIRE(joiner.step(heartbeat(1, 4, 3)).ok());
    REQUIRE(joiner.leader() == 1);
    // While its leader is heard, another id moves neither its term nor its leader.
    require_refused(joiner, heartbeat(9, 4, 50), kRefusedNotAMember);
    require_refused(joiner, Message{.type = MessageType::append, .from = 9, .to = 4, .term = 50},
                    kRefusedNotAMember);
    require_refused(joiner,
                    Message{.type = MessageType::vote,
                            .from = 9,
                            .to = 4,
                            .term = 50,
                            .log_index = 9,
                            .log_term = 9},
                    kRefusedNotAMember);
    // Its leader, re-elected in a later term, is heard.
    REQUIRE(joiner.step(heartbeat(1, 4, 5)).ok());
    CHECK(joiner.term() == 5);
    // Once it has heard no leader for an election timeout, a new leader it
    // does not know yet (added after the entries it has) is heard.
    for (int i = 0; i < o.election_ticks_min; ++i) joiner.tick();
    (void)joiner.take_actions();
    CHECK(joiner.step(heartbeat(3, 4, 6)).ok());
    CHECK(joiner.leader() == 3);
    CHECK(joiner.term() == 6);
}

TEST_CASE("the leader a node follows is still heard once the node no longer knows it") {
    // 1 removed itself: once 2 commits that, 1 is no member 2 knows, yet 1's
    // timeout_now (its hand-over) must still make 2 campaign at once.
    Cluster c({1, 2, 3});
    c.elect(1);
    c.propose(1, "a");
    REQUIRE(c.core(1).propose_config_change(ConfigChange{ConfigChange::Kind::remove, 1, ""}).ok());
    c.deliver_all();
    // Committed everywhere; 1 handed over with timeout_now, already delivered.
    CHECK_FALSE(c.core(2).configuration().contains(1));
    NodeId leader = c.leader();
    CHECK((leader == 2 || leader == 3));
    // The same, in isolation: a follower that committed the removal of its
    // leader accepts that leader's timeout_now in its term.
    auto f = lone_core(2, {1, 2, 3}, 2, {2});
    (void)f->step(heartbeat(1, 2, 2));
    Configuration without_1 = make_config({2, 3});
    REQUIRE(f->step(Message{.type = MessageType::append,
                            .from = 1,
                            .to = 2,
                            .term = 2,
                            .log_index = 2,
                            .log_term = 2,
                            .commit = 3,
                            .entries = {Entry{2, 3, EntryType::config,
                                              encode_configuration(without_1)}}})
                .ok());
    REQUIRE(f->commit_index() == 3);
    REQUIRE_FALSE(f->configuration().contains(1));
    CHECK(f->step(Message{.type = MessageType::timeout_now, .from = 1, .to = 2, .term = 2}).ok());
    CHECK(f->role() == Role::candidate);
    // A stranger's timeout_now never is.
    auto g = follower_of_1(3);
    require_refused(*g, Message{.type = MessageType::timeout_now, .from = 9, .to = 3, .term = 2},
                    kRefusedNotAMember);
}

TEST_CASE("a member whose removal is not committed yet is still heard") {
    auto c = leader_1();
    REQUIRE(c->propose_config_change(ConfigChange{ConfigChange::Kind::remove, 3, ""}).ok());
    REQUIRE_FALSE(c->configuration().contains(3));
    CHECK(c->step(append_ok(3, 1, c->term(), c->last_index())).ok());
    // 1 and 2 commit the removal (the majority of {1, 2}).
    const Actions removal = c->take_actions();
    c->on_persisted(removal.write_id);
    CHECK(c->step(append_ok(2, 1, c->term(), c->last_index())).ok());
    CHECK(c->commit_index() == c->last_index());
    // Committed: 3 is a stranger now.
    require_refused(*c, append_ok(3, 1, c->term(), c->last_index()), kRefusedNotAMember);
}

TEST_CASE("a member lagging behind its leader's addition hears it once no leader is heard") {
    // 5 knows {1, 2, 5} only; the cluster went on to add 6, which leads now
    // (and 1 and 2 are gone).  Until 5 has gone an election timeout without a
    // leader, a stranger changes nothing; after, 6 is heard as Raft would.
    auto c = lone_core(5, {1, 2, 5}, 3, {2, 3}, 3);
    (void)c->step(heartbeat(1, 5, 3));
    Message from_6{.type = MessageType::append,
                   .from = 6,
                   .to = 5,
                   .term = 7,
                   .log_index = 3,
                   .log_term = 3,
                   .commit = 3};
    require_refused(*c, from_6, kRefusedNotAMember);
    for (int i = 0; i < 30; ++i) c->tick();  // past an election timeout, campaigning in vain
    REQUIRE(c->role() != Role::leader);
    CHECK(c->step(from_6).ok());
    CHECK(c->term() == 7);
    CHECK(c->leader() == 6);
    // From now on it follows 6, and hears it while 6 is heard.
    CHECK(c->step(heartbeat(6, 5, 7)).ok());
    // Not a stranger that is not its leader, though, while 6 is heard.
    require_refused(*c, heartbeat(8, 5, 8), kRefusedNotAMember);
}

TEST_CASE("a leader that hears no quorum hears a stranger's candidate; one that does, not") {
    // Without CheckQuorum a stale leader never steps down by itself: one whose
    // voters are gone, deaf to the member added after its log, blocked the
    // configuration that needed its vote (seed 22011 of `--nodes 3 --membership`).
    auto c = lone_core(2, {1, 2, 3}, 1, {}, 1, [](Options& o) {
        o.check_quorum = false;
        o.pre_vote = false;
    });
    (void)win_election(*c);
    const Term term = c->term();
    Message vote{.type = MessageType::vote,
                 .from = 12,
                 .to = 2,
                 .term = term + 5,
                 .log_index = 50,
                 .log_term = term + 1};
    require_refused(*c, vote, kRefusedNotAMember);   // it just heard its quorum (the votes)
    for (int i = 0; i < 2 * 10 + 1; ++i) c->tick();  // two checks with nobody heard
    REQUIRE(c->role() == Role::leader);
    CHECK(c->step(vote).ok());
    CHECK(c->term() == term + 5);
    CHECK(c->role() == Role::follower);
    // A lone voter always hears its quorum, itself.
    Cluster one({1});
    for (int i = 0; i < 50; ++i) one.tick(1);
    vote.to = 1;
    require_refused(one.core(1), vote, kRefusedNotAMember);
}

TEST_CASE("a voter outside its own configuration hears a candidate it does not know") {
    // 4 was added as a voter before it received anything: the only other voter
    // needs its vote.
    Options o = test_options(4);
    Core joiner(o, RestoredState{});
    (void)joiner.take_actions();
    CHECK(joiner
              .step(Message{.type = MessageType::vote,
                            .from = 3,
                            .to = 4,
                            .term = 4,
                            .log_index = 15,
                            .log_term = 3})
              .ok());
    Actions a = joiner.take_actions();
    REQUIRE(a.messages_after_persist.size() == 1);
    CHECK(a.messages_after_persist[0].type == MessageType::vote_response);
    CHECK_FALSE(a.messages_after_persist[0].reject);
}
