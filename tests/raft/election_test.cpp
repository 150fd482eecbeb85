// tests/raft/election_test.cpp — RequestVote receiver rules (Figure 2),
// elections, PreVote, CheckQuorum and leader stickiness.
#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

namespace {

Message vote_request(NodeId from, NodeId to, Term term, Index last_index, Term last_term,
                     MessageType type = MessageType::vote) {
    return Message{.type = type,
                   .from = from,
                   .to = to,
                   .term = term,
                   .log_index = last_index,
                   .log_term = last_term};
}

std::vector<Message> all_messages(const Actions& a) {
    std::vector<Message> out = a.messages;
    out.insert(out.end(), a.messages_after_persist.begin(), a.messages_after_persist.end());
    return out;
}

}  // namespace

TEST_CASE("RequestVote: reply false if term < currentTerm") {
    auto c = lone_core(1, {1, 2, 3}, /*term=*/5);
    Actions a = step_and_take(*c, vote_request(2, 1, 4, 10, 4));
    auto replies = of_type(all_messages(a), MessageType::vote_response);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].reject);
    CHECK(replies[0].term == 5);
    CHECK(c->term() == 5);
    CHECK(c->vote() == kNoNode);
}

TEST_CASE("RequestVote: grant if not voted and candidate's log is up to date; vote durable first") {
    auto c = lone_core(1, {1, 2, 3}, 2, {2});  // log: 1/1, 2/2
    Actions a = step_and_take(*c, vote_request(2, 1, 3, 2, 2));
    REQUIRE(c->term() == 3);
    REQUIRE(c->vote() == 2);
    // Term and vote are in the batch's hard state, and the grant waits for it.
    REQUIRE(a.hard_state);
    CHECK(a.hard_state->term == 3);
    CHECK(a.hard_state->vote == 2);
    CHECK(of_type(a.messages, MessageType::vote_response).empty());
    auto replies = of_type(a.messages_after_persist, MessageType::vote_response);
    REQUIRE(replies.size() == 1);
    CHECK_FALSE(replies[0].reject);
    CHECK(replies[0].term == 3);
}

TEST_CASE("RequestVote: at most one vote per term, repeated to the same candidate") {
    auto c = lone_core(1, {1, 2, 3}, 2);
    (void)step_and_take(*c, vote_request(2, 1, 3, 1, 1));
    REQUIRE(c->vote() == 2);
    Actions other = step_and_take(*c, vote_request(3, 1, 3, 1, 1));
    auto r = of_type(all_messages(other), MessageType::vote_response);
    REQUIRE(r.size() == 1);
    CHECK(r[0].reject);
    CHECK(c->vote() == 2);
    Actions again = step_and_take(*c, vote_request(2, 1, 3, 1, 1));
    r = of_type(all_messages(again), MessageType::vote_response);
    REQUIRE(r.size() == 1);
    CHECK_FALSE(r[0].reject);
}

TEST_CASE("RequestVote: reject a candidate whose log is less up to date (§5.4.1)") {
    auto c = lone_core(1, {1, 2, 3}, 3, {2, 3});  // last entry 3/3
    SECTION("lower last term") {
        Actions a = step_and_take(*c, vote_request(2, 1, 4, 10, 2));
        auto r = of_type(all_messages(a), MessageType::vote_response);
        REQUIRE(r.size() == 1);
        CHECK(r[0].reject);
        // The higher term is still adopted (Figure 2, rules for all servers).
        CHECK(c->term() == 4);
        CHECK(c->vote() == kNoNode);
    }
    SECTION("same last term, shorter log") {
        Actions a = step_and_take(*c, vote_request(2, 1, 4, 2, 3));
        CHECK(of_type(all_messages(a), MessageType::vote_response).at(0).reject);
    }
    SECTION("same last term, same length: granted") {
        Actions a = step_and_take(*c, vote_request(2, 1, 4, 3, 3));
        CHECK_FALSE(of_type(all_messages(a), MessageType::vote_response).at(0).reject);
    }
}

TEST_CASE("a candidate that wins a majority becomes leader and appends a no-op of its term") {
    auto c = lone_core(1, {1, 2, 3}, 1);
    Actions a = win_election(*c);
    CHECK(c->role() == Role::leader);
    CHECK(c->term() == 2);
    REQUIRE(a.entries.size() == 1);
    CHECK(a.entries[0].type == EntryType::noop);
    CHECK(a.entries[0].term == 2);
    CHECK(of_type(a.messages, MessageType::append).size() == 2);
    REQUIRE(a.soft_state);
    CHECK(a.soft_state->role == Role::leader);
}

