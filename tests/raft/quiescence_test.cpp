// tests/raft/quiescence_test.cpp — the rules of quiescence (raft/quiescence.cpp,
// docs/groups.md "Quiescence and liveness"): when an idle group goes quiet,
// what wakes it, and the host's peer_down standing in for heartbeats.
#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

namespace {

void quiesce_on(Options& o) {
    o.quiesce = true;
    o.quiesce_after_ticks = 3;
}

void quiesce_and_lease_reads(Options& o) {
    quiesce_on(o);
    o.lease_reads = true;
}

// Ticks every node until all of them are quiescent; false after `rounds`.
bool tick_until_quiet(Cluster& c, int rounds = 100) {
    for (int i = 0; i < rounds; ++i) {
        bool all = true;
        for (NodeId id : c.ids()) all = all && c.core(id).quiescent();
        if (all) return true;
        c.tick_all();
    }
    return false;
}

// A three-voter group, led by 1, one entry committed, everyone quiescent.
void quiet_group(Cluster& c) {
    c.elect(1);
    REQUIRE(c.core(1).role() == Role::leader);
    c.propose(1, "x");
    REQUIRE(tick_until_quiet(c));
}

// With lease reads, voters refuse votes for an election timeout after they
// start: elect whoever wins first and make the group quiet.  Returns the leader.
NodeId quiet_lease_group(Cluster& c) {
    const NodeId l = c.tick_until_one_leads(c.ids());
    REQUIRE(l != kNoNode);
    c.propose(l, "x");
    REQUIRE(tick_until_quiet(c));
    return l;
}

std::vector<Message> messages_since(const Cluster& c, std::size_t from) {
    return {c.sent_log.begin() + static_cast<long>(from), c.sent_log.end()};
}

Message heartbeat_quiesce(NodeId from, NodeId to, Term term, Index last, Term last_term) {
    return Message{.type = MessageType::heartbeat,
                   .from = from,
                   .to = to,
                   .term = term,
                   .log_index = last,
                   .log_term = last_term,
                   .commit = last,
                   .context = 1,
                   .quiesce = true};
}

}  // namespace

TEST_CASE("an idle group goes quiet: no ticks needed, no message sent, however long it idles") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    quiet_group(c);
    for (NodeId id : c.ids()) {
        CHECK(c.core(id).quiescent());
        CHECK_FALSE(c.core(id).needs_ticks());
        CHECK(c.node(id).soft_states.back().quiescent);
    }
    const Term term = c.core(1).term();
    const std::size_t sent = c.sent_log.size();
    c.tick_all(500);  // ticks a host would not even deliver
    CHECK(c.sent_log.size() == sent);
    CHECK(c.core(1).role() == Role::leader);
    CHECK(c.core(2).term() == term);
    CHECK(c.core(3).term() == term);
}

TEST_CASE("quiescence is off by default: the leader heartbeats on") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.propose(1, "x");
    c.tick_all(50);
    const std::size_t sent = c.sent_log.size();
    c.tick_all(10);
    CHECK(c.sent_log.size() > sent);
    for (NodeId id : c.ids()) CHECK_FALSE(c.core(id).quiescent());
}

TEST_CASE("a leader waits for the idle ticks and for every follower before it quiesces") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    c.elect(1);
    c.cut(1, 3);
    c.propose(1, "x");  // committed by 1 and 2; 3 lacks it
    for (int i = 0; i < 60; ++i) {
        c.tick(1);
        c.tick(2);
        c.deliver_all();
    }
    CHECK(c.core(1).role() == Role::leader);
    CHECK_FALSE(c.core(1).quiescent());
    CHECK_FALSE(c.core(2).quiescent());
    c.heal();
    c.tick_all(2);
    CHECK_FALSE(c.core(1).quiescent());  // caught up, but not yet idle for 3 ticks
    CHECK(tick_until_quiet(c));
    CHECK(c.core(3).commit_index() == c.core(1).last_index());
}

