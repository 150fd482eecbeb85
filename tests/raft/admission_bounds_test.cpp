// tests/raft/admission_bounds_test.cpp — what step() refuses for its fields
// (raft/admission.cpp): terms and indexes out of range, malformed messages;
// and validate_restored(), the same for the state read back from disk.
// Every refused message must leave the core exactly as it was.
#include <catch2/catch.hpp>

#include "admission_support.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

// ---- terms ----------------------------------------------------------------------

TEST_CASE("a heartbeat at 2^64-2 from a stranger leaves the lone voter's term alone") {
    // It used to be accepted: the node saved term 2^64-1 and every restart
    // then aborted on term + 1.
    Cluster c({1});
    const Term term = c.core(1).term();
    const HardState saved = c.node(1).hard_state;
    require_refused(c.core(1), heartbeat(9, 1, kU64Max - 1), kRefusedTermOutOfRange);
    c.process(1);
    CHECK(c.core(1).term() == term);
    CHECK(c.node(1).hard_state == saved);
    c.propose(1, "still serving");
    CHECK(c.node(1).applied.back().data == "still serving");
}

TEST_CASE("a term past 2^63 - 1 is refused even from a member; 2^63 - 1 is not") {
    auto c = lone_core(2, {1, 2, 3}, 2, {2}, 1, [](Options& o) { o.pre_vote = false; });
    for (Term bad : {kMaxTerm + 1, kU64Max - 1, kU64Max}) {
        require_refused(*c, heartbeat(1, 2, bad), kRefusedTermOutOfRange);
        Message vote{.type = MessageType::vote, .from = 3, .to = 2, .term = bad};
        require_refused(*c, vote, kRefusedTermOutOfRange);
    }
    // At the bound: accepted, and the node can still campaign (term + 1).
    CHECK(c->step(heartbeat(1, 2, kMaxTerm)).ok());
    CHECK(c->term() == kMaxTerm);
    for (int i = 0; i < 100 && c->role() == Role::follower; ++i) c->tick();
    CHECK(c->role() == Role::candidate);
    // What it persists then reopens (found by the core_step fuzzer: a term
    // past kMaxTerm, reached by its own campaign, failed validate_restored).
    REQUIRE(c->term() > kMaxTerm);
    RestoredState reopened = bootstrap(make_config({1, 2, 3}));
    reopened.entries = c->entries(1, c->last_index() + 1);
    reopened.hard_state = HardState{c->term(), c->vote(), c->commit_index()};
    CHECK(validate_restored(reopened).ok());
}

TEST_CASE(
    "a node that took a snapshot at 2^63 - 1 appends past it, and what it persisted reopens") {
    // Found by the core_step fuzzer: the leader's no-op went to 2^63, which
    // validate_restored refused, so the node could not have restarted.
    auto c = lone_core(2, {1, 2, 3}, 2, {}, 1, [](Options& o) { o.pre_vote = false; });
    const SnapshotMeta meta{kMaxIndex, 2, make_config({1, 2, 3})};
    REQUIRE(
        c->step(Message{
                    .type = MessageType::snapshot, .from = 1, .to = 2, .term = 2, .snapshot = meta})
            .ok());
    (void)c->take_actions();
    (void)win_election(*c);
    REQUIRE(c->last_index() == kMaxIndex + 1);
    RestoredState reopened;
    reopened.snapshot = meta;
    reopened.applied = meta.index;
    reopened.entries = c->entries(kMaxIndex + 1, kMaxIndex + 2);
    reopened.hard_state = HardState{c->term(), c->vote(), kMaxIndex};
    CHECK(validate_restored(reopened).ok());
}

