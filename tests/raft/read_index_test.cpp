// tests/raft/read_index_test.cpp — linearizable reads via ReadIndex.
#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

TEST_CASE("ReadIndex waits until the leader has committed an entry of its current term") {
    auto c = lone_core(1, {1, 2, 3}, 1);
    const WriteId noop_write = win_election(*c).write_id;
    Index noop = c->last_index();
    c->on_persisted(noop_write);
    REQUIRE(c->read_index(7).ok());
    // Heartbeat acknowledgements alone do not release it: the no-op is not committed.
    c->tick();
    Actions a = c->take_actions();
    for (const Message& m : of_type(a.messages, MessageType::heartbeat)) {
        (void)c->step(Message{.type = MessageType::heartbeat_response,
                              .from = m.to,
                              .to = 1,
                              .term = c->term(),
                              .context = m.context});
    }
    CHECK(c->take_actions().read_states.empty());
    // The no-op commits; a heartbeat round for the read starts.
    (void)c->step(Message{.type = MessageType::append_response,
                          .from = 2,
                          .to = 1,
                          .term = c->term(),
                          .index = noop});
    REQUIRE(c->commit_index() == noop);
    a = c->take_actions();
    CHECK(a.read_states.empty());
    auto hb = of_type(a.messages, MessageType::heartbeat);
    REQUIRE(hb.size() == 2);
    REQUIRE(hb[0].context != 0);
    // One follower's acknowledgement makes a quorum with the leader.
    (void)c->step(Message{.type = MessageType::heartbeat_response,
                          .from = 3,
                          .to = 1,
                          .term = c->term(),
                          .context = hb[0].context});
    a = c->take_actions();
    REQUIRE(a.read_states.size() == 1);
    CHECK(a.read_states[0].request_id == 7);
    CHECK(a.read_states[0].index == noop);
}

TEST_CASE("ReadIndex answers after a quorum confirms leadership, with the commit index") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.propose(1, "w");
    REQUIRE(c.core(1).read_index(42).ok());
    c.deliver_all();
    auto& reads = c.node(1).read_states;
    REQUIRE(reads.size() == 1);
    CHECK(reads[0].request_id == 42);
    CHECK(reads[0].index == c.core(1).commit_index());
}

TEST_CASE("ReadIndex is not answered without a quorum, and fails when leadership is lost") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.isolate(1);
    REQUIRE(c.core(1).read_index(5).ok());
    c.deliver_all();
    CHECK(c.node(1).read_states.empty());
    for (int i = 0; i < 30 && c.core(1).role() == Role::leader; ++i) c.tick(1);
    REQUIRE(c.core(1).role() == Role::follower);  // CheckQuorum
    REQUIRE(c.node(1).read_failures.size() == 1);
    CHECK(c.node(1).read_failures[0].request_id == 5);
    CHECK(c.node(1).read_states.empty());
}

TEST_CASE("ReadIndex on a non-leader fails fast") {
    Cluster c({1, 2, 3});
    c.elect(1);
    keel::Status st = c.core(2).read_index(1);
    CHECK(st.code() == keel::ErrorCode::not_leader);
    CHECK(st.message() == "not leader (leader is 1)");
}

TEST_CASE("ReadIndex on a single voter is answered at once, without ticks") {
    Cluster c({1});
    REQUIRE(c.core(1).read_index(3).ok());
    c.process(1);
    REQUIRE(c.node(1).read_states.size() == 1);
    CHECK(c.node(1).read_states[0].index == c.core(1).commit_index());
}

TEST_CASE("ReadIndex on a single voter waits for its term's first commit") {
    auto c = lone_core(1, {1});
    REQUIRE(c->role() == Role::leader);
    Index noop = c->last_index();
    REQUIRE(c->read_index(3).ok());
    CHECK(c->take_actions().read_states.empty());
    c->on_persisted(1);  // the core's first write: its no-op, taken by lone_core
    Actions a = c->take_actions();
    REQUIRE(a.read_states.size() == 1);
    CHECK(a.read_states[0].index == noop);
}