TEST_CASE("a follower that lacks the leader's last entry declines quiescence and answers") {
    auto f = lone_core(2, {1, 2, 3}, 2, {2}, 1, quiesce_on);  // log 1/t1, 2/t2
    Actions a = step_and_take(*f, heartbeat_quiesce(1, 2, 2, 3, 2));
    CHECK_FALSE(f->quiescent());
    CHECK(of_type(a.messages, MessageType::heartbeat_response).size() == 1);
    a = step_and_take(*f, heartbeat_quiesce(1, 2, 2, 2, 1));  // 2/t1: not the entry it holds
    CHECK_FALSE(f->quiescent());
    a = step_and_take(*f, heartbeat_quiesce(1, 2, 2, 2, 2));
    CHECK(f->quiescent());
    CHECK(f->commit_index() == 2);
    CHECK(a.messages.empty());
    REQUIRE(a.soft_state);
    CHECK(a.soft_state->quiescent);
}

TEST_CASE("a follower with quiescence off declines the leader's quiesce heartbeat") {
    auto f = lone_core(2, {1, 2, 3}, 2, {2}, 1);
    Actions a = step_and_take(*f, heartbeat_quiesce(1, 2, 2, 2, 2));
    CHECK_FALSE(f->quiescent());
    CHECK(of_type(a.messages, MessageType::heartbeat_response).size() == 1);
}

TEST_CASE("a quiesce flag on anything but a heartbeat is refused") {
    auto f = lone_core(2, {1, 2, 3}, 2, {2}, 1, quiesce_on);
    Message m = heartbeat_quiesce(1, 2, 2, 2, 2);
    m.type = MessageType::append;
    keel::Status st = f->step(m);
    CHECK(refusal_reason(st) == kRefusedMalformed);
}

TEST_CASE("a proposal wakes a quiescent group, which goes quiet again once idle") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    quiet_group(c);
    auto r = c.core(1).propose(std::string("y"));
    REQUIRE(r.ok());
    CHECK_FALSE(c.core(1).quiescent());
    c.deliver_all();
    CHECK_FALSE(c.core(2).quiescent());  // the append woke them
    CHECK_FALSE(c.core(3).quiescent());
    CHECK(tick_until_quiet(c));
    CHECK(c.core(2).commit_index() == r->index);
}

TEST_CASE("a membership change and a transfer wake a quiescent leader") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    quiet_group(c);
    REQUIRE(c.core(1).transfer_leadership(2).ok());
    CHECK_FALSE(c.core(1).quiescent());
    c.deliver_all();
    CHECK(c.core(2).role() == Role::leader);
    REQUIRE(tick_until_quiet(c));
    REQUIRE(c.core(2)
                .propose_config_change(ConfigChange{.kind = ConfigChange::Kind::remove, .node = 3})
                .ok());
    CHECK_FALSE(c.core(2).quiescent());
}

TEST_CASE("a read wakes the leader and takes a heartbeat round: the lease died with the ticks") {
    Cluster c({1, 2, 3}, {}, quiesce_and_lease_reads);
    const NodeId l = c.tick_until_one_leads(c.ids());
    REQUIRE(l != kNoNode);
    c.propose(l, "x");
    c.tick_all(1);
    // Awake, with fresh acknowledgements, the lease answers at once.
    REQUIRE(c.core(l).read_index(1).ok());
    c.process(l);
    CHECK(c.node(l).read_states.size() == 1);
    REQUIRE(tick_until_quiet(c));
    REQUIRE(c.core(l).read_index(2).ok());
    CHECK_FALSE(c.core(l).quiescent());
    c.process(l);
    CHECK(c.node(l).read_states.size() == 1);  // not from the lease
    c.deliver_all();
    REQUIRE(c.node(l).read_states.size() == 2);
    CHECK(c.node(l).read_states.back().request_id == 2);
}

TEST_CASE("peer_down of its leader: quiescent followers wake and elect a new leader") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    quiet_group(c);
    const Term term = c.core(1).term();
    c.isolate(1);  // its process is gone
    c.tick_all(100);
    CHECK(c.core(2).role() == Role::follower);  // quiescent: nobody campaigns on its own
    CHECK(c.core(2).term() == term);
    c.core(2).peer_down(1);
    c.core(3).peer_down(1);
    c.process(2);
    c.process(3);
    CHECK_FALSE(c.core(2).quiescent());
    CHECK_FALSE(c.core(3).quiescent());
    const NodeId next = c.tick_until_one_leads({2, 3});
    CHECK((next == 2 || next == 3));
    CHECK(c.core(next).term() > term);
}

