// The replica's durability gate (runtime/durability_gate.hpp) between a real
// raft::Core and a WAL the test completes by hand: which write a durable
// sequence number vouches for, which held messages it releases, and the
// term and vote saved before anything leaves.  No thread, no disk.
#include <catch2/catch.hpp>

#include "../raft/harness.hpp"
#include "raft/core.hpp"
#include "raft/str_cat.hpp"
#include "runtime/durability_gate.hpp"

using namespace keel;
using namespace keel::raft;
using keel::runtime::DurabilityGate;

namespace {

Configuration five_voters() {
    Configuration c;
    for (NodeId id = 1; id <= 5; ++id) c.members[id] = MemberInfo{true, ""};
    return c;
}

// Node 3 of five, a follower whose log holds 1/t1 and 2/t2, committed.
std::unique_ptr<Core> follower() {
    RestoredState r = bootstrap(five_voters());
    r.entries.push_back(Entry{2, 2, EntryType::normal, "e2"});
    r.hard_state = HardState{2, kNoNode, 2};
    Options o;
    o.id = 3;
    auto c = std::make_unique<Core>(o, std::move(r));
    (void)c->take_actions();
    return c;
}

// An append to node 3.
Message append(NodeId from, Term term, Index prev_index, Term prev_term, std::vector<Entry> entries,
               Index commit) {
    return test::append_message(from, 3, term, prev_index, prev_term, std::move(entries), commit);
}

Entry entry(Term term, Index index) {
    return Entry{term, index, EntryType::normal, str_cat("e", index, "t", term)};
}

// The replica's side of one batch (actions_executor.cpp, execute): the
// hard state it saves at once (a term or vote change; a commit alone waits
// for the next one), the WAL writes it queues, the messages it holds.
struct Runtime {
    Runtime(Core& c, HardState on_disk) : core(c), saved(on_disk) { writes.start_from(on_disk); }

    Core& core;
    DurabilityGate writes;
    HardState saved;  // the metadata file
    std::vector<Message> sent;

    std::uint64_t carry_out(const Message& in) {
        (void)core.step(in);
        std::uint64_t seq = 0;
        while (core.has_actions()) {
            Actions a = core.take_actions();
            if (a.snapshot) seq = writes.reset();
            if (a.hard_state && writes.needs_save(*a.hard_state)) {
                saved = writes.hard_state();
                (void)writes.saved();
            }
            if (!a.entries.empty()) seq = writes.appended(a.write_id);
            writes.hold_until_durable(a.messages_after_persist);
            for (Message& m : a.messages_after_persist) sent.push_back(m);
        }
        return seq;
    }
    // The WAL completed every write up to `seq`.
    void durable_through(std::uint64_t seq) {
        std::vector<Message> released;
        writes.durable_through(seq, core, released);
        for (Message& m : released) sent.push_back(m);
    }
    // What the replica would save with the next term or vote change.
    Index commit_to_save() {
        Actions a = core.take_actions();
        return a.hard_state ? a.hard_state->commit : saved.commit;
    }
};

}  // namespace

// tests/raft/durability_test.cpp tells the story: leaders of terms 2, 3 and
// 4 overwrite index 3 back and forth (3/t2, 3/t3, 3/t2 again) while node 3's
// first write is still on its way to disk.
TEST_CASE("a WAL write overwritten since vouches for nothing after the truncation") {
    auto core = follower();
    Runtime rt(*core, HardState{2, kNoNode, 2});
    const std::uint64_t w1 = rt.carry_out(append(1, 2, 2, 2, {entry(2, 3)}, 2));
    const std::uint64_t w2 = rt.carry_out(append(5, 3, 2, 2, {entry(3, 3)}, 2));
    const std::uint64_t w3 = rt.carry_out(append(1, 4, 2, 2, {entry(2, 3), entry(4, 4)}, 4));
    REQUIRE(rt.saved.term == 4);
    REQUIRE(rt.sent.empty());  // every acknowledgement waits for its write

    rt.durable_through(w1);
    CHECK(core->persisted_index() == 2);
    CHECK(rt.commit_to_save() <= 2);
    CHECK(rt.sent.size() == 1);  // the acknowledgement of 3/t2 in term 2 only
    rt.durable_through(w2);
    CHECK(core->persisted_index() == 2);
    CHECK(rt.commit_to_save() <= 2);
    rt.durable_through(w3);
    CHECK(core->persisted_index() == 4);
    CHECK(rt.commit_to_save() == 4);
    CHECK(rt.sent.size() == 3);
}

TEST_CASE("a WAL write from before a snapshot install vouches for nothing after the reset") {
    auto core = follower();
    Runtime rt(*core, HardState{2, kNoNode, 2});
    const std::uint64_t w1 = rt.carry_out(append(1, 2, 2, 2, {entry(2, 3), entry(2, 4)}, 2));
    (void)rt.carry_out(append(5, 3, 2, 2, {entry(3, 3)}, 2));
    const std::uint64_t reset =
        rt.carry_out(Message{.type = MessageType::snapshot,
                             .from = 1,
                             .to = 3,
                             .term = 4,
                             .snapshot = SnapshotMeta{3, 2, five_voters()}});
    const std::uint64_t w3 = rt.carry_out(append(1, 4, 3, 2, {entry(2, 4), entry(4, 5)}, 5));
    REQUIRE(reset != 0);

    rt.durable_through(w1);
    CHECK(core->persisted_index() == 3);  // the snapshot, durable when installed
    CHECK(rt.commit_to_save() <= 3);
    rt.durable_through(reset);
    CHECK(core->persisted_index() == 3);
    CHECK(rt.commit_to_save() <= 3);
    rt.durable_through(w3);
    CHECK(core->persisted_index() == 5);
}

