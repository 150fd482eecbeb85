// tests/raft/log_test.cpp — the in-memory log and the leader's view of a
// follower (progress), below the Core.
#include <catch2/catch.hpp>

#include "harness.hpp"
#include "raft/log.hpp"
#include "raft/progress.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

namespace {

std::vector<Entry> entries(Index first, const std::vector<Term>& terms) {
    std::vector<Entry> out;
    for (Term t : terms) out.push_back(Entry{t, first++, EntryType::normal, "d"});
    return out;
}

// Hands the unstable entries out as one write; returns its id.
WriteId take_write(RaftLog& log) {
    std::vector<Entry> out;
    return log.take_unstable(out);
}

}  // namespace

TEST_CASE("log: term_at covers the compaction point and nothing beyond the log") {
    RaftLog log;
    log.reset(5, 2, entries(6, {2, 3, 3}));
    CHECK(log.first_index() == 6);
    CHECK(log.last_index() == 8);
    CHECK(log.term_at(5) == 2);
    CHECK(log.term_at(7) == 3);
    CHECK_FALSE(log.term_at(4));
    CHECK_FALSE(log.term_at(9));
    CHECK(log.persisted() == 8);  // restored entries are durable
}

TEST_CASE("log: merge truncates at the first conflict only, and moves persisted back") {
    RaftLog log;
    log.reset(0, 0, entries(1, {1, 1, 1, 1}));
    CHECK(log.merge(entries(2, {1, 1})) == 0);  // already there: nothing rewritten
    CHECK(log.last_index() == 4);
    CHECK(log.unstable() == 5);
    CHECK(log.merge(entries(3, {2})) == 3);
    CHECK(log.last_index() == 3);
    CHECK(log.term_at(3) == 2);
    CHECK(log.persisted() == 2);
    CHECK(log.unstable() == 3);
    std::vector<Entry> out;
    CHECK(log.take_unstable(out) == 1);  // the first write handed out
    REQUIRE(out.size() == 1);
    CHECK(out[0].index == 3);
    CHECK(log.take_unstable(out) == 0);  // nothing left: no write
}

TEST_CASE("log: a stale persistence acknowledgement is ignored") {
    RaftLog log;
    log.reset(0, 0, entries(1, {1}));
    (void)log.merge(entries(2, {1, 1}));
    const WriteId first = take_write(log);
    (void)log.merge(entries(2, {2}));  // 2/1 and 3/1 replaced before their write completed
    const WriteId second = take_write(log);
    CHECK_FALSE(log.persisted_to(first));  // everything it wrote is gone
    CHECK(log.persisted() == 1);
    CHECK(log.persisted_to(second));
    CHECK(log.persisted() == 2);
    CHECK_FALSE(log.persisted_to(second));  // repeated
    CHECK_FALSE(log.persisted_to(first));   // older
}

TEST_CASE("log: a write vouches only up to the earliest truncation since it was handed out") {
    RaftLog log;
    log.reset(0, 0, entries(1, {1}));
    (void)log.merge(entries(2, {1, 1, 1}));
    const WriteId w1 = take_write(log);   // 2/1 3/1 4/1
    (void)log.merge(entries(3, {2}));     // 3/2 replaces 3/1 and 4/1
    const WriteId w2 = take_write(log);   // 3/2
    (void)log.merge(entries(3, {1, 1}));  // and 3/1 4/1 come back
    const WriteId w3 = take_write(log);   // 3/1 4/1, the same (index, term) as w1 wrote
    CHECK(log.persisted_to(w1));
    CHECK(log.persisted() == 2);        // not 4: w2 and w3 replace what w1 wrote at 3
    CHECK_FALSE(log.persisted_to(w2));  // its 3/2 is gone too
    CHECK(log.persisted_to(w3));
    CHECK(log.persisted() == 4);
}

TEST_CASE("log: reports of several writes at once count the latest") {
    RaftLog log;
    log.reset(0, 0, entries(1, {1}));
    (void)log.merge(entries(2, {1, 1}));
    (void)take_write(log);  // 2/1 3/1
    (void)log.merge(entries(3, {2}));
    const WriteId w2 = take_write(log);  // 3/2
    CHECK(log.persisted_to(w2));         // both durable: the disk as w2 left it
    CHECK(log.persisted() == 3);
}

TEST_CASE("log: a snapshot install leaves no earlier write vouching beyond it") {
    RaftLog log;
    log.reset(0, 0, entries(1, {1}));
    (void)log.merge(entries(2, {1, 1, 1}));
    const WriteId w1 = take_write(log);  // 2/1 3/1 4/1
    log.restore_snapshot(2, 1);
    (void)log.merge(entries(3, {1, 1}));
    const WriteId w2 = take_write(log);  // 3/1 4/1 again, after the reset
    CHECK(log.persisted() == 2);
    CHECK_FALSE(log.persisted_to(w1));
    CHECK(log.persisted() == 2);
    CHECK(log.persisted_to(w2));
    CHECK(log.persisted() == 4);
}

