// tests/raft/replication_test.cpp — AppendEntries receiver rules (Figure 2),
// the leader's commit rule (Figure 8), fast backtracking, flow control and
// proposal limits.
#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

namespace {

Entry entry(Term term, Index index, std::string data = "") {
    return Entry{term, index, EntryType::normal, std::move(data)};
}

Message append(NodeId from, NodeId to, Term term, Index prev_index, Term prev_term,
               std::vector<Entry> entries, Index commit) {
    return append_message(from, to, term, prev_index, prev_term, std::move(entries), commit);
}

std::vector<Message> responses(const Actions& a) {
    std::vector<Message> out = of_type(a.messages, MessageType::append_response);
    for (const Message& m : of_type(a.messages_after_persist, MessageType::append_response)) {
        out.push_back(m);
    }
    return out;
}

}  // namespace

TEST_CASE("AppendEntries: reply false if term < currentTerm") {
    auto c = lone_core(1, {1, 2, 3}, 5);
    Actions a = step_and_take(*c, append(2, 1, 4, 1, 1, {entry(4, 2)}, 1));
    auto r = responses(a);
    REQUIRE(r.size() == 1);
    CHECK(r[0].term == 5);  // the stale leader learns the newer term
    CHECK(c->last_index() == 1);
    CHECK(c->leader() == kNoNode);
}

TEST_CASE("AppendEntries: reply false if the log has no entry at prevLogIndex with prevLogTerm") {
    auto c = lone_core(1, {1, 2, 3}, 3, {1, 2});  // 1/1 1/2 2/3
    SECTION("log too short") {
        Actions a = step_and_take(*c, append(2, 1, 3, 5, 3, {entry(3, 6)}, 1));
        auto r = responses(a);
        REQUIRE(r.size() == 1);
        CHECK(r[0].reject);
        CHECK(r[0].index == 5);
        CHECK(r[0].hint_index == 3);  // our last index
        CHECK(r[0].hint_term == 2);
        CHECK(a.entries.empty());
    }
    SECTION("term mismatch at prevLogIndex") {
        Actions a = step_and_take(*c, append(2, 1, 3, 3, 3, {entry(3, 4)}, 1));
        auto r = responses(a);
        REQUIRE(r.size() == 1);
        CHECK(r[0].reject);
        // Hint: the last index whose term is <= prevLogTerm... here 3 (term 2).
        CHECK(r[0].hint_index == 3);
        CHECK(r[0].hint_term == 2);
        CHECK(c->last_index() == 3);
    }
    CHECK(c->leader() == 2);  // still, it heard from the leader of its term
}

TEST_CASE("AppendEntries: delete a conflicting entry and all that follow it, append new ones") {
    auto c = lone_core(1, {1, 2, 3}, 3, {1, 2, 2});  // 1/1 1/2 2/3 2/4
    Actions a = step_and_take(*c, append(2, 1, 3, 2, 1, {entry(3, 3, "x")}, 1));
    CHECK(c->last_index() == 3);
    CHECK(c->term_at(3) == 3);
    CHECK_FALSE(c->term_at(4));
    // The runtime is told to truncate after 2 and append 3.
    REQUIRE(a.entries.size() == 1);
    CHECK(a.entries[0].index == 3);
    auto r = responses(a);
    REQUIRE(r.size() == 1);
    CHECK_FALSE(r[0].reject);
    CHECK(r[0].index == 3);
    // The acknowledgement waits for durability.
    CHECK(of_type(a.messages, MessageType::append_response).empty());
}

TEST_CASE("AppendEntries: entries already in the log are not rewritten (idempotent retry)") {
    auto c = lone_core(1, {1, 2, 3}, 2, {2, 2});  // 1/1 2/2 2/3
    Actions a = step_and_take(*c, append(2, 1, 2, 1, 1, {entry(2, 2, "e2"), entry(2, 3, "e3")}, 1));
    CHECK(a.entries.empty());
    CHECK(c->last_index() == 3);
    // A shorter, older append does not truncate the entries after it.
    a = step_and_take(*c, append(2, 1, 2, 1, 1, {entry(2, 2, "e2")}, 1));
    CHECK(c->last_index() == 3);
    REQUIRE(responses(a).size() == 1);
    CHECK(responses(a)[0].index == 2);
}

