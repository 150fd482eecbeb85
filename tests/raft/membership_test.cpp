// tests/raft/membership_test.cpp — single-server configuration changes,
// learners, and the codec of the configuration.
#include <catch2/catch.hpp>

#include <random>

#include "harness.hpp"
#include "raft/limits.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

namespace {

ConfigChange change(ConfigChange::Kind kind, NodeId node) {
    return ConfigChange{kind, node, str_cat("addr-", node)};
}

// A node joining an existing cluster: empty state, contacted by the leader.
void add_joiner(Cluster& c, NodeId id) {
    c.add(id, test_options(id), RestoredState{});
}

}  // namespace

TEST_CASE("config change: add a learner, it catches up, then promote it to voter") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.propose(1, "a");
    add_joiner(c, 4);
    auto r = c.core(1).propose_config_change(change(ConfigChange::Kind::add_learner, 4));
    REQUIRE(r.ok());
    // Effective on the leader as soon as appended.
    CHECK(c.core(1).configuration().contains(4));
    CHECK_FALSE(c.core(1).configuration().is_voter(4));
    c.deliver_all();
    c.tick_all(3);
    CHECK(c.core(4).last_index() == c.core(1).last_index());
    CHECK(c.core(4).configuration().contains(4));
    r = c.core(1).propose_config_change(change(ConfigChange::Kind::promote, 4));
    REQUIRE(r.ok());
    c.deliver_all();
    c.tick_all(2);
    CHECK(c.core(2).configuration().is_voter(4));
    CHECK(c.core(1).configuration().voter_count() == 4);
    // Now 3 of 4 are needed: with 3 and 4 cut off, nothing commits.
    c.isolate(3);
    c.isolate(4);
    Index before = c.core(1).commit_index();
    (void)c.core(1).propose("b");
    c.deliver_all();
    CHECK(c.core(1).commit_index() == before);
}

TEST_CASE("config change: one at a time") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.isolate(1);  // keep the first change uncommitted
    REQUIRE(c.core(1).propose_config_change(change(ConfigChange::Kind::add_learner, 4)).ok());
    auto second = c.core(1).propose_config_change(change(ConfigChange::Kind::add_learner, 5));
    CHECK(second.status().code() == keel::ErrorCode::busy);
    c.heal();
    c.tick_all(2);
    CHECK(c.core(1).propose_config_change(change(ConfigChange::Kind::add_learner, 5)).ok());
}

TEST_CASE("config change: refused until an entry of the leader's term is committed") {
    auto core = lone_core(1, {1, 2, 3});
    const WriteId noop_write = win_election(*core).write_id;
    auto r = core->propose_config_change(change(ConfigChange::Kind::add_learner, 4));
    CHECK(r.status().code() == keel::ErrorCode::busy);
    core->on_persisted(noop_write);
    (void)core->step(Message{.type = MessageType::append_response,
                             .from = 2,
                             .to = 1,
                             .term = core->term(),
                             .index = core->last_index()});
    CHECK(core->propose_config_change(change(ConfigChange::Kind::add_learner, 4)).ok());
}

TEST_CASE("config change: invalid requests") {
    Cluster c({1, 2, 3}, {4});
    c.elect(1);
    using K = ConfigChange::Kind;
    auto code = [&](K kind, NodeId id) {
        return c.core(1).propose_config_change(change(kind, id)).status().code();
    };
    CHECK(code(K::promote, 2) == keel::ErrorCode::invalid_argument);  // not a learner
    CHECK(code(K::promote, 9) == keel::ErrorCode::invalid_argument);  // not a member
    CHECK(code(K::add_voter, 2) == keel::ErrorCode::invalid_argument);
    CHECK(code(K::add_learner, 4) == keel::ErrorCode::invalid_argument);
    CHECK(code(K::remove, 9) == keel::ErrorCode::invalid_argument);
    CHECK(code(K::add_voter, 0) == keel::ErrorCode::invalid_argument);
    CHECK(c.core(2).propose_config_change(change(K::add_voter, 5)).status().code() ==
          keel::ErrorCode::not_leader);
    Cluster one({1});
    CHECK(one.core(1).propose_config_change(change(K::remove, 1)).status().code() ==
          keel::ErrorCode::invalid_argument);  // would leave no voter
}

TEST_CASE("config change: a removed leader leads until its removal commits, then steps down") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.node(2).hold_persist = true;
    c.node(3).hold_persist = true;
    auto r = c.core(1).propose_config_change(change(ConfigChange::Kind::remove, 1));
    REQUIRE(r.ok());
    c.deliver_all();
    CHECK(c.core(1).role() == Role::leader);  // not committed yet
    CHECK_FALSE(c.core(1).configuration().contains(1));
    c.release(2);
    c.release(3);
    c.deliver_all();
    CHECK(c.core(1).role() == Role::follower);
    // It hands over at once (TimeoutNow to an up-to-date voter).
    c.tick_all(3);
    NodeId leader = c.leader();
    CHECK((leader == 2 || leader == 3));
    // The removed node never campaigns again.
    for (int i = 0; i < 100; ++i) c.tick(1);
    CHECK(c.core(1).role() == Role::follower);
    CHECK(c.core(leader).configuration().voter_count() == 2);
}

