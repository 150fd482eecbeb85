// Unit tests of the simulator's own parts: if the simulated disk, network
// or trace were wrong, the simulator could pass a broken core.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rng.hpp"
#include "sim_disk.hpp"
#include "sim_network.hpp"
#include "trace.hpp"

using keel::raft::Entry;
using keel::raft::HardState;
using keel::raft::Message;
using keel::sim::DiskOp;
using keel::sim::DiskOpKind;
using keel::sim::Rng;
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