// Decision 0039: both followers hear the verdict at the same time and
// campaign at once.  Each pre-candidate used to grant the other's pre-vote:
// both became candidates of the next term and split its vote, in every seed.
TEST_CASE("followers told their leader is down at the same time elect in the next term") {
    constexpr int kSeeds = 100;
    int first_term_wins = 0;
    for (int seed = 1; seed <= kSeeds; ++seed) {
        Cluster c({1, 2, 3}, {}, [seed](Options& o) {
            quiesce_on(o);
            o.election_ticks_min = 3;  // raftd's defaults: 150-300 ms of 50 ms ticks
            o.election_ticks_max = 6;
            o.random_seed = o.id * 7919 + static_cast<std::uint64_t>(seed);
        });
        quiet_group(c);
        const Term term = c.core(1).term();
        c.isolate(1);
        c.core(2).peer_down(1);
        c.core(3).peer_down(1);
        c.deliver_all();
        const NodeId next = c.tick_until_one_leads({2, 3});
        REQUIRE(next != kNoNode);
        if (c.core(next).term() == term + 1) ++first_term_wins;
    }
    CHECK(first_term_wins == kSeeds);
}

// Decision 0039: the same when the two reach their pre-campaigns through
// their timers; the tie goes either way, as the ids and the term make it.
TEST_CASE("two pre-candidates whose pre-votes cross elect one leader in the next term") {
    int lower_id_won = 0;
    constexpr int kPairs = 20;
    for (int k = 0; k < kPairs; ++k) {
        // Other ids, so that the tie goes either way.
        const NodeId a = 2 + static_cast<NodeId>(k), b = 30 + 7 * static_cast<NodeId>(k);
        Cluster c({1, a, b}, {}, quiesce_on);
        quiet_group(c);
        const Term term = c.core(1).term();
        c.isolate(1);
        c.core(a).peer_down(1);
        c.core(b).peer_down(1);
        c.process(a);
        c.process(b);
        // Both pre-campaign before either hears the other.
        for (int i = 0; i < 100; ++i) {
            if (c.core(a).role() == Role::pre_candidate && c.core(b).role() == Role::pre_candidate)
                break;
            for (NodeId id : {a, b})
                if (c.core(id).role() != Role::pre_candidate) c.tick(id);
        }
        REQUIRE(c.core(a).role() == Role::pre_candidate);
        REQUIRE(c.core(b).role() == Role::pre_candidate);
        c.deliver_all();
        const NodeId l = c.core(a).role() == Role::leader ? a : b;
        CAPTURE(a, b);
        CHECK(c.core(l).role() == Role::leader);
        CHECK(c.core(l).term() == term + 1);
        if (l == a) ++lower_id_won;
    }
    CHECK(lower_id_won > 0);  // the tie goes either way
    CHECK(lower_id_won < kPairs);
}

TEST_CASE("with lease reads, a follower woken by peer_down campaigns only after its promise") {
    Cluster c({1, 2, 3}, {}, quiesce_and_lease_reads);
    const NodeId l = quiet_lease_group(c);
    std::vector<NodeId> others;
    for (NodeId id : c.ids())
        if (id != l) others.push_back(id);
    c.isolate(l);
    c.core(others[0]).peer_down(l);
    c.process(others[0]);
    CHECK_FALSE(c.core(others[0]).quiescent());
    // Not at once: it heard the leader 0 ticks ago (its clock stood still since).
    CHECK(c.core(others[0]).role() == Role::follower);
    CHECK(c.network.empty());
    c.core(others[1]).peer_down(l);
    c.process(others[1]);
    CHECK(c.tick_until_one_leads(others) != kNoNode);
}