// Seed 3023 of `keel_sim --nodes 1 --membership --no-lease-reads` (the
// simulator's disk saves the commit index as lazily as the runtime): node 2,
// promoted at index 2, led and appended its own removal at 3; it restarted
// with the commit index it had saved, 1, where it was still a learner.  Node
// 1, which had lost 3 in a crash, needs 2's vote and 2 refuses (its log is
// longer).  If 2 does not campaign either, no leader is ever elected.
TEST_CASE("config change: a node removed by an uncommitted entry campaigns even if its saved "
          "commit index predates its promotion") {
    RestoredState r;
    r.entries = {
        Entry{1, 1, EntryType::config, encode_configuration(make_config({1}, {2}))},
        Entry{1, 2, EntryType::config, encode_configuration(make_config({1, 2}))},
        Entry{2, 3, EntryType::config, encode_configuration(make_config({1}))},
    };
    r.hard_state = HardState{2, 2, 1};
    Core c(test_options(2), r);
    (void)c.take_actions();
    bool asked = false;
    for (int i = 0; i < 100 && !asked; ++i) {
        c.tick();
        for (const Message& m : c.take_actions().messages)
            asked = asked || ((m.type == MessageType::pre_vote || m.type == MessageType::vote) &&
                              m.to == 1);
    }
    CHECK(asked);
    // A node the log shows removed for good (never a voter at or after its
    // commit index) still never campaigns.
    r.hard_state.commit = 3;
    Core removed(test_options(2), r);
    (void)removed.take_actions();
    for (int i = 0; i < 100; ++i) removed.tick();
    CHECK(removed.role() == Role::follower);
    CHECK(of_type(removed.take_actions().messages, MessageType::pre_vote).empty());
}

TEST_CASE("config change: removing a follower; it stops campaigning") {
    Cluster c({1, 2, 3});
    c.elect(1);
    REQUIRE(c.core(1).propose_config_change(change(ConfigChange::Kind::remove, 3)).ok());
    c.deliver_all();
    c.tick_all(2);
    CHECK_FALSE(c.core(1).configuration().contains(3));
    CHECK_FALSE(c.core(3).configuration().contains(3));
    c.isolate(3);
    for (int i = 0; i < 100; ++i) c.tick(3);
    CHECK(c.core(3).role() == Role::follower);
}

TEST_CASE(
    "config change: a member removed before it acknowledged learns that its removal committed") {
    // One append in flight: the leader's usual commit broadcast skips 3.
    Cluster c({1, 2, 3}, {}, [](Options& o) { o.max_inflight_messages = 1; });
    c.elect(1);
    c.tick_all(2);
    c.node(3).hold_persist = true;  // 3 receives its removal but does not acknowledge it
    auto r = c.core(1).propose_config_change(change(ConfigChange::Kind::remove, 3));
    REQUIRE(r.ok());
    c.deliver_all();
    REQUIRE(c.core(1).commit_index() >= r->index);  // committed by 1 and 2
    c.release(3);
    c.deliver_all();
    // The leader's last append told it the commit index: it knows it is out.
    CHECK(c.core(3).commit_index() >= r->index);
    Term term = c.core(3).term();
    c.isolate(3);
    for (int i = 0; i < 100; ++i) c.tick(3);
    CHECK(c.core(3).role() == Role::follower);
    CHECK(c.core(3).term() == term);
}

TEST_CASE("config change takes effect when appended and reverts when truncated") {
    auto f = lone_core(2, {1, 2, 3}, 2);
    Configuration next = make_config({1, 2, 3}, {4});
    Entry conf{2, 2, EntryType::config, encode_configuration(next)};
    (void)f->step(Message{.type = MessageType::append,
                          .from = 1,
                          .to = 2,
                          .term = 2,
                          .log_index = 1,
                          .log_term = 1,
                          .commit = 1,
                          .entries = {conf}});
    CHECK(f->configuration() == next);
    Actions a = f->take_actions();
    REQUIRE(a.configuration);
    CHECK(*a.configuration == next);
    // A leader of term 3 overwrites index 2.
    (void)f->step(Message{.type = MessageType::append,
                          .from = 3,
                          .to = 2,
                          .term = 3,
                          .log_index = 1,
                          .log_term = 1,
                          .commit = 1,
                          .entries = {Entry{3, 2, EntryType::noop, ""}}});
    CHECK(f->configuration() == make_config({1, 2, 3}));
    a = f->take_actions();
    REQUIRE(a.configuration);
}

TEST_CASE("single voter to two voters and back: ticks needed only with company") {
    Cluster c({1});
    add_joiner(c, 2);
    REQUIRE(c.core(1).propose_config_change(change(ConfigChange::Kind::add_voter, 2)).ok());
    CHECK(c.core(1).needs_ticks());
    c.deliver_all();
    c.tick_all(3);
    CHECK(c.core(2).configuration().is_voter(2));
    Index before = c.core(1).commit_index();
    c.propose(1, "both");
    c.tick_all(1);
    CHECK(c.core(1).commit_index() > before);
    REQUIRE(c.core(1).propose_config_change(change(ConfigChange::Kind::remove, 2)).ok());
    c.deliver_all();
    c.tick_all(1);
    CHECK_FALSE(c.core(1).needs_ticks());
    c.propose(1, "alone");
    CHECK(c.node(1).applied.back().data == "alone");
}