TEST_CASE("a candidate that loses a majority of votes returns to follower") {
    auto c = lone_core(1, {1, 2, 3}, 1, {}, 1, [](Options& o) { o.pre_vote = false; });
    for (int i = 0; i < 30 && c->role() == Role::follower; ++i) c->tick();
    REQUIRE(c->role() == Role::candidate);
    (void)c->take_actions();
    for (NodeId from : {2, 3}) {
        (void)c->step(Message{.type = MessageType::vote_response,
                              .from = from,
                              .to = 1,
                              .term = c->term(),
                              .reject = true});
    }
    CHECK(c->role() == Role::follower);
}

TEST_CASE("elections use randomized timeouts within the configured range") {
    std::set<int> seen;
    for (std::uint64_t seed = 1; seed <= 50; ++seed) {
        auto c = lone_core(1, {1, 2, 3}, 1, {}, 1, [seed](Options& o) {
            o.pre_vote = false;
            o.random_seed = seed;
        });
        int ticks = 0;
        while (c->role() == Role::follower) {
            c->tick();
            ++ticks;
        }
        CHECK(ticks >= 10);
        CHECK(ticks <= 20);
        seen.insert(ticks);
    }
    CHECK(seen.size() > 5);  // actually randomized
}

// Campaigns that run out their timeout with no leader back off: the range
// each next timeout is drawn from doubles, up to 2^kMaxCampaignBackoff, so
// that candidates whose votes take about an election timeout to come back
// (an overloaded machine) stop colliding and let the round trip finish.
// The lower bound stays; a leader heard brings the base range back.
TEST_CASE("campaigns that keep failing draw their timeouts from a wider range, until a leader") {
    for (bool pre_vote : {true, false}) {
        for (std::uint64_t seed = 1; seed <= 50; ++seed) {
            CAPTURE(pre_vote, seed);
            auto c = lone_core(1, {1, 2, 3}, 1, {}, 1, [&](Options& o) {
                o.pre_vote = pre_vote;
                o.random_seed = seed;
            });
            // Ticks between the campaigns of a node nobody answers.
            auto campaign_gaps = [&](int campaigns) {
                std::vector<int> gaps;
                int ticks = 0;
                while (static_cast<int>(gaps.size()) < campaigns) {
                    c->tick();
                    ++ticks;
                    Actions a = c->take_actions();
                    const bool asked = std::any_of(
                        a.messages.begin(), a.messages.end(), [](const Message& m) {
                            return m.type == MessageType::pre_vote || m.type == MessageType::vote;
                        });
                    if (a.write_id != 0) c->on_persisted(a.write_id);
                    if (asked || !a.messages_after_persist.empty()) {
                        gaps.push_back(ticks);
                        ticks = 0;
                    }
                }
                return gaps;
            };
            const std::vector<int> gaps = campaign_gaps(10);
            CHECK(gaps[0] <= 20);  // the first from the base range
            for (int g : gaps) CHECK(g >= 10);
            // The last seven from up to 8 times the range: 10 + [0, 88).
            int later = 0;
            for (std::size_t i = 3; i < gaps.size(); ++i) {
                CHECK(gaps[i] < 10 + 88);
                later += gaps[i];
            }
            CHECK(later > 7 * 20);  // beyond what the base range can give
            // A leader of a later term is heard: the base range again.
            const Term t = c->term() + 1;
            (void)c->step(Message{.type = MessageType::heartbeat, .from = 2, .to = 1, .term = t});
            (void)c->take_actions();
            CHECK(c->leader() == 2);
            CHECK(campaign_gaps(1)[0] <= 20);
        }
    }
}

TEST_CASE("PreVote: an isolated node neither bumps its term nor disrupts the stable leader") {
    Cluster c({1, 2, 3});
    c.elect(1);
    Term term = c.core(1).term();
    c.isolate(3);
    for (int i = 0; i < 100; ++i) {
        c.tick_all();
    }
    CHECK(c.core(3).term() == term);  // pre-votes never succeeded
    CHECK(c.core(3).role() != Role::leader);
    c.heal();
    c.tick_all(30);
    CHECK(c.leader() == 1);
    CHECK(c.core(1).term() == term);
    CHECK(c.core(3).leader() == 1);
}

TEST_CASE("PreVote off: an isolated node bumps its term and disrupts the leader on return") {
    Cluster c({1, 2, 3}, {}, [](Options& o) {
        o.pre_vote = false;
        o.check_quorum = false;
    });
    c.elect(1);
    Term term = c.core(1).term();
    c.isolate(3);
    c.tick_all(100);
    CHECK(c.core(3).term() > term);
    c.heal();
    c.tick_all(50);
    CHECK(c.core(1).term() > term);  // the old leader was deposed by the higher term
}