TEST_CASE("peer_down of another node, or on an awake follower, changes nothing") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    quiet_group(c);
    c.core(2).peer_down(3);
    c.core(2).peer_down(2);
    c.core(2).peer_down(kNoNode);
    CHECK(c.core(2).quiescent());
    CHECK(c.core(2).role() == Role::follower);
}

TEST_CASE("peer_down of a member wakes the leader, whose CheckQuorum then steps it down") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    quiet_group(c);
    c.isolate(1);
    c.core(1).peer_down(2);
    c.core(1).peer_down(3);
    CHECK_FALSE(c.core(1).quiescent());
    for (int i = 0; i < 3 * 10 && c.core(1).role() == Role::leader; ++i) {
        c.tick(1);
        c.deliver_all();
    }
    CHECK(c.core(1).role() == Role::follower);
}

TEST_CASE("a leader told a member is down stays awake until that member answers again") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    quiet_group(c);
    c.propose(1, "y");  // awake, and every follower answered since
    REQUIRE_FALSE(c.core(1).quiescent());
    c.core(1).peer_down(3);
    c.cut(1, 3);
    for (int i = 0; i < 60; ++i) {
        c.tick(1);
        c.tick(2);
        c.deliver_all();
        CHECK_FALSE(c.core(1).quiescent());
    }
    CHECK(c.core(1).role() == Role::leader);  // 1 and 2 are a quorum
    c.heal();
    CHECK(tick_until_quiet(c));
}

TEST_CASE("a member reported unreachable while down is probed back to replicate, then quiet") {
    // A restarted member of an idle group: the transport reported it
    // unreachable (probe) while it held the whole log, and nothing is
    // written after it is back.
    Cluster c({1, 2, 3}, {}, quiesce_on);
    quiet_group(c);
    c.core(1).peer_down(3);
    c.cut(1, 3);
    c.core(1).report_unreachable(3);
    for (int i = 0; i < 20; ++i) {
        c.tick(1);
        c.tick(2);
        c.deliver_all();
    }
    REQUIRE(c.core(1).match_index(3) == c.core(1).last_index());
    c.heal();
    CHECK(tick_until_quiet(c));
    CHECK(c.core(1).role() == Role::leader);
}

TEST_CASE("a quiescent leader that hears from a member wakes and heartbeats it back to quiet") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    quiet_group(c);
    const Term term = c.core(1).term();
    // Node 3 lost the quiesce heartbeat (or restarted): its pre-vote reaches the leader.
    (void)c.core(1).step(Message{.type = MessageType::pre_vote,
                                 .from = 3,
                                 .to = 1,
                                 .term = term + 1,
                                 .log_index = c.core(3).last_index(),
                                 .log_term = term});
    CHECK_FALSE(c.core(1).quiescent());
    CHECK(c.core(1).role() == Role::leader);  // stickiness: the pre-vote itself is ignored
    const std::size_t sent = c.sent_log.size();
    c.tick(1);
    CHECK(of_type(messages_since(c, sent), MessageType::heartbeat).size() == 2);
    CHECK(tick_until_quiet(c));
    CHECK(c.core(1).term() == term);
}

TEST_CASE("a message of a later term wakes a quiescent follower") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    quiet_group(c);
    const Term term = c.core(2).term();
    Message vote{.type = MessageType::vote,
                 .from = 3,
                 .to = 2,
                 .term = term + 1,
                 .log_index = c.core(3).last_index(),
                 .log_term = term,
                 .transfer = true};
    (void)c.core(2).step(vote);
    CHECK(c.core(2).term() == term + 1);
    CHECK_FALSE(c.core(2).quiescent());
    CHECK(c.core(2).needs_ticks());
}

TEST_CASE("a single voter keeps its zero-timer mode and never quiesces") {
    Cluster c({1}, {}, quiesce_on);
    REQUIRE(c.core(1).role() == Role::leader);
    c.propose(1, "x");
    CHECK_FALSE(c.core(1).needs_ticks());
    CHECK_FALSE(c.core(1).quiescent());
}