TEST_CASE("a follower left as the only voter takes over at once") {
    Cluster c({1, 2});
    c.elect(1);
    REQUIRE(c.core(1).propose_config_change(change(ConfigChange::Kind::remove, 1)).ok());
    c.deliver_all();
    c.tick_all(2);
    CHECK(c.core(2).role() == Role::leader);
    CHECK_FALSE(c.core(2).needs_ticks());
}

TEST_CASE("learners receive the log but never count for commit") {
    Cluster c({1, 2}, {3});
    c.elect(1);
    c.isolate(2);
    Index before = c.core(1).commit_index();
    (void)c.core(1).propose("x");
    c.deliver_all();
    c.tick_all(3);
    CHECK(c.core(3).last_index() == c.core(1).last_index());  // replicated to the learner
    CHECK(c.core(1).commit_index() == before);                // but 1 of 2 voters only
}

TEST_CASE("config codec: round trip") {
    Configuration conf = make_config({1, 2, 7}, {9});
    conf.members[7].context = std::string("\0\xff binary", 9);
    auto decoded = decode_configuration(encode_configuration(conf));
    REQUIRE(decoded);
    CHECK(*decoded == conf);
    CHECK(decode_configuration(encode_configuration(Configuration{})) == Configuration{});
}

TEST_CASE("config codec: rejects truncations, trailing bytes and out-of-range fields") {
    std::string good = encode_configuration(make_config({1, 2, 3}, {4}));
    for (std::size_t n = 0; n < good.size(); ++n) {
        CHECK_FALSE(decode_configuration(good.substr(0, n)));
    }
    CHECK_FALSE(decode_configuration(good + "x"));
    std::string bad_version = good;
    bad_version[0] = 2;
    CHECK_FALSE(decode_configuration(bad_version));
    std::string bad_voter = good;
    bad_voter[1 + 4 + 8] = 2;  // the first member's voter flag
    CHECK_FALSE(decode_configuration(bad_voter));
    // Duplicate / unordered ids: swap in a copy of the first member's id.
    std::string dup = encode_configuration(make_config({5, 5 + 1}));
    std::size_t first_member = 1 + 4;
    std::size_t member_size = 8 + 1 + 4 + std::string("addr-5").size();
    dup.replace(first_member + member_size, 8, dup.substr(first_member, 8));
    CHECK_FALSE(decode_configuration(dup));
}

TEST_CASE("config codec: limits on member count and context size") {
    Configuration at_limit;
    for (NodeId id = 1; id <= kMaxMembers; ++id) at_limit.members[id] = MemberInfo{true, ""};
    CHECK(decode_configuration(encode_configuration(at_limit)) == at_limit);
    // One more member than the limit: forge the count.
    std::string over = encode_configuration(at_limit);
    over[1] = static_cast<char>((kMaxMembers + 1) & 0xff);
    over[2] = static_cast<char>(((kMaxMembers + 1) >> 8) & 0xff);
    CHECK_FALSE(decode_configuration(over));
    Configuration big_context = make_config({1});
    big_context.members[1].context = std::string(kMaxContextBytes, 'c');
    CHECK(decode_configuration(encode_configuration(big_context)) == big_context);
    std::string over_context = encode_configuration(big_context);
    over_context[1 + 4 + 8 + 1] = static_cast<char>((kMaxContextBytes + 1) & 0xff);
    over_context[1 + 4 + 8 + 2] = static_cast<char>(((kMaxContextBytes + 1) >> 8) & 0xff);
    CHECK_FALSE(decode_configuration(over_context));
    // Proposing past the limits is refused.
    Cluster c({1});
    CHECK(c.core(1)
              .propose_config_change(ConfigChange{ConfigChange::Kind::add_learner, 2,
                                                  std::string(kMaxContextBytes + 1, 'c')})
              .status()
              .code() == keel::ErrorCode::invalid_argument);
}

TEST_CASE("config codec: random bytes never crash and decode only to valid configurations") {
    std::uint64_t seed = 12345;
    std::mt19937_64 rng(seed);
    INFO("seed " << seed);
    std::string good = encode_configuration(make_config({1, 2, 3}, {4}));
    for (int i = 0; i < 20000; ++i) {
        std::string bytes;
        if (i % 2 == 0) {
            bytes.resize(rng() % 64);
            for (char& ch : bytes) ch = static_cast<char>(rng());
            if (!bytes.empty()) bytes[0] = 1;  // get past the version byte often
        } else {
            bytes = good;  // flip a few bytes of a valid encoding
            for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
        }
        auto decoded = decode_configuration(bytes);
        if (decoded) {
            // Whatever decodes re-encodes to the same bytes (canonical form).
            CHECK(encode_configuration(*decoded) == bytes);
        }
    }
}