TEST_CASE("AppendEntries: commitIndex = min(leaderCommit, index of last new entry)") {
    auto c = lone_core(1, {1, 2, 3}, 2);
    (void)step_and_take(*c, append(2, 1, 2, 1, 1, {entry(2, 2), entry(2, 3)}, 10));
    CHECK(c->commit_index() == 3);
    const WriteId w = step_and_take(*c, append(2, 1, 2, 3, 2, {entry(2, 4)}, 3)).write_id;
    CHECK(c->commit_index() == 3);
    // Committed entries are handed out only once durable.
    c->on_persisted(w);
    Actions a = c->take_actions();
    REQUIRE_FALSE(a.committed_entries.empty());
    CHECK(a.committed_entries.back().index == 3);
}

TEST_CASE("a follower hands out committed entries only once they are durable") {
    auto c = lone_core(1, {1, 2, 3}, 2);
    Actions a = step_and_take(*c, append(2, 1, 2, 1, 1, {entry(2, 2), entry(2, 3)}, 3));
    CHECK(c->commit_index() == 3);
    CHECK(a.committed_entries.empty());
    // Never persist a commit index beyond the durable log.
    CHECK((!a.hard_state || a.hard_state->commit == 1));
    c->on_persisted(a.write_id);
    a = c->take_actions();
    REQUIRE(a.committed_entries.size() == 2);
    CHECK(a.hard_state->commit == 3);
}

TEST_CASE("Figure 8: a leader never commits an entry of an earlier term by counting replicas") {
    // Node 1 holds 2/3 from term 2 (uncommitted), then wins term 4.
    auto c = lone_core(1, {1, 2, 3, 4, 5}, 3, {2, 2}, 2);
    const WriteId noop_write = win_election(*c).write_id;
    REQUIRE(c->term() == 4);
    REQUIRE(c->last_index() == 4);
    c->on_persisted(noop_write);
    // 2/3 reaches a majority (1, 2, 3) — but is of term 2: no commit.
    (void)c->step(append_ok(2, 1, 4, 3));
    (void)c->step(append_ok(3, 1, 4, 3));
    CHECK(c->commit_index() == 2);
    // Once the no-op of term 4 is on a majority, it and everything before commit.
    (void)c->step(append_ok(2, 1, 4, 4));
    CHECK(c->commit_index() == 2);
    (void)c->step(append_ok(3, 1, 4, 4));
    CHECK(c->commit_index() == 4);
}

TEST_CASE("Figure 8: the leader's own append counts only once durable") {
    auto c = lone_core(1, {1, 2, 3}, 1);
    const WriteId noop_write = win_election(*c).write_id;
    Index noop = c->last_index();
    (void)c->step(append_ok(2, 1, c->term(), noop));
    CHECK(c->commit_index() == 1);  // follower 2 has it, but the leader's copy is not durable
    c->on_persisted(noop_write);
    CHECK(c->commit_index() == noop);
    // Both followers alone are a quorum too: the leader's disk is not waited for.
    (void)c->propose("x");
    (void)c->step(append_ok(2, 1, c->term(), noop + 1));
    (void)c->step(append_ok(3, 1, c->term(), noop + 1));
    CHECK(c->commit_index() == noop + 1);
}

