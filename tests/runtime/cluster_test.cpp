// Three in-process nodes over real loopback TCP: election, replication,
// leader stop and re-election, follower restart and catch-up, snapshot
// install to a wiped follower and to a joiner.  The tests marked so run both
// in plain TCP and in mutual TLS.  Waits are on conditions, never on time.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "../common/thread_name.hpp"
#include "cluster_support.hpp"
#include "runtime/snapshot_store.hpp"

using namespace keel;
using keel::test::eventually;
using keel::test::TestCluster;

namespace {

// Every node in `ids` has applied exactly `acked` at the same indexes.
bool all_applied(TestCluster& c, const std::vector<NodeId>& ids,
                 const std::map<std::uint64_t, std::string>& acked) {
    for (NodeId id : ids) {
        auto applied = c.sm(id).applied();
        for (const auto& [index, data] : acked) {
            auto it = applied.find(index);
            if (it == applied.end() || it->second != data) return false;
        }
    }
    return true;
}

// Proposes `prefix<i>` through the leader and records it as acknowledged.
// (Built with append: GCC 12 warns falsely on "literal" + std::string.)
void put(TestCluster& c, std::map<std::uint64_t, std::string>& acked, const char* prefix, int i,
         std::size_t padding_bytes = 0) {
    std::string data(prefix);
    data.append(std::to_string(i));
    data.append(padding_bytes, 'v');
    acked[c.propose(data)] = data;
}

// Starts the three founders, wipes a follower while 110 writes of `prefix`
// (each `padding_bytes` longer) go in and the leader snapshots past
// `snapshot_index_min`, then restarts it and waits until every node applied
// every write.  Returns the follower.
NodeId bring_back_a_wiped_follower(TestCluster& c, std::map<std::uint64_t, std::string>& acked,
                                   const char* prefix, std::size_t padding_bytes,
                                   std::uint64_t snapshot_index_min) {
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    const NodeId leader = c.leader();
    const NodeId follower = leader == 3 ? 2 : 3;
    for (int i = 0; i < 10; ++i) put(c, acked, prefix, i, padding_bytes);
    c.stop(follower);
    c.wipe(follower);
    for (int i = 10; i < 120; ++i) put(c, acked, prefix, i, padding_bytes);
    REQUIRE(eventually(
        [&] { return c.node(c.leader()).status().snapshot_index > snapshot_index_min; }));
    c.start(follower);
    REQUIRE(eventually([&] { return all_applied(c, {1, 2, 3}, acked); }));
    return follower;
}

}  // namespace

TEST_CASE("three nodes elect one leader and replicate to every member") {
    TestCluster c(3);
    c.tls = GENERATE(false, true);
    INFO("tls " << c.tls);
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    const NodeId leader = c.leader();
    REQUIRE(leader != 0);
    std::map<std::uint64_t, std::string> acked;
    for (int i = 0; i < 100; ++i) {
        put(c, acked, "rep-", i);
    }
    REQUIRE(eventually([&] { return all_applied(c, {1, 2, 3}, acked); }));
    // The leader reports how far each member's log is durable.
    const std::uint64_t last = acked.rbegin()->first;
    REQUIRE(eventually([&] {
        for (const MemberStatus& m : c.node(leader).status().members)
            if (m.match_index < last) return false;
        return true;
    }));
    const NodeId a_follower = leader == 1 ? 2 : 1;
    for (const MemberStatus& m : c.node(a_follower).status().members) CHECK(m.match_index == 0);
    NodeStatus st = c.node(leader).status();
    CHECK(st.mode == Mode::cluster);
    CHECK(st.members.size() == 3);
    CHECK(st.timer_wakeups > 0);
    auto m = c.node(leader).member(2);
    REQUIRE(m.ok());
    CHECK(m->metadata == "node-2");
    // A follower refuses proposals and names the leader.
    const NodeId follower = leader == 1 ? 2 : 1;
    ProposeResult r = c.node(follower).propose("x").get();
    CHECK(r.status.code() == ErrorCode::not_leader);
    for (NodeId id = 1; id <= 3; ++id) {
        CHECK(c.sm(id).duplicate_applies() == 0);
        CHECK(c.node(id).status().cluster_id == c.cluster_id);
        CHECK(c.node(id).status().peer_messages_rejected.empty());
    }
    // Cluster mode never applies inline on the WAL flusher: the apply
    // thread does, or the I/O thread a small batch it committed.
    for (NodeId id = 1; id <= 3; ++id)
        for (const std::string& thread : c.sm(id).apply_threads())
            CHECK((thread == "keel-apply" || thread == "keel-io"));
}