TEST_CASE("a joiner fed entries without a configuration snapshots them, and that reopens") {
    // Found by the core_step fuzzer: an empty joiner hears a leader it does
    // not know; sent entries from index 1 that hold no configuration (no
    // correct leader's log starts so, a stranger's may), its snapshot has
    // the empty configuration, which validate_restored refused.
    Core joiner(test_options(4), RestoredState{});
    (void)joiner.take_actions();
    REQUIRE(joiner
                .step(Message{.type = MessageType::append,
                              .from = 9,
                              .to = 4,
                              .term = 2,
                              .commit = 2,
                              .entries = {Entry{2, 1, EntryType::normal, "a"},
                                          Entry{2, 2, EntryType::normal, "b"}}})
                .ok());
    Actions a = joiner.take_actions();
    joiner.on_persisted(a.write_id);
    a = joiner.take_actions();
    REQUIRE(a.committed_entries.size() == 2);
    joiner.on_applied(2);
    auto meta = joiner.on_snapshot_taken(2);
    REQUIRE(meta.ok());
    CHECK(meta->config.members.empty());
    RestoredState reopened;
    reopened.hard_state = HardState{2, kNoNode, 2};
    reopened.snapshot = *meta;
    reopened.applied = 2;
    CHECK(validate_restored(reopened).ok());
}

TEST_CASE("no stranger brings a term past 2^62 - 1, even to a node that hears strangers") {
    // A joiner hears a leader it does not know yet; were a stranger able to
    // take every node to kMaxTerm, their next election would be refused.
    Core joiner(test_options(4), RestoredState{});
    (void)joiner.take_actions();
    constexpr Term k2To62 = Term{1} << 62;
    require_refused(joiner, heartbeat(9, 4, k2To62), kRefusedTermOutOfRange);
    require_refused(joiner, heartbeat(9, 4, kMaxTerm), kRefusedTermOutOfRange);
    CHECK(joiner.step(heartbeat(9, 4, k2To62 - 1)).ok());
    CHECK(joiner.term() == k2To62 - 1);
}

TEST_CASE("timeout_now at 2^64-1 is refused (it used to abort the process)") {
    auto c = follower_of_1();
    require_refused(*c,
                    Message{.type = MessageType::timeout_now, .from = 1, .to = 2, .term = kU64Max},
                    kRefusedTermOutOfRange);
    // The lone voter too: it would have moved to 2^64-1 and campaigned.
    Cluster one({1});
    require_refused(one.core(1),
                    Message{.type = MessageType::timeout_now, .from = 9, .to = 1, .term = kU64Max},
                    kRefusedTermOutOfRange);
}

TEST_CASE("every term field is bounded: log_term, hint_term, entry terms, snapshot terms") {
    auto c = follower_of_1();
    Message append{.type = MessageType::append,
                   .from = 1,
                   .to = 2,
                   .term = 2,
                   .log_index = 2,
                   .log_term = kMaxTerm + 1};
    require_refused(*c, append, kRefusedTermOutOfRange);
    Message hinted{.type = MessageType::append_response,
                   .from = 1,
                   .to = 2,
                   .term = 2,
                   .reject = true,
                   .hint_term = kU64Max};
    require_refused(*c, hinted, kRefusedTermOutOfRange);
    // A snapshot whose last entry is of a term newer than its message's.
    Message snap{.type = MessageType::snapshot,
                 .from = 1,
                 .to = 2,
                 .term = 2,
                 .snapshot = SnapshotMeta{10, 3, make_config({1, 2, 3})}};
    require_refused(*c, snap, kRefusedTermOutOfRange);
}

// ---- indexes --------------------------------------------------------------------

