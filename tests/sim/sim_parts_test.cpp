// Unit tests of the simulator's own parts: if the simulated disk, network
// or trace were wrong, the simulator could pass a broken core.
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "rng.hpp"
#include "scenario.hpp"
#include "sim_disk.hpp"
#include "sim_network.hpp"
#include "trace.hpp"

using keel::raft::Entry;
using keel::raft::HardState;
using keel::raft::Message;
using keel::sim::DiskOp;
using keel::sim::DiskOpKind;
using keel::sim::Rng;
using keel::sim::Script;
using keel::sim::ScriptHost;
using keel::sim::ScriptStep;
using keel::sim::SimDisk;
using keel::sim::SimDrive;
using keel::sim::SimNetwork;
using keel::sim::SwarmParams;
using keel::sim::Trace;

namespace {

Entry entry(keel::raft::Index index, keel::raft::Term term) {
    return Entry{term, index, keel::raft::EntryType::normal,
                 std::string("v") + std::to_string(index)};
}

DiskOp append(std::vector<Entry> entries, keel::raft::WriteId write = 1) {
    DiskOp op;
    op.kind = DiskOpKind::append;
    op.entries = std::move(entries);
    op.write_id = write;
    return op;
}

DiskOp wal_op(DiskOpKind kind, keel::raft::Index index) {
    DiskOp op;
    op.kind = kind;
    op.index = index;
    return op;
}

// Completes the head of the WAL's queue; fails the test on a storage error.
void complete_next(SimDisk& disk) {
    REQUIRE(disk.head(false) != nullptr);
    DiskOp done;
    REQUIRE_FALSE(disk.complete(disk.head(false)->id, &done).has_value());
}

SwarmParams fixed_latency() {
    SwarmParams p;
    p.fsync_min_us = p.fsync_max_us = 10;
    return p;
}

}  // namespace

TEST_CASE("one seed gives one sequence, and split streams differ", "[sim]") {
    Rng a(42), b(42);
    for (int i = 0; i < 100; ++i) REQUIRE(a.next() == b.next());
    Rng root(7);
    Rng x = root.split(1), y = root.split(2);
    CHECK(x.next() != y.next());
}

TEST_CASE("a crash loses the WAL writes not yet durable and keeps the durable ones", "[sim]") {
    const SwarmParams p = fixed_latency();  // torn_write_p = 0: nothing of the lost write stays
    SimDrive drive(p, /*lying=*/false, Rng(1));
    SimDisk& disk = drive.group(0);
    disk.submit(append({entry(1, 1), entry(2, 1)}), 0);
    disk.submit(append({entry(3, 1)}), 0);
    complete_next(disk);
    disk.crash();
    CHECK(disk.durable().last_index() == 2);
    CHECK(disk.wal_idle());
    // Nothing after the restart waits for the lost write.
    CHECK(disk.wal_completed_through(disk.wal_last_submitted()));
    CHECK(disk.restored().entries.size() == 2);
}

TEST_CASE("the hard state is durable at once, ahead of WAL writes queued before it", "[sim]") {
    const SwarmParams p = fixed_latency();  // the disk keeps a reference
    SimDrive drive(p, false, Rng(1));
    SimDisk& disk = drive.group(0);
    disk.submit(append({entry(1, 1), entry(2, 1)}), 0);
    disk.save_hard_state(HardState{2, 1, 2});
    // The runtime's order: a term change is saved synchronously while the
    // WAL still holds the append.  A crash now keeps the new hard state.
    disk.crash();
    CHECK(disk.raw().hard_state == HardState{2, 1, 2});
    CHECK(disk.durable().last_index() == 0);
    // Recovery clamps the commit index into the log (the checkers report a
    // saved commit past the log as a violation before any restart).
    CHECK(disk.restored().hard_state.commit == 0);
}

TEST_CASE("WAL writes complete in order, each after the previous one", "[sim]") {
    SwarmParams p;
    p.fsync_min_us = 1;
    p.fsync_max_us = 1000;
    SimDrive drive(p, false, Rng(3));
    SimDisk& disk = drive.group(0);
    std::uint64_t last_done = 0;
    for (keel::raft::Index i = 1; i <= 50; ++i) {
        const DiskOp& op = disk.submit(append({entry(i, 1)}), 0);
        CHECK(op.done_us >= last_done);
        last_done = op.done_us;
    }
    // A truncation completes after the append queued before it, whatever its latency.
    const DiskOp& t = disk.submit(wal_op(DiskOpKind::truncate, 10), 0);
    CHECK(t.done_us >= last_done);
}

