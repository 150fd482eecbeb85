// tests/raft/durability_test.cpp — durability reports that cannot be
// confused (docs/decisions/0001-durability-report-ids.md).
//
// A follower whose log is overwritten back and forth by leaders of
// successive terms can hold the same (index, term) twice, written by two
// different writes with a truncation between them.  The report of the first
// write must not vouch for the second, and the commit index the core hands
// the runtime to save must never cover an entry that is not durable *after*
// the latest truncation.
#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

namespace {

Entry entry(Term term, Index index) {
    return Entry{term, index, EntryType::normal, str_cat("e", index, "t", term)};
}

// An append to node 3.
Message append(NodeId from, Term term, Index prev_index, Term prev_term, std::vector<Entry> entries,
               Index commit) {
    return test::append_message(from, 3, term, prev_index, prev_term, std::move(entries), commit);
}

// The runtime keeps the id of each write it was handed.
WriteId write_of(const Actions& a) {
    REQUIRE_FALSE(a.entries.empty());
    return a.write_id;
}

// The runtime reports a write durable.
void report(Core& c, WriteId w) {
    c.on_persisted(w);
}

// Whatever the core asks to save as the commit index, and hands out to
// apply, must be durable on disk as it stands after the writes reported.
void check_nothing_beyond(Core& c, Index durable) {
    CHECK(c.persisted_index() <= durable);
    Actions a = c.take_actions();
    if (a.hard_state) CHECK(a.hard_state->commit <= durable);
    if (!a.committed_entries.empty()) CHECK(a.committed_entries.back().index <= durable);
}

}  // namespace

// Node 3 of five, a follower.  Its log: 1/t1 (bootstrap), 2/t2, committed.
//   W1: the leader of term 2 (node 1) sends 3/t2; node 3 writes it.
//   W2: the leader of term 3 (node 5, elected without 3/t2) overwrites
//       index 3 with its no-op 3/t3: node 3 truncates and writes it.
//   W3: node 1, elected again in term 4, sends 3/t2 again and its no-op
//       4/t4, with commit 4: node 3 truncates and writes them.
// Only W1 is durable so far: on disk the log ends 3/t2, and W2 will replace
// it with 3/t3 before W3 brings 3/t2 back.  W1's report names 3/t2 — which
// the log holds again — but vouches for nothing W3 wrote.  Had the core
// believed it, it would save commit 3 while the disk, once W2 lands, holds
// 3/t3 at index 3: a restart would apply an entry that was never committed.
TEST_CASE(
    "durability: the report of a write overwritten since vouches for nothing after the "
    "truncation") {
    auto c = lone_core(3, {1, 2, 3, 4, 5}, 2, {2}, 2);
    Actions a = step_and_take(*c, append(1, 2, 2, 2, {entry(2, 3)}, 2));
    const WriteId w1 = write_of(a);
    a = step_and_take(*c, append(5, 3, 2, 2, {entry(3, 3)}, 2));
    const WriteId w2 = write_of(a);
    a = step_and_take(*c, append(1, 4, 2, 2, {entry(2, 3), entry(4, 4)}, 4));
    const WriteId w3 = write_of(a);
    REQUIRE(c->commit_index() == 4);
    REQUIRE(c->term_at(3) == 2);

    report(*c, w1);
    check_nothing_beyond(*c, 2);
    report(*c, w2);  // its 3/t3 is gone from the log too
    check_nothing_beyond(*c, 2);
    report(*c, w3);
    CHECK(c->persisted_index() == 4);
    a = c->take_actions();
    REQUIRE(a.hard_state);
    CHECK(a.hard_state->commit == 4);
    REQUIRE(a.committed_entries.size() == 2);
    CHECK(a.committed_entries.back().index == 4);
}

// The same through a snapshot install (a reset of the whole log): a write
// from before the install must not vouch for entries written after it,
// even where they have the same index and term.
//   W1: node 1 (term 2) sends 3/t2 4/t2.
//   W2: node 5 (term 3) overwrites index 3 with 3/t3.
//   Node 1 (term 4) sends its snapshot at 3/t2: installed (the log no
//   longer matches it), the stored log is reset.
//   W3: node 1 sends 4/t2 5/t4 after the snapshot, with commit 5.
// W1's report names 4/t2, which the log holds again.
TEST_CASE("durability: a write from before a snapshot install vouches for nothing after it") {
    auto c = lone_core(3, {1, 2, 3, 4, 5}, 2, {2}, 2);
    Actions a = step_and_take(*c, append(1, 2, 2, 2, {entry(2, 3), entry(2, 4)}, 2));
    const WriteId w1 = write_of(a);
    a = step_and_take(*c, append(5, 3, 2, 2, {entry(3, 3)}, 2));
    const WriteId w2 = write_of(a);
    const SnapshotMeta meta{3, 2, make_config({1, 2, 3, 4, 5})};
    a = step_and_take(
        *c,
        Message{.type = MessageType::snapshot, .from = 1, .to = 3, .term = 4, .snapshot = meta});
    REQUIRE(a.snapshot);
    a = step_and_take(*c, append(1, 4, 3, 2, {entry(2, 4), entry(4, 5)}, 5));
    const WriteId w3 = write_of(a);
    REQUIRE(c->term_at(4) == 2);

    report(*c, w1);
    check_nothing_beyond(*c, 3);  // the snapshot, durable when installed
    report(*c, w2);
    check_nothing_beyond(*c, 3);
    report(*c, w3);
    CHECK(c->persisted_index() == 5);
}