TEST_CASE("fast backtracking: a follower with a long conflicting tail is fixed in few rounds") {
    // Follower 2: entries of term 2 at 2..51 (uncommitted, from a dead leader).
    std::vector<Term> tail(50, 2);
    auto f = lone_core(2, {1, 2, 3}, 2, tail);
    // Leader 1: entries of term 3 at 2..31; now term 4.
    std::vector<Term> mine(30, 3);
    auto l = lone_core(1, {1, 2, 3}, 3, mine);
    Actions first = win_election(*l);
    l->on_persisted(first.write_id);
    int rounds = 0;
    std::deque<Message> net;
    for (const Message& m : first.messages) net.push_back(m);
    while (!net.empty() && rounds < 100) {
        Message m = net.front();
        net.pop_front();
        if (m.to == 3) continue;
        Core& to = m.to == 1 ? *l : *f;
        if (m.type == MessageType::append) ++rounds;
        (void)to.step(m);
        Actions a = to.take_actions();
        if (!a.entries.empty()) to.on_persisted(a.write_id);
        for (const Message& x : a.messages) net.push_back(x);
        for (const Message& x : a.messages_after_persist) net.push_back(x);
    }
    CHECK(f->last_index() == l->last_index());
    CHECK(f->term_at(f->last_index()) == l->term());
    CHECK(rounds <= 4);  // linear backtracking would take ~50
}

TEST_CASE("a new commit index rides on later appends, or goes alone once the leader applied it") {
    auto c = lone_core(1, {1, 2, 3}, 1);
    const WriteId noop_write = win_election(*c).write_id;
    const Index noop = c->last_index();
    c->on_persisted(noop_write);
    (void)c->step(append_ok(2, 1, c->term(), noop));
    (void)c->step(append_ok(3, 1, c->term(), noop));
    (void)c->take_actions();
    REQUIRE(c->propose("x").ok());
    const WriteId x_write = c->take_actions().write_id;  // with the append of x to 2 and 3
    c->on_persisted(x_write);
    (void)c->step(append_ok(2, 1, c->term(), noop + 1));
    REQUIRE(c->commit_index() == noop + 1);
    auto commit_appends = [](const Actions& a) {
        std::vector<Message> out;
        for (const Message& m : of_type(a.messages, MessageType::append))
            if (m.entries.empty()) out.push_back(m);
        return out;
    };
    Actions committed = c->take_actions();
    REQUIRE(committed.committed_entries.size() == 1);
    // Not yet applied by the leader: no append only to carry the commit.
    CHECK(commit_appends(committed).empty());
    CHECK_FALSE(c->has_actions());

    SECTION("a proposal before the apply carries it, and nothing more follows") {
        REQUIRE(c->propose("y").ok());
        std::vector<Message> out = of_type(c->take_actions().messages, MessageType::append);
        REQUIRE(out.size() == 2);  // y to 2 and to 3
        for (const Message& m : out) {
            CHECK(m.entries.size() == 1);
            CHECK(m.commit == noop + 1);
        }
        c->on_applied(noop + 1);
        CHECK(commit_appends(c->take_actions()).empty());
    }
    SECTION("applied with nothing to carry it: a notice to each follower once it holds the entry") {
        // 2 acknowledged x: a commit notice (a heartbeat of context 0, left
        // unanswered).  3 was sent x and has not answered: nothing yet, its
        // answer brings the notice (replication.cpp, send_commit_news).
        c->on_applied(noop + 1);
        REQUIRE(c->has_actions());
        Actions applied = c->take_actions();
        CHECK(commit_appends(applied).empty());
        std::vector<Message> notices = of_type(applied.messages, MessageType::heartbeat);
        REQUIRE(notices.size() == 1);
        CHECK(notices[0].to == 2);
        CHECK(notices[0].commit == noop + 1);
        CHECK(notices[0].context == kCommitNoticeContext);
        CHECK_FALSE(c->has_actions());
        (void)c->step(append_ok(3, 1, c->term(), noop + 1));
        Actions answered = c->take_actions();
        CHECK(commit_appends(answered).empty());
        notices = of_type(answered.messages, MessageType::heartbeat);
        REQUIRE(notices.size() == 1);
        CHECK(notices[0].to == 3);
        CHECK(notices[0].commit == noop + 1);
        CHECK(notices[0].context == kCommitNoticeContext);
        CHECK_FALSE(c->has_actions());
    }
    SECTION("never applied: the next heartbeat carries it") {
        // The next tick heartbeats 2, which holds x and was not told it is
        // committed; not 3, only known to hold the no-op, whose commit the
        // append of x told it (replication.cpp, heartbeat_needed).
        c->tick();
        std::vector<Message> hb = of_type(c->take_actions().messages, MessageType::heartbeat);
        REQUIRE(hb.size() == 1);
        CHECK(hb[0].to == 2);
        CHECK(hb[0].commit == noop + 1);
        // Nothing was sent to either since: the tick after heartbeats both,
        // each with min(match, commit).
        c->tick();
        hb = of_type(c->take_actions().messages, MessageType::heartbeat);
        REQUIRE(hb.size() == 2);
        for (const Message& m : hb) CHECK(m.commit == (m.to == 2 ? noop + 1 : noop));
    }
}