TEST_CASE("PreVote: a pre-candidate keeps its term and vote") {
    auto c = lone_core(1, {1, 2, 3}, 4);
    for (int i = 0; i < 30 && c->role() == Role::follower; ++i) c->tick();
    REQUIRE(c->role() == Role::pre_candidate);
    CHECK(c->term() == 4);
    CHECK(c->vote() == kNoNode);
    Actions a = c->take_actions();
    auto pre = of_type(a.messages, MessageType::pre_vote);
    REQUIRE(pre.size() == 2);
    CHECK(pre[0].term == 5);  // the prospective term
}

TEST_CASE("CheckQuorum: a leader that cannot reach a quorum for an election timeout steps down") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.isolate(1);
    for (int i = 0; i < 2 * 10 && c.core(1).role() == Role::leader; ++i) c.tick(1);
    CHECK(c.core(1).role() == Role::follower);
}

TEST_CASE("CheckQuorum: a leader hearing from a quorum stays leader") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.isolate(3);
    for (int i = 0; i < 50; ++i) {
        c.tick(1);
        c.deliver_all();
    }
    CHECK(c.core(1).role() == Role::leader);
}

TEST_CASE("leader stickiness: a follower in a leader's lease ignores vote requests") {
    Cluster c({1, 2, 3});
    c.elect(1);
    Term term = c.core(2).term();
    (void)c.core(2).step(vote_request(3, 2, term + 1, 100, term));
    CHECK(c.core(2).term() == term);
    Actions a = c.core(2).take_actions();
    CHECK(of_type(all_messages(a), MessageType::vote_response).empty());
    // A leadership transfer bypasses the lease.
    Message m = vote_request(3, 2, term + 1, 100, term);
    m.transfer = true;
    (void)c.core(2).step(m);
    CHECK(c.core(2).term() == term + 1);
    CHECK(c.core(2).vote() == 3);
}

TEST_CASE("with lease reads, a voter gives no vote for an election timeout after it restarts") {
    // It may have acknowledged a leader's heartbeat just before the restart:
    // the leader's lease counts on that voter's silence for election_ticks_min.
    auto c = lone_core(2, {1, 2, 3}, 3, {}, 1, [](Options& o) { o.lease_reads = true; });
    for (int i = 0; i < 9; ++i) c->tick();  // election_ticks_min is 10
    (void)c->take_actions();
    for (MessageType type : {MessageType::pre_vote, MessageType::vote}) {
        Actions a = step_and_take(*c, vote_request(3, 2, 4, 100, 3, type));
        CHECK(a.messages.empty());
        CHECK(c->term() == 3);
    }
    c->tick();  // the tenth
    (void)c->take_actions();
    Actions a = step_and_take(*c, vote_request(3, 2, 4, 100, 3));
    auto replies = of_type(all_messages(a), MessageType::vote_response);
    REQUIRE(replies.size() == 1);
    CHECK_FALSE(replies[0].reject);
}

TEST_CASE("with lease reads, a voter that heard a leader gives no vote even after a newer term") {
    // Without lease reads only leader stickiness holds, and a newer term
    // learned from anyone (here a stale pre-vote answer) clears the leader.
    for (bool lease_reads : {false, true}) {
        CAPTURE(lease_reads);
        auto c =
            lone_core(2, {1, 2, 3}, 3, {}, 1, [&](Options& o) { o.lease_reads = lease_reads; });
        for (int i = 0; i < 10; ++i) c->tick();
        (void)c->take_actions();
        (void)c->step(Message{.type = MessageType::heartbeat, .from = 1, .to = 2, .term = 3});
        (void)c->take_actions();
        (void)c->step(Message{
            .type = MessageType::pre_vote_response, .from = 3, .to = 2, .term = 4, .reject = true});
        REQUIRE(c->term() == 4);
        REQUIRE(c->leader() == kNoNode);
        Actions a = step_and_take(*c, vote_request(3, 2, 5, 100, 3));
        CHECK(of_type(all_messages(a), MessageType::vote_response).size() == (lease_reads ? 0 : 1));
    }
}