TEST_CASE("with inline_apply off, every member applies on its apply thread only") {
    TestCluster c(3);
    c.inline_apply = false;
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    std::map<std::uint64_t, std::string> acked;
    for (int i = 0; i < 50; ++i) put(c, acked, "off-", i);
    REQUIRE(eventually([&] { return all_applied(c, {1, 2, 3}, acked); }));
    for (NodeId id = 1; id <= 3; ++id)
        CHECK(c.sm(id).apply_threads() == std::set<std::string>{"keel-apply"});
}

namespace {

// Slow only where keel must not be held up: 2 ms per apply on the I/O
// thread (a workload, not a wait), quick on the apply thread.  keel's
// prediction, learnt on the apply thread, lets the I/O thread claim a batch.
class SlowOnIoThread final : public keel::test::RecordingStateMachine {
public:
    void apply(const std::vector<CommittedEntry>& entries,
               std::vector<std::string>& results) override {
        if (keel::test::thread_name() == "keel-io") {
            io_applies_.fetch_add(1);
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        RecordingStateMachine::apply(entries, results);
    }
    int io_applies() const { return io_applies_.load(); }

private:
    std::atomic<int> io_applies_{0};
};

}  // namespace

TEST_CASE("an inline apply that overruns its limit stops inline apply on the I/O thread") {
    // For kIoInlineApplyFirstOffBatches committed batches (io_apply_cutoff.hpp):
    // the 200 writes below are far fewer.
    TestCluster c(3);
    c.state_machine_factory = [] { return std::make_shared<SlowOnIoThread>(); };
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    const NodeId leader = c.leader();
    REQUIRE(leader != 0);
    auto& slow = dynamic_cast<SlowOnIoThread&>(c.sm(leader));
    // One proposal at a time: the leader's I/O thread, taking the
    // acknowledgement that commits it, finds the apply thread idle.
    std::map<std::uint64_t, std::string> acked;
    for (int i = 0; i < 2000 && slow.io_applies() == 0; ++i) put(c, acked, "s-", i);
    REQUIRE(slow.io_applies() > 0);
    REQUIRE(eventually([&] { return c.warned(leader, "applied inline on the I/O thread took"); }));
    CHECK(c.warned(leader, "only the apply thread applies for the next 10000 batches"));
    const int before = slow.io_applies();
    for (int i = 0; i < 200; ++i) put(c, acked, "t-", i);
    REQUIRE(eventually([&] { return all_applied(c, {1, 2, 3}, acked); }));
    CHECK(slow.io_applies() == before);
}

namespace {

// Counts its apply calls by the thread that made them.
class CountsApplyThreads final : public keel::test::RecordingStateMachine {
public:
    void apply(const std::vector<CommittedEntry>& entries,
               std::vector<std::string>& results) override {
        (keel::test::thread_name() == "keel-io" ? on_io_ : elsewhere_).fetch_add(1);
        RecordingStateMachine::apply(entries, results);
    }
    int on_io_thread() const { return on_io_.load(); }
    int elsewhere() const { return elsewhere_.load(); }

private:
    std::atomic<int> on_io_{0};
    std::atomic<int> elsewhere_{0};
};

// A closed loop of `count` proposals on `node`, each made by the previous
// one's callback (as raft-bench's clients do); `done` is set after the last.
void propose_in_a_loop(Node& node, int count, std::atomic<int>& acked, std::promise<void>& done) {
    if (count == 0) return done.set_value();
    node.propose_async(SharedBytes(std::string("loop-") + std::to_string(count)),
                       [&node, count, &acked, &done](ProposeResult r) {
                           if (r.status.ok()) acked.fetch_add(1);
                           propose_in_a_loop(node, count - 1, acked, done);
                       });
}

}  // namespace

// One write at a time, each proposed by the callback of the one before: the
// leader's apply proposes the next entry, and its append carries the commit
// of the last one.  A follower's I/O thread writes that append itself and
// then applies the commit, after the write: it used to hand every such
// commit to the apply thread (its write was queued), a thread wakeup per
// write on each follower (docs/decisions/0053-follower-apply-after-its-write.md).
TEST_CASE("a follower applies the commit an append brings on its I/O thread after writing it") {
    // Before the cluster: the loop's callbacks outlive a failed REQUIRE
    // until the nodes stop.
    std::atomic<int> acked{0};
    std::promise<void> done;
    TestCluster c(3);
    c.state_machine_factory = [] { return std::make_shared<CountsApplyThreads>(); };
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    const NodeId leader = c.leader();
    REQUIRE(leader != 0);
    constexpr int kWrites = 300;
    // Waited for on its own, not with eventually(): a thread woken by every
    // apply would compete with the members' threads and inflate their
    // predictions of an apply's cost.
    std::future<void> looped = done.get_future();
    propose_in_a_loop(c.node(leader), kWrites, acked, done);
    REQUIRE(looped.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
    REQUIRE(acked.load() == kWrites);
    const std::uint64_t last = c.node(leader).status().commit_index;
    REQUIRE(eventually([&] {
        for (NodeId id = 1; id <= 3; ++id)
            if (c.node(id).status().applied_index < last) return false;
        return true;
    }));
    // Counted over both followers: one that fell behind (it started late,
    // or lost its core for a while) learns the commits in one go at the end.
    int on_io_thread = 0;
    int elsewhere = 0;
    for (NodeId id = 1; id <= 3; ++id) {
        if (id == leader) continue;
        const auto& sm = dynamic_cast<CountsApplyThreads&>(c.sm(id));
        UNSCOPED_INFO("follower " << id << ": " << sm.on_io_thread()
                                  << " apply calls on its I/O thread, " << sm.elsewhere()
                                  << " on its apply thread");
        on_io_thread += sm.on_io_thread();
        elsewhere += sm.elsewhere();
        CHECK(sm.duplicate_applies() == 0);
    }
    // Most of them, not all: a batch predicted over the I/O thread's budget
    // (a preemption inflates the prediction for a while) goes to the apply
    // thread.
    CHECK(on_io_thread > elsewhere);
}

namespace {

// Proposes on `node` from each proposal's callback until `stop` is set or a
// proposal fails, then sets `done`.
void propose_until(Node& node, std::atomic<bool>& stop, std::atomic<int>& acked,
                   std::promise<void>& done) {
    if (stop.load()) return done.set_value();
    node.propose_async(SharedBytes(std::string("until")),
                       [&node, &stop, &acked, &done](ProposeResult r) {
                           if (!r.status.ok()) return done.set_value();
                           acked.fetch_add(1);
                           propose_until(node, stop, acked, done);
                       });
}

}  // namespace

// A follower's I/O thread that steps an append in schedules its own write
// (a post) and holds what the append committed until after it.  Stopped in
// between, the group's posts are dropped: stop() applies those claims
// itself, or closing the apply queue would wait for them for ever
// (docs/decisions/0053-follower-apply-after-its-write.md).  That interleaving
// is narrow (a stop() between the step and its post): in some 800 stops of
// this loop it was not seen, so this test guards a stop under appends in
// general; the claims at shutdown were found by reading the code.
TEST_CASE("a follower stopped while it writes appends on its I/O thread stops") {
    std::atomic<bool> stop_loop{false};
    std::atomic<int> acked{0};
    std::promise<void> loop_done;
    TestCluster c(3);
    // One leader throughout: with the test's usual 100 ms, two busy cores
    // sometimes let a follower's election timer run out (seen in runs of
    // 200 restarts), and the loop's proposals to the old leader then fail.
    c.election_min_ms = 1000;
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    const NodeId leader = c.leader();
    REQUIRE(leader != 0);
    const NodeId follower = leader == 3 ? 2 : 3;
    std::future<void> looped = loop_done.get_future();
    propose_until(c.node(leader), stop_loop, acked, loop_done);
    for (int round = 0; round < 10; ++round) {
        INFO("round " << round);
        const int before = acked.load();
        REQUIRE(eventually([&] { return acked.load() >= before + 10; }));
        c.stop(follower);  // returns: the test's point
        c.start(follower);
    }
    stop_loop.store(true);
    REQUIRE(looped.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
}

TEST_CASE("when the leader stops, the others elect a new one and keep every write") {
    TestCluster c(3);
    c.tls = GENERATE(false, true);
    INFO("tls " << c.tls);
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    std::map<std::uint64_t, std::string> acked;
    for (int i = 0; i < 30; ++i) put(c, acked, "a", i);
    const NodeId old_leader = c.leader();
    c.stop(old_leader);
    const NodeId new_leader = c.leader();
    REQUIRE(new_leader != 0);
    REQUIRE(new_leader != old_leader);
    for (int i = 0; i < 30; ++i) put(c, acked, "b", i);
    std::vector<NodeId> alive;
    for (NodeId id = 1; id <= 3; ++id)
        if (id != old_leader) alive.push_back(id);
    REQUIRE(eventually([&] { return all_applied(c, alive, acked); }));
}

TEST_CASE("a restarted follower catches up from its log and the leader") {
    TestCluster c(3);
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    std::map<std::uint64_t, std::string> acked;
    for (int i = 0; i < 20; ++i) put(c, acked, "c", i);
    const NodeId leader = c.leader();
    const NodeId follower = leader == 3 ? 2 : 3;
    REQUIRE(eventually([&] { return all_applied(c, {follower}, acked); }));
    c.stop(follower);
    for (int i = 20; i < 60; ++i) put(c, acked, "c", i);
    c.start(follower);  // same data dir, fresh state machine
    REQUIRE(eventually([&] { return all_applied(c, {1, 2, 3}, acked); }));
    CHECK(c.sm(follower).duplicate_applies() == 0);
}

TEST_CASE("a wiped follower is brought back by a snapshot from the leader") {
    TestCluster c(3);
    c.tls = GENERATE(false, true);
    INFO("tls " << c.tls);
    c.snapshot_every = 20;
    c.snapshot_trailing = 5;
    std::map<std::uint64_t, std::string> acked;
    const NodeId follower = bring_back_a_wiped_follower(c, acked, "d", 0, 20);
    CHECK(c.sm(follower).restores() >= 1);
    CHECK(c.node(follower).status().snapshot_index > 0);
}

// Snapshots of several megabytes (decision 0052): the leader prunes files it
// may be sending (pinned, unlinked whole) and the others in steps; the
// follower adopts them on its I/O thread and prunes through its background
// thread.  Every node ends with its kept snapshots only, nothing half deleted.
TEST_CASE("a follower is brought back by snapshots of several megabytes, and no node keeps more") {
    TestCluster c(3);
    c.snapshot_every = 20;
    c.snapshot_trailing = 5;
    std::map<std::uint64_t, std::string> acked;
    constexpr std::size_t kPadding = 50 * 1000;  // snapshots of 1-6 MB
    const NodeId follower = bring_back_a_wiped_follower(c, acked, "e", kPadding, 60);
    CHECK(c.sm(follower).restores() >= 1);
    for (int i = 120; i < 180; ++i)  // more snapshots everywhere, more pruning
        put(c, acked, "e", i, kPadding);
    REQUIRE(eventually([&] { return all_applied(c, {1, 2, 3}, acked); }));
    std::vector<std::string> dirs;
    for (NodeId id = 1; id <= 3; ++id) {
        dirs.push_back(c.options(id).data_dir + "/snapshots");
        c.stop(id);  // its background thread finishes its deletions
    }
    for (const std::string& dir : dirs) {
        INFO(dir);
        std::size_t snaps = 0;
        for (const auto& e : std::filesystem::directory_iterator(dir)) {
            const std::string name = e.path().filename().string();
            if (e.is_directory()) continue;  // incoming/
            CHECK(name.find(".tmp") == std::string::npos);
            if (name.size() > 5 && name.substr(name.size() - 5) == ".snap") ++snaps;
        }
        CHECK(snaps >= 1);
        CHECK(snaps <= runtime::kSnapshotsKept + 1);  // and the newest if unflushed
    }
}

TEST_CASE("a joiner learns the cluster id from its leader, gets a snapshot, and keeps both") {
    TestCluster c(3, 1);
    c.tls = GENERATE(false, true);
    INFO("tls " << c.tls);
    c.snapshot_every = 20;
    c.snapshot_trailing = 5;
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    std::map<std::uint64_t, std::string> acked;
    for (int i = 0; i < 60; ++i) put(c, acked, "j", i);
    REQUIRE(eventually([&] { return c.node(c.leader()).status().snapshot_index > 20; }));
    c.start(4, /*join=*/true);
    CHECK(c.node(4).status().cluster_id.empty());  // not known until the leader says hello
    MemberSpec learner = c.spec(4);
    learner.voter = false;
    REQUIRE(c.node(c.leader()).add_member(learner).get().ok());
    REQUIRE(eventually([&] { return all_applied(c, {4}, acked); }));
    CHECK(c.sm(4).restores() >= 1);
    CHECK(c.node(4).status().cluster_id == c.cluster_id);
    REQUIRE(c.node(c.leader()).promote_member(4).get().ok());
    for (int i = 60; i < 80; ++i) put(c, acked, "j", i);
    // Restarted, it knows its cluster from its data dir alone.
    c.stop(4);
    c.start(4, /*join=*/true);
    CHECK(c.node(4).status().cluster_id == c.cluster_id);
    for (int i = 80; i < 90; ++i) put(c, acked, "j", i);
    REQUIRE(eventually([&] { return all_applied(c, {1, 2, 3, 4}, acked); }));
}

TEST_CASE("stop(true) on the leader hands leadership to another voter before stopping") {
    TestCluster c(3);
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    std::map<std::uint64_t, std::string> acked;
    for (int i = 0; i < 10; ++i) put(c, acked, "a", i);
    const NodeId old_leader = c.leader();
    const std::uint64_t old_term = c.node(old_leader).status().term;
    c.node(old_leader).stop(true);
    // The transfer finished before stop returned: the stopped node saw a
    // leader of a later term (a plain stop leaves it a leader in old_term).
    const NodeStatus stopped = c.node(old_leader).status();
    CHECK(stopped.role != Role::leader);
    CHECK(stopped.term > old_term);
    CHECK(stopped.leader_id != 0);
    CHECK(stopped.leader_id != old_leader);
    c.stop(old_leader);
    CHECK(c.leader() != old_leader);
}
