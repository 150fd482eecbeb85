// tests/raft/snapshot_test.cpp — compaction and InstallSnapshot.
#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

namespace {

// A new, empty node joins through leader 1 as a learner; the cluster settles.
void join_as_learner(Cluster& c, NodeId id) {
    c.add(id, test_options(id), RestoredState{});
    REQUIRE(c.core(1)
                .propose_config_change(ConfigChange{ConfigChange::Kind::add_learner, id, "x"})
                .ok());
    c.deliver_all();
    c.tick_all(3);
}

}  // namespace

TEST_CASE("snapshot install on a follower too far behind, then the log") {
    Cluster c({1, 2, 3}, {}, [](Options& o) { o.snapshot_trailing_entries = 2; });
    c.elect(1);
    c.isolate(3);
    for (int i = 0; i < 20; ++i) c.propose(1, str_cat("v", i));
    c.tick_all(1);
    Index applied = c.core(1).applied_index();
    auto meta = c.core(1).on_snapshot_taken(applied);
    REQUIRE(meta.ok());
    CHECK(meta->index == applied);
    CHECK(meta->term == c.core(1).term());
    CHECK(meta->config == c.core(1).configuration());
    CHECK(c.core(1).first_index() == applied - 2 + 1);  // trailing entries kept
    REQUIRE(c.core(3).last_index() < c.core(1).first_index());
    c.heal();
    c.tick_all(3);
    // 3 received the snapshot (metadata; the runtime streamed the data).
    REQUIRE(c.node(3).installed);
    CHECK(c.node(3).installed->index == applied);
    CHECK(c.core(3).snapshot()->index == applied);
    c.propose(1, "after");
    c.tick_all(2);
    CHECK(c.core(3).last_index() == c.core(1).last_index());
    CHECK(c.core(3).commit_index() == c.core(1).commit_index());
    CHECK(c.node(3).applied.back().data == "after");
    CHECK(c.node(3).applied_index == c.core(1).applied_index());
}

TEST_CASE("a snapshot at or below the commit index is not installed") {
    auto f = lone_core(2, {1, 2, 3}, 2, {2, 2, 2}, 3);
    SnapshotMeta meta{2, 2, make_config({1, 2, 3})};
    (void)f->step(
        Message{.type = MessageType::snapshot, .from = 1, .to = 2, .term = 2, .snapshot = meta});
    Actions a = f->take_actions();
    CHECK_FALSE(a.snapshot);
    REQUIRE(a.messages_after_persist.size() == 1);
    CHECK(a.messages_after_persist[0].type == MessageType::append_response);
    CHECK(a.messages_after_persist[0].index == 3);
    CHECK(f->last_index() == 4);
}

TEST_CASE("a snapshot whose last entry is in the log only advances the commit index") {
    auto f = lone_core(2, {1, 2, 3}, 2, {2, 2, 2}, 1);
    SnapshotMeta meta{3, 2, make_config({1, 2, 3})};
    (void)f->step(
        Message{.type = MessageType::snapshot, .from = 1, .to = 2, .term = 2, .snapshot = meta});
    Actions a = f->take_actions();
    CHECK_FALSE(a.snapshot);
    CHECK(f->commit_index() == 3);
    CHECK(f->last_index() == 4);  // entries after it are kept
}

TEST_CASE("installing a snapshot resets the log, commit and configuration") {
    auto f = lone_core(2, {1, 2, 3}, 2, {2, 2}, 1);
    Configuration conf = make_config({1, 2, 3, 4});
    SnapshotMeta meta{10, 3, conf};
    (void)f->step(
        Message{.type = MessageType::snapshot, .from = 1, .to = 2, .term = 3, .snapshot = meta});
    Actions a = f->take_actions();
    REQUIRE(a.snapshot);
    CHECK(*a.snapshot == meta);
    CHECK(f->commit_index() == 10);
    CHECK(f->last_index() == 10);
    CHECK(f->first_index() == 11);
    CHECK(f->term_at(10) == 3);
    CHECK(f->configuration() == conf);
    REQUIRE(a.configuration);
    // The acknowledgement waits for the install to be durable.
    REQUIRE(a.messages_after_persist.size() == 1);
    CHECK(a.messages_after_persist[0].index == 10);
    // The log continues after it.
    (void)f->step(Message{.type = MessageType::append,
                          .from = 1,
                          .to = 2,
                          .term = 3,
                          .log_index = 10,
                          .log_term = 3,
                          .commit = 11,
                          .entries = {Entry{3, 11, EntryType::normal, "x"}}});
    a = f->take_actions();
    CHECK(a.committed_entries.empty());  // not durable yet
    f->on_persisted(a.write_id);
    a = f->take_actions();
    REQUIRE(a.committed_entries.size() == 1);
    CHECK(a.committed_entries[0].index == 11);
}

TEST_CASE("on_snapshot_taken: bounds, and the configuration as of the snapshot index") {
    // The lone leader keeps its log (nothing asks for a snapshot on the learner's behalf).
    Cluster c({1}, {}, [](Options& o) {
        o.snapshot_trailing_entries = 0;
        o.forget_stored_everywhere = false;
    });
    c.propose(1, "a");
    Index before_change = c.core(1).applied_index();
    join_as_learner(c, 2);
    CHECK(c.core(1).on_snapshot_taken(c.core(1).applied_index() + 1).status().code() ==
          keel::ErrorCode::invalid_argument);
    auto meta = c.core(1).on_snapshot_taken(before_change);
    REQUIRE(meta.ok());
    CHECK(meta->config == make_config({1}));  // not yet the later change
    CHECK(c.core(1).first_index() == before_change + 1);
    CHECK(c.core(1).on_snapshot_taken(before_change).status().code() ==
          keel::ErrorCode::invalid_argument);  // not newer
    auto later = c.core(1).on_snapshot_taken(c.core(1).applied_index());
    REQUIRE(later.ok());
    CHECK(later->config.contains(2));
}