TEST_CASE("a stale leader learns the newer term from a follower's reply and steps down") {
    // Also with CheckQuorum and PreVote off (Figure 2's reply carries the
    // receiver's term): a member that does not know it is one never
    // campaigns, so nothing else would tell the leader.
    for (bool options_on : {true, false}) {
        CAPTURE(options_on);
        Cluster c({1, 2, 3}, {}, [&](Options& o) {
            o.check_quorum = options_on;
            o.pre_vote = options_on;
        });
        c.elect(1);
        c.isolate(1);
        // 2 and 3 time out (1 does not tick, so it still believes it leads).
        const NodeId new_leader = c.tick_until_one_leads({2, 3});
        REQUIRE(new_leader != 0);
        REQUIRE(c.core(1).role() == Role::leader);  // does not know yet
        c.heal();
        // Heartbeats of the old term: the first tick after the commit
        // notices of the no-op may send none (replication.cpp,
        // heartbeat_needed), the second does.
        c.tick(1, 2);
        c.deliver_all();
        CHECK(c.core(1).role() == Role::follower);
        CHECK(c.core(1).term() == c.core(new_leader).term());
    }
}

TEST_CASE("learners and nodes outside the configuration never campaign") {
    Cluster c({1, 2}, {3});
    for (int i = 0; i < 100; ++i) c.tick(3);
    CHECK(c.core(3).role() == Role::follower);
    Options o = test_options(9);
    c.add(9, o, RestoredState{});
    for (int i = 0; i < 100; ++i) c.tick(9);
    CHECK(c.core(9).role() == Role::follower);
    CHECK(c.core(9).term() == 0);
}

TEST_CASE("needs_ticks is false exactly for the only member of the configuration") {
    CHECK_FALSE(Cluster({1}).core(1).needs_ticks());
    CHECK(Cluster({1, 2}).core(1).needs_ticks());
    CHECK(Cluster({1}, {2}).core(1).needs_ticks());  // a learner needs retries
}

TEST_CASE("a lone voter deposed by a higher term takes leadership back at once, without ticks") {
    // 1 removed 2; until that commits, 2 is still heard (it is in 1's
    // committed configuration), and 2, which does not know it is out,
    // reaches the lone voter with a higher term.  needs_ticks() is false,
    // so nothing else would wake it.
    Cluster c({1, 2});
    c.elect(1);
    c.propose(1, "a");
    c.isolate(2);
    c.node(1).hold_persist = true;  // the removal stays uncommitted
    REQUIRE(c.core(1)
                .propose_config_change(ConfigChange{ConfigChange::Kind::remove, 2, std::string()})
                .ok());
    c.process(1);
    REQUIRE(c.core(1).role() == Role::leader);
    REQUIRE_FALSE(c.core(1).needs_ticks());
    const Term term = c.core(1).term();
    CHECK(c.core(1)
              .step(Message{
                  .type = MessageType::heartbeat_response, .from = 2, .to = 1, .term = term + 5})
              .ok());
    c.process(1);
    // Moved to the higher term, and campaigned alone at once.
    CHECK(c.core(1).role() == Role::leader);
    CHECK(c.core(1).term() == term + 6);
    CHECK_FALSE(c.core(1).needs_ticks());
    c.release(1);
    c.propose(1, "still serving");
    CHECK(c.node(1).applied.back().data == "still serving");
}

TEST_CASE("a lone voter hears no stranger, whatever its term") {
    // Before admission checks, each of these from a node that is not a
    // member deposed the lone voter, which moved to the stranger's term.
    Cluster c({1});
    REQUIRE(c.core(1).role() == Role::leader);
    const Term term = c.core(1).term();
    for (MessageType type : {MessageType::vote, MessageType::pre_vote, MessageType::append_response,
                             MessageType::heartbeat_response, MessageType::heartbeat,
                             MessageType::append, MessageType::timeout_now}) {
        keel::Status st =
            c.core(1).step(Message{.type = type, .from = 9, .to = 1, .term = term + 1});
        CHECK(refusal_reason(st) == kRefusedNotAMember);
        c.process(1);
        CHECK(c.core(1).role() == Role::leader);
        CHECK(c.core(1).term() == term);
        CHECK_FALSE(c.core(1).has_actions());
    }
    c.propose(1, "still serving");
    CHECK(c.node(1).applied.back().data == "still serving");
}

TEST_CASE("a lone voter refuses proposals until its self-elected term is durable") {
    // Its vote for itself and its no-op travel in one batch; should that batch
    // be lost in a crash, it could vote again in the same term, and another
    // leader of that term could reuse the (index, term) of an accepted proposal.
    auto c = lone_core(1, {1});
    REQUIRE(c->role() == Role::leader);
    auto r = c->propose("early");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == keel::ErrorCode::busy);
    c->on_persisted(1);  // the core's first write: its no-op, taken by lone_core
    CHECK(c->propose("now").ok());
}