TEST_CASE("flow control: at most max_inflight_messages appends in flight in replicate state") {
    auto c = lone_core(1, {1, 2, 3}, 1, {}, 1, [](Options& o) { o.max_inflight_messages = 3; });
    const WriteId noop_write = win_election(*c).write_id;
    Index noop = c->last_index();
    c->on_persisted(noop_write);
    (void)c->step(append_ok(2, 1, c->term(), noop));  // 2: probe -> replicate
    (void)c->take_actions();
    int to_2 = 0;
    for (int i = 0; i < 10; ++i) {
        REQUIRE(c->propose("p").ok());
        for (const Message& m : c->take_actions().messages) {
            if (m.type == MessageType::append && m.to == 2 && !m.entries.empty()) ++to_2;
        }
    }
    CHECK(to_2 == 3);
    // An acknowledgement frees the window: the rest goes out (bounded again).
    (void)c->step(append_ok(2, 1, c->term(), noop + 3));
    int more = 0;
    Index last_sent = 0;
    for (const Message& m : c->take_actions().messages) {
        if (m.type == MessageType::append && m.to == 2 && !m.entries.empty()) {
            ++more;
            last_sent = m.entries.back().index;
        }
    }
    CHECK(more >= 1);
    CHECK(more <= 3);
    CHECK(last_sent == c->last_index());
}

TEST_CASE("flow control: a probing follower gets one append until it answers") {
    auto c = lone_core(1, {1, 2, 3}, 1);
    (void)win_election(*c);
    for (int i = 0; i < 5; ++i) {
        REQUIRE(c->propose("p").ok());
        for (const Message& m : c->take_actions().messages) {
            CHECK_FALSE((m.type == MessageType::append && m.to == 2));
        }
    }
}

TEST_CASE("flow control: entries per append bounded by max_message_bytes, at least one") {
    auto c = lone_core(1, {1, 2}, 1, {}, 1, [](Options& o) { o.max_message_bytes = 250; });
    const WriteId noop_write = win_election(*c).write_id;
    Index noop = c->last_index();
    c->on_persisted(noop_write);
    (void)c->step(append_ok(2, 1, c->term(), noop));
    REQUIRE(c->commit_index() == noop);
    (void)c->take_actions();
    c->on_applied(noop);
    (void)c->take_actions();
    // 2 cannot be reached: the leader probes it, one append at a time, and
    // proposals meanwhile queue up in its log.
    c->report_unreachable(2);
    for (int i = 0; i < 6; ++i) REQUIRE(c->propose(std::string(100, 'x')).ok());
    REQUIRE(c->propose(std::string(1000, 'y')).ok());
    REQUIRE(of_type(c->take_actions().messages, MessageType::append).size() == 1);
    // 2 answers its probe: the leader sends everything, message by message.
    std::vector<std::size_t> sizes;
    Index acked = noop;
    for (int round = 0; round < 20 && acked < c->last_index(); ++round) {
        (void)c->step(append_ok(2, 1, c->term(), acked));
        for (const Message& m : c->take_actions().messages) {
            if (m.type != MessageType::append || m.to != 2 || m.entries.empty()) continue;
            std::size_t bytes = 0;
            for (const Entry& e : m.entries) bytes += e.data.size();
            sizes.push_back(bytes);
            CHECK((bytes <= 250 || m.entries.size() == 1));
            acked = m.entries.back().index;
        }
    }
    CHECK(acked == c->last_index());
    REQUIRE_FALSE(sizes.empty());
    CHECK(sizes.back() == 1000);  // an oversized entry still goes, alone
}