TEST_CASE("a truncation and the append after it are separate WAL writes", "[sim]") {
    const SwarmParams p = fixed_latency();  // the disk keeps a reference
    SimDrive drive(p, false, Rng(1));
    SimDisk& disk = drive.group(0);
    disk.submit(append({entry(1, 1), entry(2, 1), entry(3, 1)}), 0);
    complete_next(disk);
    disk.submit(wal_op(DiskOpKind::truncate, 1), 0);
    CHECK(disk.wal_next_submitted() == 2);
    disk.submit(append({entry(2, 2)}), 0);
    complete_next(disk);  // the truncation alone
    CHECK(disk.durable().last_index() == 1);
    complete_next(disk);
    CHECK(disk.durable().last_index() == 2);
    CHECK(disk.durable().term_at(2) == 2u);
}

TEST_CASE("a crash may tear the WAL write in progress", "[sim]") {
    SwarmParams p = fixed_latency();
    p.torn_write_p = 1;
    std::set<keel::raft::Index> lasts;
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
        SimDrive drive(p, false, Rng(seed));
        SimDisk& disk = drive.group(0);
        disk.submit(append({entry(1, 1)}), 0);
        complete_next(disk);
        disk.submit(append({entry(2, 1), entry(3, 1), entry(4, 1)}), 0);
        disk.submit(append({entry(5, 1)}), 0);
        disk.crash();
        const keel::raft::Index last = disk.durable().last_index();
        CHECK(last >= 1);
        CHECK(last <= 4);  // only the write in progress, a prefix of it
        lasts.insert(last);
    }
    CHECK(lasts.size() == 4);  // every prefix, from none of it to all of it
}

TEST_CASE("groups on one drive share its fsyncs: writes queued during one share the next",
          "[sim]") {
    const SwarmParams p = fixed_latency();
    SimDrive drive(p, false, Rng(1), /*batching=*/true);
    SimDisk& a = drive.group(0);
    SimDisk& b = drive.group(1);
    const DiskOp& first = a.submit(append({entry(1, 1)}), 0);  // being synced
    const std::uint64_t first_batch = first.batch;
    const DiskOp& second = b.submit(append({entry(1, 1)}), 0);  // opens the next batch
    const std::uint64_t second_batch = second.batch, second_done = second.done_us;
    const DiskOp& third = a.submit(append({entry(2, 1)}), 0);  // rides on it
    CHECK(first_batch != second_batch);
    CHECK(third.batch == second_batch);
    CHECK(third.done_us == second_done);
    CHECK(drive.batches() == 2);
    CHECK(drive.shared_batches() == 1);
    CHECK(a.wal_last_submitted() == third.id);
    CHECK(b.wal_last_submitted() == second.id);
    // Completions run in queue order, across groups, each into its group's files.
    complete_next(a);
    complete_next(b);
    CHECK(b.durable().last_index() == 1);
    CHECK(a.durable().last_index() == 1);
    complete_next(a);
    CHECK(a.durable().last_index() == 2);
}

TEST_CASE("a drive's crash loses the unsynced writes of every group at once", "[sim]") {
    const SwarmParams p = fixed_latency();  // torn_write_p = 0
    SimDrive drive(p, false, Rng(1), /*batching=*/true);
    SimDisk& a = drive.group(0);
    SimDisk& b = drive.group(1);
    a.submit(append({entry(1, 1)}), 0);
    b.submit(append({entry(1, 1)}), 0);
    complete_next(a);
    a.submit(append({entry(2, 1)}), 0);
    b.submit(append({entry(2, 1)}), 0);
    drive.crash();
    CHECK(a.durable().last_index() == 1);
    CHECK(b.durable().last_index() == 0);
    CHECK(drive.wal_idle());
    CHECK(a.wal_next_submitted() == 2);
    CHECK(b.wal_next_submitted() == 1);
    CHECK(drive.wal_completed_through(a.wal_last_submitted()));
    CHECK(drive.wal_completed_through(b.wal_last_submitted()));
}