TEST_CASE("every index field is bounded: log_index, commit, index, hint_index, snapshot index") {
    auto c = follower_of_1();
    Message base{.type = MessageType::append, .from = 1, .to = 2, .term = 2};
    for (Index bad : {kMaxIndex + 1, kU64Max}) {
        Message m = base;
        m.log_index = bad;
        require_refused(*c, m, kRefusedIndexOutOfRange);
        m = base;
        m.commit = bad;
        require_refused(*c, m, kRefusedIndexOutOfRange);
        m = base;
        m.type = MessageType::append_response;
        m.index = bad;
        require_refused(*c, m, kRefusedIndexOutOfRange);
        m.index = 0;
        m.hint_index = bad;
        require_refused(*c, m, kRefusedIndexOutOfRange);
        m = Message{.type = MessageType::snapshot,
                    .from = 1,
                    .to = 2,
                    .term = 2,
                    .snapshot = SnapshotMeta{bad, 2, make_config({1, 2, 3})}};
        require_refused(*c, m, kRefusedIndexOutOfRange);
    }
}

TEST_CASE("an acknowledgement past the leader's log is refused (it used to abort the process)") {
    auto c = leader_1();
    require_refused(*c, append_ok(2, 1, c->term(), c->last_index() + 1), kRefusedIndexOutOfRange);
    require_refused(*c, append_ok(3, 1, c->term(), kMaxIndex), kRefusedIndexOutOfRange);
    // A rejection of a prevLogIndex it never sent, or with a hint past the
    // index it rejects.
    Message reject{.type = MessageType::append_response,
                   .from = 3,
                   .to = 1,
                   .term = c->term(),
                   .index = c->last_index() + 5,
                   .reject = true};
    require_refused(*c, reject, kRefusedIndexOutOfRange);
    reject.index = c->last_index();
    reject.hint_index = c->last_index() + 1;
    require_refused(*c, reject, kRefusedIndexOutOfRange);
    // Its own last index is a fine answer.
    CHECK(c->step(append_ok(3, 1, c->term(), c->last_index())).ok());
}

// ---- malformed --------------------------------------------------------------------

TEST_CASE("malformed messages are refused: sender, term, entries, configurations") {
    auto c = follower_of_1();
    require_refused(*c, heartbeat(1, 3, 2), kRefusedMisaddressed);
    require_refused(*c, heartbeat(0, 2, 2), kRefusedMalformed);
    require_refused(*c, heartbeat(2, 2, 2), kRefusedMalformed);
    require_refused(*c, heartbeat(1, 2, 0), kRefusedMalformed);
    Message with_entries = heartbeat(1, 2, 2);
    with_entries.entries = {Entry{2, 3, EntryType::normal, "x"}};
    require_refused(*c, with_entries, kRefusedMalformed);
    Message with_meta = heartbeat(1, 2, 2);
    with_meta.snapshot = SnapshotMeta{5, 2, make_config({1, 2, 3})};
    require_refused(*c, with_meta, kRefusedMalformed);
    // Appends: a gap, a term going back, a configuration without a voter or
    // that does not decode.
    Message append{
        .type = MessageType::append, .from = 1, .to = 2, .term = 2, .log_index = 2, .log_term = 2};
    Message gap = append;
    gap.entries = {Entry{2, 4, EntryType::normal, "x"}};
    require_refused(*c, gap, kRefusedMalformed);
    Message back = append;
    back.entries = {Entry{1, 3, EntryType::normal, "x"}};
    require_refused(*c, back, kRefusedMalformed);
    Message voterless = append;
    voterless.entries = {
        Entry{2, 3, EntryType::config, encode_configuration(make_config({}, {1, 2, 3}))}};
    require_refused(*c, voterless, kRefusedMalformed);
    Message garbage = append;
    garbage.entries = {Entry{2, 3, EntryType::config, "not a configuration"}};
    require_refused(*c, garbage, kRefusedMalformed);
    // A snapshot without metadata, or whose configuration has no voter or
    // breaks the limits (encode_configuration asserts them when this node
    // later writes a snapshot of its own).
    require_refused(*c, Message{.type = MessageType::snapshot, .from = 1, .to = 2, .term = 2},
                    kRefusedMalformed);
    Message snap{.type = MessageType::snapshot,
                 .from = 1,
                 .to = 2,
                 .term = 2,
                 .snapshot = SnapshotMeta{10, 2, make_config({}, {1, 2, 3})}};
    require_refused(*c, snap, kRefusedMalformed);
    Configuration crowded = make_config({1, 2, 3});
    for (NodeId id = 10; crowded.members.size() <= kMaxMembers; ++id) crowded.members[id] = {};
    snap.snapshot->config = crowded;
    require_refused(*c, snap, kRefusedMalformed);
    Configuration wordy = make_config({1, 2, 3});
    wordy.members[3].context = std::string(kMaxContextBytes + 1, 'a');
    snap.snapshot->config = wordy;
    require_refused(*c, snap, kRefusedMalformed);
    // At the limits: installed.
    crowded.members.erase(crowded.members.rbegin()->first);
    wordy.members[3].context.pop_back();
    snap.snapshot->config = crowded;
    CHECK(c->step(snap).ok());
    CHECK(c->configuration() == crowded);
}