TEST_CASE("held messages wait for every write queued before them, and go in order") {
    auto core = follower();
    Runtime rt(*core, HardState{2, kNoNode, 2});
    const std::uint64_t w1 = rt.carry_out(append(1, 2, 2, 2, {entry(2, 3)}, 2));
    const std::uint64_t w2 = rt.carry_out(append(1, 2, 3, 2, {entry(2, 4)}, 2));
    // A duplicate append writes nothing, but its answer still waits for w2.
    CHECK(rt.carry_out(append(1, 2, 2, 2, {entry(2, 3)}, 2)) == 0);
    rt.durable_through(w1);
    REQUIRE(rt.sent.size() == 1);
    CHECK(rt.sent[0].index == 3);
    rt.durable_through(w2);
    REQUIRE(rt.sent.size() == 3);
    CHECK(rt.sent[1].index == 4);
    CHECK(rt.sent[2].index == 3);
    CHECK(rt.writes.all_durable());
    // Nothing in flight: messages are left for the caller to send at once.
    std::vector<Message> now{Message{.type = MessageType::append_response}};
    rt.writes.hold_until_durable(now);
    CHECK(now.size() == 1);
}

TEST_CASE("a term or vote change must be saved at once, a commit alone waits for the next") {
    DurabilityGate gate;
    gate.start_from(HardState{2, kNoNode, 2});
    CHECK_FALSE(gate.needs_save(HardState{2, kNoNode, 3}));
    CHECK(gate.hard_state().commit == 3);  // recorded: saved with the next change
    CHECK(gate.needs_save(HardState{3, kNoNode, 3}));
    CHECK_FALSE(gate.saved());                   // nothing was held back
    CHECK(gate.needs_save(HardState{3, 1, 3}));  // a vote
    CHECK_FALSE(gate.saved());
    CHECK_FALSE(gate.needs_save(HardState{3, 1, 4}));
    CHECK(gate.may_send());
}

TEST_CASE("out of space, no message leaves until the term and vote are saved") {
    DurabilityGate gate;
    gate.start_from(HardState{2, kNoNode, 2});
    REQUIRE(gate.needs_save(HardState{3, kNoNode, 2}));
    gate.save_failed();
    CHECK_FALSE(gate.may_send());
    // Unsaved: even a commit-only change asks for the save again, of the
    // latest hard state.
    CHECK(gate.needs_save(HardState{3, kNoNode, 4}));
    CHECK(gate.hard_state().term == 3);
    CHECK(gate.hard_state().commit == 4);
    CHECK_FALSE(gate.may_send());
    CHECK(gate.saved());  // messages were held back until now
    CHECK(gate.may_send());
    CHECK_FALSE(gate.needs_save(HardState{3, kNoNode, 5}));
}

// A shared WAL's group (decision 0025): the term and vote are a record
// queued like an append, and what the core sends meanwhile waits for it.
TEST_CASE("a vote queued as a WAL write holds every message until it is durable") {
    auto core = follower();
    DurabilityGate gate;
    gate.start_from(HardState{2, kNoNode, 2});
    std::vector<Message> sent;
    // The replica's execute() on a store that queues its hard state.
    auto carry_out = [&](const Message& in) {
        (void)core->step(in);
        while (core->has_actions()) {
            Actions a = core->take_actions();
            if (a.hard_state && gate.needs_save(*a.hard_state)) {
                (void)gate.hard_state_queued();
                (void)gate.saved();
            }
            if (!a.entries.empty()) (void)gate.appended(a.write_id);
            if (gate.hard_state_in_flight()) gate.hold_until_durable(a.messages);
            for (Message& m : a.messages) sent.push_back(m);
            gate.hold_until_durable(a.messages_after_persist);
            for (Message& m : a.messages_after_persist) sent.push_back(m);
        }
    };
    // Node 2 asks for node 3's vote in term 3 (its log is as long).
    carry_out(Message{
        .type = MessageType::vote, .from = 2, .to = 3, .term = 3, .log_index = 2, .log_term = 2});
    REQUIRE(gate.hard_state().term == 3);
    REQUIRE(gate.hard_state().vote == 2);
    CHECK(gate.hard_state_in_flight());
    CHECK(sent.empty());  // the vote rests on the record: held, not dropped
    // Node 4's request in the same term, before the record is durable: the
    // refusal waits too (it says term 3, which is not on disk yet).
    carry_out(Message{
        .type = MessageType::vote, .from = 4, .to = 3, .term = 3, .log_index = 2, .log_term = 2});
    CHECK(sent.empty());
    std::vector<Message> released;
    gate.durable_through(1, *core, released);
    CHECK_FALSE(gate.hard_state_in_flight());
    REQUIRE(released.size() == 2);
    CHECK(released[0].type == MessageType::vote_response);
    CHECK(released[0].to == 2);
    CHECK_FALSE(released[0].reject);
    CHECK(released[1].to == 4);
    CHECK(released[1].reject);
}