TEST_CASE("a torn batch keeps a prefix of its writes in queue order, across groups", "[sim]") {
    SwarmParams p = fixed_latency();
    p.torn_write_p = 1;
    std::set<std::pair<keel::raft::Index, keel::raft::Index>> outcomes;
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
        SimDrive drive(p, false, Rng(seed), /*batching=*/true);
        SimDisk& a = drive.group(0);
        SimDisk& b = drive.group(1);
        a.submit(append({entry(1, 1)}), 0);
        b.submit(append({entry(1, 1), entry(2, 1)}), 0);  // the next batch: b's, then a's
        a.submit(append({entry(2, 1)}), 0);
        complete_next(a);  // the batch of b's and a's writes is now in progress
        drive.crash();
        const keel::raft::Index last_a = a.durable().last_index();
        const keel::raft::Index last_b = b.durable().last_index();
        // a's write comes after b's in the batch: it survives only if all of b's did.
        if (last_a == 2) CHECK(last_b == 2);
        outcomes.insert({last_a, last_b});
    }
    CHECK(outcomes.size() == 4);  // b: none, 1, 2 of its records; a's with all of b's
}

TEST_CASE("recovery drops an old log a snapshot replaced and finishes the reset", "[sim]") {
    const SwarmParams p = fixed_latency();  // the disk keeps a reference
    SimDrive drive(p, false, Rng(1));
    SimDisk& disk = drive.group(0);
    disk.submit(append({entry(1, 1), entry(2, 1), entry(3, 1)}), 0);
    complete_next(disk);
    const keel::raft::SnapshotMeta meta{2, 2, {}};  // 2/t2: not the 2/t1 the WAL holds
    disk.install_snapshot_file(meta, "data");
    disk.save_snapshot_marker(meta);
    disk.submit(wal_op(DiskOpKind::reset, 3), 0);
    disk.crash();  // before the reset
    CHECK(disk.durable().last_index() == 2);
    CHECK_FALSE(disk.durable().term_at(3));
    CHECK(disk.raw().hard_state.commit == 2);
    const keel::raft::RestoredState r = disk.recover();
    CHECK(r.entries.empty());
    REQUIRE(r.snapshot);
    CHECK(r.snapshot->index == 2);
    CHECK(disk.raw().wal.empty());
    CHECK(disk.wal_next_submitted() == 3);
}

TEST_CASE("recovery finishes the reset when the old log ends right at the snapshot", "[sim]") {
    const SwarmParams p = fixed_latency();  // the disk keeps a reference
    SimDrive drive(p, false, Rng(1));
    SimDisk& disk = drive.group(0);
    disk.submit(append({entry(1, 1), entry(2, 1)}), 0);
    complete_next(disk);
    const keel::raft::SnapshotMeta meta{2, 2, {}};  // 2/t2 over the WAL's 2/t1
    disk.install_snapshot_file(meta, "data");
    disk.crash();  // before the marker and the reset
    (void)disk.recover();
    // Had the record 2/t1 stayed, every record appended after it would be
    // void at the next start.
    disk.submit(append({entry(3, 2)}), 0);
    complete_next(disk);
    CHECK(disk.durable().last_index() == 3);
    CHECK(disk.restored().entries.size() == 1);
}

TEST_CASE("a snapshot file is written on its own queue, apart from the WAL's", "[sim]") {
    const SwarmParams p = fixed_latency();  // the disk keeps a reference
    SimDrive drive(p, false, Rng(1));
    SimDisk& disk = drive.group(0);
    disk.submit(append({entry(1, 1), entry(2, 1)}), 0);
    complete_next(disk);
    disk.submit(append({entry(3, 1)}), 0);
    DiskOp file;
    file.kind = DiskOpKind::snapshot_file;
    file.meta = keel::raft::SnapshotMeta{2, 1, {}};
    file.data = "state";
    const std::uint64_t id = disk.submit(file, 0).id;
    REQUIRE(disk.head(true) != nullptr);
    DiskOp done;
    REQUIRE_FALSE(disk.complete(id, &done).has_value());  // before the WAL's queued append
    CHECK(disk.durable().snapshot_index() == 2);
    CHECK(disk.raw().wal.empty());  // compacted behind the snapshot
    complete_next(disk);
    CHECK(disk.durable().last_index() == 3);
}

TEST_CASE("FIFO links never let a message overtake an earlier one", "[sim]") {
    SwarmParams p;
    p.fifo_links = true;
    p.delay_min_us = 1;
    p.delay_max_us = 10'000;
    SimNetwork net(p, keel::sim::Bug::none, Rng(9));
    Message m;
    m.from = 1;
    m.to = 2;
    std::uint64_t last_arrival = 0;
    for (std::uint64_t now = 0; now < 1000; now += 3) {
        for (std::uint64_t d : net.route(m, now)) {
            CHECK(now + d >= last_arrival);
            last_arrival = now + d;
        }
    }
}