namespace {

// A leader of {1, 2, 3} with lease reads whose no-op is committed; nothing
// of its heartbeats acknowledged yet.
std::unique_ptr<Core> lease_leader() {
    auto c = lone_core(1, {1, 2, 3}, 1, {}, 1, [](Options& o) { o.lease_reads = true; });
    const WriteId noop_write = win_election(*c).write_id;
    const Index noop = c->last_index();
    c->on_persisted(noop_write);
    (void)c->step(append_ok(2, 1, c->term(), noop));
    REQUIRE(c->commit_index() == noop);
    (void)c->take_actions();
    return c;
}

// Ticks once; returns the context of the heartbeat to `to` it broadcast.
std::uint64_t tick_heartbeat(Core& c, NodeId to) {
    c.tick();
    for (const Message& m : of_type(c.take_actions().messages, MessageType::heartbeat))
        if (m.to == to) return m.context;
    FAIL("no heartbeat to " << to);
    return 0;
}

void ack_heartbeat(Core& c, NodeId from, std::uint64_t context) {
    (void)c.step(Message{.type = MessageType::heartbeat_response,
                         .from = from,
                         .to = c.id(),
                         .term = c.term(),
                         .context = context});
}

// True if read_index() is answered in the same batch (from the lease).
bool served_from_lease(Core& c, std::uint64_t id) {
    REQUIRE(c.read_index(id).ok());
    for (const ReadState& r : c.take_actions().read_states)
        if (r.request_id == id) return true;
    return false;
}

}  // namespace

TEST_CASE("ReadIndex: lease reads (explicit option) skip the heartbeat round") {
    auto c = lease_leader();
    // Nothing acknowledged yet: a heartbeat round.
    CHECK_FALSE(served_from_lease(*c, 1));
    ack_heartbeat(*c, 3, tick_heartbeat(*c, 3));
    CHECK(c->take_actions().read_states.size() == 1);  // read 1, by the round
    CHECK(served_from_lease(*c, 2));
}

TEST_CASE("ReadIndex: the lease runs from the sending of the acknowledged heartbeat") {
    // election_ticks_min is 10: a heartbeat sent at tick s that a quorum
    // acknowledged holds the lease up to tick s + 8 (one tick of margin for
    // the unknown phase of the follower's ticks).
    auto c = lease_leader();
    const std::uint64_t hb = tick_heartbeat(*c, 2);  // sent at this tick, s
    for (int i = 0; i < 5; ++i) (void)c->tick();     // s + 5
    (void)c->take_actions();
    ack_heartbeat(*c, 2, hb);  // a late acknowledgement still dates from s
    (void)c->take_actions();
    for (int i = 0; i < 3; ++i) (void)c->tick();  // s + 8
    (void)c->take_actions();
    CHECK(served_from_lease(*c, 1));
    (void)c->tick();  // s + 9
    (void)c->take_actions();
    CHECK_FALSE(served_from_lease(*c, 2));
    REQUIRE(c->role() == Role::leader);  // CheckQuorum has not demoted it
}

TEST_CASE("ReadIndex: an acknowledgement of a later heartbeat confirms earlier rounds") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.isolate(1);
    REQUIRE(c.core(1).read_index(5).ok());
    c.deliver_all();  // its heartbeats are lost
    REQUIRE(c.node(1).read_states.empty());
    c.heal();
    c.tick(1);  // the next heartbeat gets through
    c.deliver_all();
    REQUIRE(c.node(1).read_states.size() == 1);
    CHECK(c.node(1).read_states[0].request_id == 5);
}

TEST_CASE(
    "ReadIndex: no lease reads once the leader sent timeout_now (forced elections ignore leases)") {
    Cluster c({1, 2, 3}, {}, [](Options& o) { o.lease_reads = true; });
    // With lease reads, voters give no vote for an election timeout after
    // start-up: tick all of them.
    const NodeId l = c.tick_until_one_leads({1, 2, 3});
    REQUIRE(l != 0);
    const NodeId target = l == 1 ? 2 : 1;
    c.tick_all(1);  // a heartbeat round: the lease holds
    REQUIRE(c.core(l).read_index(8).ok());
    c.process(l);
    REQUIRE(c.node(l).read_states.size() == 1);
    REQUIRE(c.core(l).transfer_leadership(target).ok());
    c.process(l);  // the target is caught up: timeout_now goes out now
    c.isolate(l);  // and the transfer never completes from l's point of view
    REQUIRE(c.core(l).role() == Role::leader);
    REQUIRE(c.core(l).read_index(9).ok());
    c.process(l);
    CHECK(c.node(l).read_states.size() == 1);  // 9 waits for a heartbeat quorum instead
}

TEST_CASE("ReadIndex: busy past max_pending_reads") {
    Cluster c({1, 2, 3}, {}, [](Options& o) { o.max_pending_reads = 2; });
    c.elect(1);
    c.isolate(1);
    CHECK(c.core(1).read_index(1).ok());
    CHECK(c.core(1).read_index(2).ok());
    CHECK(c.core(1).read_index(3).code() == keel::ErrorCode::busy);
}