TEST_CASE("proposals on a non-leader fail fast naming the leader") {
    Cluster c({1, 2, 3});
    c.elect(1);
    auto r = c.core(2).propose("x");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == keel::ErrorCode::not_leader);
    CHECK(r.status().message() == "not leader (leader is 1)");
}

TEST_CASE("proposals: too_large past max_proposal_bytes, busy past max_uncommitted_bytes") {
    Cluster c({1, 2, 3}, {}, [](Options& o) {
        o.max_proposal_bytes = 100;
        o.max_uncommitted_bytes = 250;
    });
    c.elect(1);
    auto big = c.core(1).propose(std::string(101, 'x'));
    CHECK(big.status().code() == keel::ErrorCode::too_large);
    c.isolate(1);  // nothing commits
    CHECK(c.core(1).propose(std::string(100, 'x')).ok());
    CHECK(c.core(1).propose(std::string(100, 'x')).ok());
    auto busy = c.core(1).propose(std::string(100, 'x'));
    CHECK(busy.status().code() == keel::ErrorCode::busy);
    c.heal();
    c.tick_all(3);
    CHECK(c.core(1).propose(std::string(100, 'x')).ok());
}

TEST_CASE("a proposal returns its index and term; it is committed iff that entry keeps the term") {
    Cluster c({1, 2, 3});
    c.elect(1);
    Proposed p = c.propose(1, "v");
    CHECK(p.term == c.core(1).term());
    CHECK(c.core(2).term_at(p.index) == p.term);
    CHECK(c.core(1).commit_index() >= p.index);
}

TEST_CASE("a rejection of an append from an earlier flow-control phase is ignored") {
    // A link that reorders: 2 gets "b" before "a" and rejects it, which
    // sends the leader back to probing; "a"'s acknowledgement puts it back
    // in replicate.  The late rejection of "c", sent in the first phase,
    // must not knock it back again (each knock-back sends a fresh window:
    // on a reordering link, a message storm).
    auto c = lone_core(1, {1, 2});
    const WriteId noop_write = win_election(*c).write_id;
    const Index noop = c->last_index();
    c->on_persisted(noop_write);
    (void)c->step(append_ok(2, 1, c->term(), noop));
    (void)c->take_actions();
    auto state_of_2 = [&] {
        for (const PeerProgress& p : c->progress())
            if (p.id == 2) return p.state;
        FAIL("no progress for 2");
        return ProgressState::snapshot;
    };
    REQUIRE(state_of_2() == ProgressState::replicate);
    std::vector<Message> sent;  // one append per proposal: "a", "b", "c"
    for (const char* data : {"a", "b", "c"}) {
        REQUIRE(c->propose(data).ok());
        for (const Message& m : of_type(c->take_actions().messages, MessageType::append))
            if (m.to == 2 && !m.entries.empty()) sent.push_back(m);
    }
    REQUIRE(sent.size() == 3);
    auto rejection_of = [&](const Message& append) {
        return Message{.type = MessageType::append_response,
                       .from = 2,
                       .to = 1,
                       .term = c->term(),
                       .index = append.log_index,
                       .reject = true,
                       .hint_index = noop,
                       .hint_term = c->term(),
                       .context = append.context};
    };
    (void)c->step(rejection_of(sent[1]));  // "b" before "a": a real gap, back to probing
    REQUIRE(state_of_2() == ProgressState::probe);
    Message ack = append_ok(2, 1, c->term(), sent[0].entries.back().index);
    ack.context = sent[0].context;
    (void)c->step(ack);  // "a" arrives: replicating again
    REQUIRE(state_of_2() == ProgressState::replicate);
    (void)c->take_actions();
    (void)c->step(rejection_of(sent[2]));  // "c", rejected back in the first phase
    CHECK(state_of_2() == ProgressState::replicate);
    CHECK(of_type(c->take_actions().messages, MessageType::append).empty());
}