// ---- the sender is a member -------------------------------------------------------

// ---- the reason ----------------------------------------------------------------------

TEST_CASE("refusal_reason names refusals only") {
    auto c = follower_of_1();
    CHECK(refusal_reason(c->step(heartbeat(1, 2, 2))).empty());
    // Stale: dropped by Raft's own rules, not refused.
    keel::Status stale = c->step(heartbeat(1, 2, 1));
    CHECK_FALSE(stale.ok());
    CHECK(refusal_reason(stale).empty());
    CHECK(refusal_reason(keel::Status(keel::ErrorCode::invalid_argument, "not_a_member")).empty());
    CHECK(refusal_reason(refused(kRefusedMalformed, "x")) == kRefusedMalformed);
}

// ---- the restored state --------------------------------------------------------------

TEST_CASE("validate_restored refuses a state the core would abort on") {
    RestoredState good = bootstrap(make_config({1, 2, 3}));
    good.entries.push_back(Entry{1, 2, EntryType::normal, "x"});
    CHECK(validate_restored(good).ok());
    auto refused_because = [](const RestoredState& r, const std::string& part) {
        keel::Status st = validate_restored(r);
        INFO(st.to_string());
        CHECK(st.code() == keel::ErrorCode::corruption);
        CHECK(st.message().find(part) != std::string::npos);
    };
    RestoredState r = good;
    r.hard_state.term = kU64Max;  // a data dir bricked by a forged heartbeat
    refused_because(r, "term 18446744073709551615");
    r = good;
    r.hard_state.term = kMaxRestoredTerm + 1;
    refused_because(r, "past the largest");
    r.hard_state.term = kMaxRestoredTerm;  // reached by campaigns from kMaxTerm
    CHECK(validate_restored(r).ok());
    r = good;
    r.entries.push_back(Entry{1, 4, EntryType::normal, "gap"});
    refused_because(r, "does not follow");
    r = good;
    r.entries.push_back(Entry{5, 3, EntryType::normal, "newer than the hard state"});
    refused_because(r, "the log holds term 5");
    r = good;
    r.entries.push_back(Entry{1, 3, EntryType::config, "garbage"});
    refused_because(r, "does not decode");
    r = good;
    r.hard_state.commit = 9;
    refused_because(r, "beyond the log");
    r = good;
    r.snapshot = SnapshotMeta{kMaxRestoredIndex + 1, 1, make_config({1})};
    r.applied = r.hard_state.commit = 0;
    refused_because(r, "out of range");
    r.snapshot->index = kMaxRestoredIndex;  // what appends from kMaxIndex may reach
    r.entries.clear();
    CHECK(validate_restored(r).ok());
    // Entries the snapshot covers do not count.
    r = good;
    r.snapshot = SnapshotMeta{2, 1, make_config({1, 2, 3})};
    r.applied = 2;
    CHECK(validate_restored(r).ok());
    CHECK(validate_restored(RestoredState{}).ok());  // a joiner, empty
}