TEST_CASE("a core restarts from a snapshot and the entries after it") {
    RestoredState r;
    r.snapshot = SnapshotMeta{5, 2, make_config({1, 2, 3})};
    r.entries = {Entry{2, 6, EntryType::normal, "a"}, Entry{3, 7, EntryType::noop, ""}};
    r.hard_state = HardState{3, 2, 6};
    r.applied = 5;
    Core c(test_options(1), r);
    CHECK(c.first_index() == 6);
    CHECK(c.last_index() == 7);
    CHECK(c.term_at(5) == 2);
    CHECK(c.commit_index() == 6);
    CHECK(c.vote() == 2);
    CHECK(c.configuration() == make_config({1, 2, 3}));
    Actions a = c.take_actions();
    REQUIRE(a.committed_entries.size() == 1);
    CHECK(a.committed_entries[0].index == 6);
}

// ---- a lone leader's in-memory log (Options::forget_stored_everywhere) ----

TEST_CASE("a lone leader keeps only what it has not applied in memory") {
    for (bool forget : {true, false}) {
        INFO("forget_stored_everywhere " << forget);
        Cluster c({1}, {}, [&](Options& o) { o.forget_stored_everywhere = forget; });
        for (int i = 0; i < 10; ++i) c.propose(1, str_cat("v", i));
        const Index last = c.core(1).last_index();
        REQUIRE(c.core(1).applied_index() == last);
        if (forget) {
            CHECK(c.core(1).first_index() == last + 1);
            CHECK(c.core(1).entries(1, last + 1).empty());
            CHECK(c.core(1).term_at(last) == c.core(1).term());  // the compaction point's term
        } else {
            CHECK(c.core(1).first_index() == 1);
            CHECK(c.core(1).entries(1, last + 1).size() == last);
        }
        CHECK_FALSE(c.core(1).snapshot());
        // Still a working leader: reads and writes go on.
        c.propose(1, "more");
        CHECK(c.node(1).applied.back().data == "more");
    }
}

TEST_CASE("a member joining a lone leader that dropped its log gets a snapshot taken for it") {
    Cluster c({1});
    for (int i = 0; i < 5; ++i) c.propose(1, str_cat("v", i));
    const Index dropped_to = c.core(1).first_index() - 1;
    REQUIRE(dropped_to == c.core(1).applied_index());
    join_as_learner(c, 2);
    // The leader asked for a snapshot (the harness takes it at its applied
    // index, as the runtime does) and sent it to the learner.
    REQUIRE(c.core(1).snapshot());
    CHECK(c.core(1).snapshot()->index >= dropped_to);
    REQUIRE(c.node(2).installed);
    CHECK(c.node(2).installed->index == c.core(1).snapshot()->index);
    // With company the leader keeps what the learner has not stored: the
    // learner gets what follows by appends.
    c.isolate(2);
    const Index first = c.core(1).first_index();
    c.propose(1, "after");
    CHECK(c.core(1).first_index() == first);
    c.heal();
    c.tick_all(2);
    CHECK(c.node(2).applied.back().data == "after");
    CHECK_FALSE(c.node(2).installed->index >= c.core(1).last_index());
    CHECK(c.core(2).commit_index() == c.core(1).commit_index());
}

TEST_CASE("a snapshot at an index the lone leader already dropped has that entry's term") {
    // Restarted alone with entries of terms 1 and 2 after a snapshot at 2;
    // it leads in term 3, applies everything and drops it from memory.
    RestoredState r;
    r.snapshot = SnapshotMeta{2, 1, make_config({1})};
    r.entries = {Entry{1, 3, EntryType::normal, "a"}, Entry{2, 4, EntryType::noop, ""},
                 Entry{2, 5, EntryType::normal, "b"}};
    r.hard_state = HardState{2, 1, 5};
    r.applied = 2;
    Core core(test_options(1), r);
    for (int round = 0; round < 10 && core.has_actions(); ++round) {
        Actions a = core.take_actions();
        if (!a.entries.empty()) core.on_persisted(a.write_id);
        if (!a.committed_entries.empty()) core.on_applied(a.committed_entries.back().index);
    }
    REQUIRE(core.role() == Role::leader);
    REQUIRE(core.term() == 3);
    REQUIRE(core.applied_index() == 6);  // 3..5 and the term's no-op
    REQUIRE(core.first_index() == 7);
    CHECK_FALSE(core.term_at(4));  // dropped from memory
    // The runtime's snapshots may lag the core's applied index.
    auto at3 = core.on_snapshot_taken(3);
    REQUIRE(at3.ok());
    CHECK(at3->term == 1);
    CHECK(at3->config == make_config({1}));
    auto at5 = core.on_snapshot_taken(5);
    REQUIRE(at5.ok());
    CHECK(at5->term == 2);
    auto at6 = core.on_snapshot_taken(6);
    REQUIRE(at6.ok());
    CHECK(at6->term == 3);
    CHECK(core.on_snapshot_taken(7).status().code() == keel::ErrorCode::invalid_argument);
}