TEST_CASE("a busy leader heartbeats a follower once per CheckQuorum, and only while it lags") {
    // Options::election_ticks_min is 10 (harness.hpp): CheckQuorum runs every
    // 10 ticks and clears what the leader heard.  A proposal every tick keeps
    // both followers busy; they answer every append.
    Cluster c({1, 2, 3});
    c.elect(1);
    c.deliver_all();
    std::map<NodeId, int> heartbeats;
    std::map<NodeId, int> notices;
    std::map<NodeId, int> ticks_without_message;
    std::map<NodeId, int> ticks_without_message_max;
    constexpr int kTicks = 40;
    for (int i = 0; i < kTicks; ++i) {
        c.sent_log.clear();
        c.propose(1, "v");  // delivered, answered, committed
        c.tick(1);
        c.deliver_all();
        std::set<NodeId> heard;
        for (const Message& m : c.sent_log) {
            if (m.from != 1) continue;
            heard.insert(m.to);
            // Commit notices (context 0) are counted apart: one per proposal.
            if (m.type == MessageType::heartbeat && m.context == kCommitNoticeContext)
                notices[m.to] += 1;
            else if (m.type == MessageType::heartbeat)
                heartbeats[m.to] += 1;
        }
        for (NodeId f : {2, 3}) {
            ticks_without_message[f] = heard.count(f) != 0 ? 0 : ticks_without_message[f] + 1;
            ticks_without_message_max[f] =
                std::max(ticks_without_message_max[f], ticks_without_message[f]);
        }
    }
    for (NodeId f : {2, 3}) {
        // The tick of each CheckQuorum finds the follower unheard since: one
        // heartbeat then, none at the other ticks (40 before this change).
        CHECK(heartbeats[f] == kTicks / 10);
        CHECK(notices[f] == kTicks);
        CHECK(ticks_without_message_max[f] == 0);
    }
    CHECK(c.core(1).role() == Role::leader);

    SECTION("a follower that stops answering is heartbeaten again at once") {
        c.cut(1, 3);
        c.sent_log.clear();
        for (int i = 0; i < 15; ++i) {
            c.propose(1, "w");
            c.tick(1);
            c.deliver_all();
        }
        int to_3 = 0;
        for (const Message& m : c.sent_log)
            if (m.from == 1 && m.to == 3 && m.type == MessageType::heartbeat) to_3 += 1;
        // From the first CheckQuorum after the cut on (the 10th of these
        // ticks), every tick: the 10th to the 15th.
        CHECK(to_3 == 6);
        CHECK(c.core(1).role() == Role::leader);  // 2 keeps answering
    }
}

TEST_CASE("a probing follower whose probe was lost is heartbeaten at the next tick") {
    Cluster c({1, 2, 3});
    c.elect(1);
    c.deliver_all();
    c.core(1).report_unreachable(3);  // back to probing
    c.cut(1, 3);
    c.propose(1, "x");  // the probe to 3 is lost; 3 answered the leader before
    c.heal();
    c.sent_log.clear();
    c.tick(1);
    // Its answer lets the next probe go (handle_heartbeat_response).
    CHECK(of_type(c.sent_log, MessageType::heartbeat).size() >= 1);
    bool to_3 = false;
    for (const Message& m : c.sent_log)
        to_3 = to_3 || (m.type == MessageType::heartbeat && m.to == 3);
    CHECK(to_3);
    c.deliver_all();
    CHECK(c.core(3).last_index() == c.core(1).last_index());
}