TEST_CASE("partitions block the links they name, in the directions they name", "[sim]") {
    SwarmParams p;
    SimNetwork net(p, keel::sim::Bug::none, Rng(1));
    net.partition({1}, {1, 2, 3});
    CHECK(net.blocked(1, 2));
    CHECK(net.blocked(3, 1));
    CHECK_FALSE(net.blocked(2, 3));
    net.heal();
    CHECK_FALSE(net.blocked(1, 2));
}

TEST_CASE("the trace keeps exactly its last kTraceLinesMax lines, oldest first", "[sim]") {
    Trace t;
    const std::size_t n = Trace::kTraceLinesMax + 17;
    for (std::size_t i = 0; i < n; ++i) t.add(i, std::string("line ") + std::to_string(i));
    const auto lines = t.last_lines();
    REQUIRE(lines.size() == Trace::kTraceLinesMax);
    CHECK(lines.front().find("line 17") != std::string::npos);
    CHECK(lines.back().find(std::string("line ") + std::to_string(n - 1)) != std::string::npos);
    CHECK(t.lines_total() == n);
    Trace u;
    for (std::size_t i = 0; i < n; ++i) u.add(i, std::string("line ") + std::to_string(i));
    CHECK(u.hash() == t.hash());
}

namespace {

// A host whose clock the test moves; it records what steps did.
class FakeHost final : public ScriptHost {
public:
    std::uint64_t now = 0;
    std::vector<std::string> log;
    bool flag = false;

    std::uint64_t now_us() const override { return now; }
    void trace(const std::string& line) override { log.push_back(line); }
    const keel::raft::Core* core(keel::raft::NodeId) const override { return nullptr; }
    keel::sim::DurableState durable(keel::raft::NodeId) const override {
        return keel::sim::DurableState(files_);
    }
    keel::raft::Index commit_known() const override { return 0; }
    keel::raft::Term committed_term(keel::raft::Index) const override { return 0; }
    void hold_disk(keel::raft::NodeId) override {}
    void release_disk(keel::raft::NodeId) override {}
    bool propose(keel::raft::NodeId) override { return false; }
    void crash(keel::raft::NodeId id) override {
        log.push_back(std::string("crash ") + std::to_string(id));
    }
    void restart(keel::raft::NodeId) override {}
    void cut(keel::raft::NodeId, keel::raft::NodeId) override {}
    void reconnect() override {}

private:
    keel::sim::DiskFiles files_;
};

}  // namespace

TEST_CASE("script: steps run in order, each once its condition holds") {
    FakeHost h;
    Script s({
        {"first", [](const ScriptHost&) { return true; }, nullptr,
         [](ScriptHost& host) { host.crash(1); }},
        {"second", [&h](const ScriptHost&) { return h.flag; }, nullptr,
         [](ScriptHost& host) { host.crash(2); }},
    });
    CHECK_FALSE(s.poll(h));
    CHECK_FALSE(s.done());
    CHECK(h.log == std::vector<std::string>{"SCRIPT 1: first", "crash 1"});
    h.flag = true;
    CHECK_FALSE(s.poll(h));
    CHECK(s.done());
    CHECK(h.log.back() == "crash 2");
}

TEST_CASE("script: a step that never becomes ready fails the run after the wait limit") {
    FakeHost h;
    Script s({{"never", [](const ScriptHost&) { return false; }, nullptr, nullptr}});
    h.now = Script::kStepWaitUsMax;
    CHECK_FALSE(s.poll(h));  // at the limit: still waiting
    h.now = Script::kStepWaitUsMax + 1;
    auto off = s.poll(h);
    REQUIRE(off);
    CHECK(off->rfind("Scenario: step 1 (never) did not happen", 0) == 0);
}

TEST_CASE("script: a failed check stops the run before the step acts") {
    FakeHost h;
    Script s({{"checked", [](const ScriptHost&) { return true; },
               [](const ScriptHost&) { return std::string("wrong term"); },
               [](ScriptHost& host) { host.crash(1); }}});
    auto off = s.poll(h);
    REQUIRE(off);
    CHECK(off->rfind("Scenario: off script at step 1 (checked): wrong term", 0) == 0);
    CHECK(h.log.empty());
    CHECK_FALSE(s.done());
}