TEST_CASE("a lone voter with a learner quiesces like any leader") {
    Cluster c({1}, {2}, quiesce_on);
    c.propose(1, "x");
    CHECK(tick_until_quiet(c));
    CHECK(c.core(2).commit_index() == c.core(1).last_index());
}

TEST_CASE("late answers to what a leader sent before it quiesced do not wake it") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    c.elect(1);
    c.propose(1, "x");
    // A ReadIndex round: heartbeats that want an answer (an idle group's
    // other heartbeats want none: replication.cpp, heartbeat_answer_needed).
    REQUIRE(c.core(1).read_index(1).ok());
    c.deliver_all();
    REQUIRE(c.node(1).read_states.size() == 1);
    REQUIRE(tick_until_quiet(c));
    const Term term = c.core(1).term();
    const Index last = c.core(1).last_index();
    (void)c.core(1).step(Message{.type = MessageType::heartbeat_response,
                                 .from = 2,
                                 .to = 1,
                                 .term = term,
                                 .context = 1});  // the round's heartbeat's, again
    (void)c.core(1).step(append_ok(3, 1, term, last));
    CHECK(c.core(1).quiescent());
    // A follower that declined the quiesce heartbeat answers it: that wakes it.
    const Message quiesce = c.sent_log.back();
    REQUIRE(quiesce.quiesce);
    (void)c.core(1).step(Message{.type = MessageType::heartbeat_response,
                                 .from = quiesce.to,
                                 .to = 1,
                                 .term = term,
                                 .context = quiesce.context});
    CHECK_FALSE(c.core(1).quiescent());
}

TEST_CASE("late copies of an append or a heartbeat do not wake a quiescent follower") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    c.elect(1);
    c.propose(1, "x");
    // Heartbeats too: at the second tick (at the first, 2 had an append
    // since the last: replication.cpp, heartbeat_needed).
    c.tick_all(2);
    // Copies of what 1 sent 2 while awake, held back by the network.
    std::vector<Message> late;
    for (const Message& m : c.sent_log)
        if (m.to == 2 && m.from == 1 && m.term == c.core(1).term() &&
            (m.type == MessageType::append || m.type == MessageType::heartbeat))
            late.push_back(m);
    REQUIRE(tick_until_quiet(c));
    const std::size_t sent = c.sent_log.size();
    for (const Message& m : late) {
        (void)c.core(2).step(m);
        c.process(2);
        INFO(to_string(m));
        CHECK(c.core(2).quiescent());
    }
    CHECK(of_type(late, MessageType::heartbeat).size() >= 1);
    CHECK(of_type(messages_since(c, sent), MessageType::heartbeat_response).empty());
}

TEST_CASE("a quiescent follower asked for its vote by its own leader wakes") {
    Cluster c({1, 2, 3}, {}, quiesce_on);
    quiet_group(c);
    const Term term = c.core(2).term();
    // 1 restarted and campaigns; 2 is in its lease (stickiness) but must run its timer again.
    (void)c.core(2).step(Message{.type = MessageType::pre_vote,
                                 .from = 1,
                                 .to = 2,
                                 .term = term + 1,
                                 .log_index = c.core(1).last_index(),
                                 .log_term = term});
    CHECK_FALSE(c.core(2).quiescent());
    CHECK(c.core(2).needs_ticks());
}

TEST_CASE("a learner that missed the quiesce heartbeat asks its quiet leader for one") {
    Cluster c({1, 2, 3}, {4}, quiesce_on);
    c.elect(1);
    c.propose(1, "x");
    c.drop_types.insert(MessageType::heartbeat);  // the quiesce heartbeats are lost
    for (int i = 0; i < 100 && !c.core(1).quiescent(); ++i) {
        c.tick(1);
        c.deliver_all();
    }
    REQUIRE(c.core(1).quiescent());
    c.drop_types.clear();
    CHECK_FALSE(c.core(4).quiescent());
    // Voters would pre-vote; the learner pokes within an election timeout.
    for (int i = 0; i < 25 && c.core(1).quiescent(); ++i) {
        c.tick(4);
        c.deliver_all();
    }
    CHECK_FALSE(c.core(1).quiescent());
    CHECK(tick_until_quiet(c));
}