TEST_CASE("log: only committed and durable entries are handed out, bounded per batch") {
    RaftLog log;
    log.reset(0, 0, entries(1, {1}));
    (void)log.merge(entries(2, {1, 1, 1}));
    log.commit_to(4);
    CHECK(log.take_committed(1 << 20).size() == 1);  // 2..4 not durable yet
    CHECK(log.persisted_to(take_write(log)));
    auto first = log.take_committed(1);  // one byte: at least one entry
    REQUIRE(first.size() == 1);
    CHECK(first[0].index == 2);
    CHECK(log.take_committed(1 << 20).size() == 2);
    CHECK_FALSE(log.has_committed_to_hand());
}

TEST_CASE("log: the taking calls append to a caller's vector, reusing its capacity") {
    RaftLog log;
    log.reset(0, 0, {});
    for (Index i = 1; i <= 3; ++i) log.append(Entry{1, i, EntryType::normal, "x"});
    std::vector<Entry> out;
    out.reserve(64);
    const Entry* storage = out.data();
    const WriteId w = log.take_unstable(out);
    REQUIRE(out.size() == 3);
    CHECK(out.data() == storage);  // filled in place
    CHECK(out.back().index == 3);
    CHECK_FALSE(log.has_unstable());
    CHECK(log.persisted_to(w));
    log.commit_to(3);
    out.clear();
    log.take_committed(1 << 20, out);
    REQUIRE(out.size() == 3);
    CHECK(out.data() == storage);
    CHECK(out.front().index == 1);
    CHECK_FALSE(log.has_committed_to_hand());
    // slice appends after what is there; max_bytes counts only what it adds.
    log.slice(2, 4, 1, out);
    REQUIRE(out.size() == 4);
    CHECK(out.back().index == 2);
}

TEST_CASE("log: find_conflict_by_term skips whole terms") {
    RaftLog log;
    log.reset(0, 0, entries(1, {1, 1, 2, 2, 2, 4, 4}));
    CHECK(log.find_conflict_by_term(7, 3) == std::pair<Index, Term>{5, 2});
    CHECK(log.find_conflict_by_term(7, 4) == std::pair<Index, Term>{7, 4});
    CHECK(log.find_conflict_by_term(100, 1) == std::pair<Index, Term>{2, 1});
    CHECK(log.find_conflict_by_term(7, 0) == std::pair<Index, Term>{0, 0});
}

TEST_CASE("log: compaction keeps the term of the compaction point") {
    RaftLog log;
    log.reset(0, 0, entries(1, {1, 2, 3}));
    log.commit_to(3);
    (void)log.take_committed(1 << 20);
    log.applied_to(2);
    log.compact(2);
    CHECK(log.first_index() == 3);
    CHECK(log.term_at(2) == 2);
    CHECK_FALSE(log.term_at(1));
}

TEST_CASE("progress: probe sends one, replicate pipelines up to the window") {
    Progress pr(5, 2);
    CHECK_FALSE(pr.is_paused());
    pr.probe_sent = true;
    CHECK(pr.is_paused());
    CHECK(pr.maybe_update(4));
    CHECK_FALSE(pr.is_paused());
    pr.become_replicate();
    CHECK(pr.next == 5);
    pr.inflights.add(6);
    pr.inflights.add(8);
    CHECK(pr.is_paused());
    pr.inflights.free_up_to(6);
    CHECK_FALSE(pr.is_paused());
}

TEST_CASE("progress: rejections move next back, stale ones are ignored") {
    Progress pr(10, 4);
    pr.match = 3;
    CHECK_FALSE(pr.maybe_decrease_to(7, 5));  // probe: not the last probe (next - 1 = 9)
    CHECK(pr.maybe_decrease_to(9, 5));
    CHECK(pr.next == 6);  // min(rejected, hint + 1)
    pr.become_replicate();
    pr.next = 12;
    CHECK_FALSE(pr.maybe_decrease_to(2, 0));  // at or below match: stale
    CHECK(pr.maybe_decrease_to(8, 0));
    CHECK(pr.next == pr.match + 1);
}

TEST_CASE("committed entries are handed out at most max_committed_bytes_per_batch at a time") {
    Cluster c({1}, {}, [](Options& o) { o.max_committed_bytes_per_batch = 10; });
    c.node(1).hold_persist = true;
    for (int i = 0; i < 5; ++i) REQUIRE(c.core(1).propose(std::string(6, 'x')).ok());
    c.process(1);
    c.ack_persist(1);
    std::vector<std::size_t> batch_sizes;
    while (c.core(1).has_actions()) {
        Actions a = c.core(1).take_actions();
        if (!a.committed_entries.empty()) batch_sizes.push_back(a.committed_entries.size());
        for (const Entry& e : a.committed_entries) c.core(1).on_applied(e.index);
    }
    REQUIRE(batch_sizes.size() >= 3);
    for (std::size_t n : batch_sizes) CHECK(n <= 2);  // 6 + 6 > 10: one at a time, but noop is 0
}
