// tests/raft/snapshot_test.cpp — compaction and InstallSnapshot.
#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

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
    f->on_persisted(11, 3);
    a = f->take_actions();
    REQUIRE(a.committed_entries.size() == 1);
    CHECK(a.committed_entries[0].index == 11);
}

TEST_CASE("on_snapshot_taken: bounds, and the configuration as of the snapshot index") {
    Cluster c({1}, {}, [](Options& o) { o.snapshot_trailing_entries = 0; });
    c.propose(1, "a");
    Index before_change = c.core(1).applied_index();
    c.add(2, test_options(2), RestoredState{});
    REQUIRE(c.core(1)
                .propose_config_change(ConfigChange{ConfigChange::Kind::add_learner, 2, "x"})
                .ok());
    c.deliver_all();
    c.tick_all(3);
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
