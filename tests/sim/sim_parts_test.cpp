// Unit tests of the simulator's own parts: if the simulated disk, network
// or trace were wrong, the simulator could pass a broken core.
#include <string>
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
using keel::sim::SimNetwork;
using keel::sim::SwarmParams;
using keel::sim::Trace;

namespace {

DiskOp batch(std::vector<Entry> entries, std::optional<HardState> hs = std::nullopt) {
    DiskOp op;
    op.kind = DiskOpKind::batch;
    op.entries = std::move(entries);
    op.hard_state = hs;
    return op;
}

Entry entry(keel::raft::Index index, keel::raft::Term term) {
    return Entry{term, index, keel::raft::EntryType::normal,
                 std::string("v") + std::to_string(index)};
}

}  // namespace

TEST_CASE("one seed gives one sequence, and split streams differ", "[sim]") {
    Rng a(42), b(42);
    for (int i = 0; i < 100; ++i) REQUIRE(a.next() == b.next());
    Rng root(7);
    Rng x = root.split(1), y = root.split(2);
    CHECK(x.next() != y.next());
}

TEST_CASE("a crash loses the writes not yet durable and keeps the durable ones", "[sim]") {
    SwarmParams p;
    p.fsync_min_us = 10;
    p.fsync_max_us = 10;
    SimDisk disk(p, /*lying=*/false, Rng(1));
    const DiskOp first = disk.submit(batch({entry(1, 1), entry(2, 1)}, HardState{1, 1, 0}), 0);
    disk.submit(batch({entry(3, 1)}, HardState{2, 2, 0}), 0);
    DiskOp done;
    REQUIRE_FALSE(disk.complete(first.id, &done).has_value());
    disk.crash();
    CHECK(disk.durable().last_index() == 2);
    CHECK(disk.durable().hard_state == HardState{1, 1, 0});
    CHECK(disk.idle());
    // Nothing after the restart waits for the lost write.
    CHECK(disk.last_completed() == disk.last_submitted());
    CHECK(disk.restored().entries.size() == 2);
}

TEST_CASE("disk writes complete in order, each after the previous one", "[sim]") {
    SwarmParams p;
    p.fsync_min_us = 1;
    p.fsync_max_us = 1000;
    SimDisk disk(p, false, Rng(3));
    std::uint64_t last_done = 0;
    for (int i = 1; i <= 50; ++i) {
        const DiskOp& op = disk.submit(batch({entry(i, 1)}), 0);
        CHECK(op.done_us >= last_done);
        last_done = op.done_us;
    }
}

TEST_CASE("an append truncates a conflicting suffix and refuses a gap", "[sim]") {
    SwarmParams p;
    SimDisk disk(p, false, Rng(1));
    DiskOp done;
    auto a = disk.submit(batch({entry(1, 1), entry(2, 1), entry(3, 1)}), 0).id;
    REQUIRE_FALSE(disk.complete(a, &done).has_value());
    auto b = disk.submit(batch({entry(2, 2)}), 0).id;
    REQUIRE_FALSE(disk.complete(b, &done).has_value());
    CHECK(disk.durable().last_index() == 2);
    CHECK(disk.durable().term_at(2) == 2u);
    auto c = disk.submit(batch({entry(5, 2)}), 0).id;
    CHECK(disk.complete(c, &done).has_value());
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
    const keel::sim::DurableState& durable(keel::raft::NodeId) const override { return durable_; }
    keel::raft::Index commit_known() const override { return 0; }
    keel::raft::Term committed_term(keel::raft::Index) const override { return 0; }
    bool propose(keel::raft::NodeId) override { return false; }
    void crash(keel::raft::NodeId id) override {
        log.push_back(std::string("crash ") + std::to_string(id));
    }
    void restart(keel::raft::NodeId) override {}
    void cut(keel::raft::NodeId, keel::raft::NodeId) override {}
    void reconnect() override {}

private:
    keel::sim::DurableState durable_;
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
