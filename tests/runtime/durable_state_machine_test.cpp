// Durable state machines (StateMachine::applied_index, keel/state_machine.hpp):
// keel applies only what follows the state machine's own durable point at
// open, refuses a point its log cannot back, compacts its log behind that
// point without snapshots, and still sends a lagging follower a snapshot.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <string>

#include "cluster_support.hpp"

using namespace keel;
using namespace keel::test;

namespace {

// A RecordingStateMachine that calls everything it applied durable (its
// "files" are the test's: `durable_from` sets what it reports at open, as
// if it had kept that much), and counts entries it receives at or below
// the point it reported when it was created.
class DurableStateMachine : public RecordingStateMachine {
public:
    explicit DurableStateMachine(std::uint64_t durable_from = 0)
        : opened_at_(durable_from), durable_(durable_from) {}

    void apply(const std::vector<CommittedEntry>& entries,
               std::vector<std::string>& results) override {
        for (const CommittedEntry& e : entries)
            if (e.index <= opened_at_) replayed_.fetch_add(1);
        if (!entries.empty()) first_.compare_exchange_strong(zero_, entries.front().index);
        RecordingStateMachine::apply(entries, results);
        if (!entries.empty()) durable_.store(entries.back().index);
    }
    Status restore(SnapshotReader& reader) override {
        Status s = RecordingStateMachine::restore(reader);
        if (s.ok()) durable_.store(reader.index());
        return s;
    }
    std::uint64_t applied_index() const override { return durable_.load(); }

    int replayed() const { return replayed_.load(); }
    std::uint64_t first_received() const { return first_.load(); }

private:
    const std::uint64_t opened_at_;
    std::atomic<std::uint64_t> durable_;
    std::atomic<int> replayed_{0};
    std::uint64_t zero_ = 0;
    std::atomic<std::uint64_t> first_{0};
};

NodeOptions single(const std::string& dir) {
    NodeOptions o;
    o.id = 1;
    o.data_dir = dir;
    o.snapshot_every_entries = 0;  // a durable state machine needs none
    return o;
}

std::uint64_t write(Node& node, int n, const std::string& prefix, std::size_t size = 8) {
    std::uint64_t last = 0;
    for (int i = 0; i < n; ++i) {
        std::string data = prefix + std::to_string(i);
        data.resize(std::max(size, data.size()), '.');
        ProposeResult r = node.propose(data).get();
        REQUIRE(r.status.ok());
        last = r.index;
    }
    return last;
}

}  // namespace

TEST_CASE("after a restart, a state machine reporting applied_index N receives no entry <= N") {
    TempDir dir;
    std::uint64_t last = 0;
    {
        auto sm = std::make_shared<DurableStateMachine>();
        auto node = Node::open(single(dir.path()), sm);
        REQUIRE(node.ok());
        last = write(*node.value(), 40, "a");
        node.value()->stop();
    }
    // It kept entries up to `kept` (a crash lost the rest of its own writes).
    const std::uint64_t kept = last - 15;
    auto sm = std::make_shared<DurableStateMachine>(kept);
    auto node = Node::open(single(dir.path()), sm);
    REQUIRE(node.ok());
    REQUIRE(node.value()->read_index(true).get().status.ok());
    CHECK(sm->replayed() == 0);
    CHECK(sm->first_received() == kept + 1);
    auto applied = sm->applied();
    for (std::uint64_t i = kept + 1; i <= last; ++i) CHECK(applied.count(i) == 1);
    CHECK(node.value()->status().applied_index > last);  // and the new term's no-op
    // And it goes on.
    const std::uint64_t more = write(*node.value(), 5, "b");
    CHECK(more > last + 5);
    CHECK(sm->replayed() == 0);
}

TEST_CASE("a state machine that holds every entry is given none again at open") {
    TempDir dir;
    std::uint64_t last = 0;
    {
        auto node = Node::open(single(dir.path()), std::make_shared<DurableStateMachine>());
        REQUIRE(node.ok());
        last = write(*node.value(), 10, "a");
    }
    auto sm = std::make_shared<DurableStateMachine>(last);
    auto node = Node::open(single(dir.path()), sm);
    REQUIRE(node.ok());
    REQUIRE(node.value()->read_index(true).get().status.ok());
    CHECK(sm->applied().empty());
    CHECK(node.value()->status().applied_index >= last);
}

TEST_CASE("an applied_index beyond the log fails open with an error, not an assertion") {
    TempDir dir;
    std::uint64_t last = 0;
    {
        auto node = Node::open(single(dir.path()), std::make_shared<DurableStateMachine>());
        REQUIRE(node.ok());
        last = write(*node.value(), 5, "a");
    }
    auto beyond = Node::open(single(dir.path()), std::make_shared<DurableStateMachine>(last + 100));
    REQUIRE_FALSE(beyond.ok());
    CHECK(beyond.status().code() == ErrorCode::invalid_argument);
    CHECK(beyond.status().message().find("beyond the last index") != std::string::npos);

    TempDir empty;
    auto stranger = Node::open(single(empty.path()), std::make_shared<DurableStateMachine>(3));
    REQUIRE_FALSE(stranger.ok());
    CHECK(stranger.status().message().find("holds no log") != std::string::npos);

    // The data dir is untouched by the refusals.
    auto node = Node::open(single(dir.path()), std::make_shared<DurableStateMachine>(last));
    REQUIRE(node.ok());
}

TEST_CASE("log compaction follows applied_index, with no snapshot, and survives a restart") {
    TempDir dir;
    NodeOptions o = single(dir.path());
    o.wal_segment_bytes = 64 << 10;
    std::uint64_t last = 0;
    {
        auto sm = std::make_shared<DurableStateMachine>();
        auto node = Node::open(o, sm);
        REQUIRE(node.ok());
        // About 24 segments' worth of entries.
        last = write(*node.value(), 1500, "c", 1000);
        REQUIRE(eventually([&] { return node.value()->status().wal.segments <= 3; }));
        CHECK(node.value()->status().snapshot_index == 0);
        CHECK(sm->snapshots_taken() == 0);
    }
    // Reopened from the compacted log: the state machine's own state
    // stands in for the entries dropped.
    {
        auto sm = std::make_shared<DurableStateMachine>(last);
        auto node = Node::open(o, sm);
        REQUIRE(node.ok());
        CHECK(node.value()->status().wal.segments <= 3);
        const std::uint64_t more = write(*node.value(), 3, "d");
        CHECK(more > last + 3);
        CHECK(sm->replayed() == 0);
        last = more;
    }
    // A state machine that lost what it reported durable cannot be opened
    // on this log (and is told why), unlike one that kept it.
    auto lost = Node::open(o, std::make_shared<DurableStateMachine>(0));
    REQUIRE_FALSE(lost.ok());
    CHECK(lost.status().code() == ErrorCode::corruption);
    CHECK(lost.status().message().find("lost state it reported durable") != std::string::npos);
    auto kept = Node::open(o, std::make_shared<DurableStateMachine>(last));
    REQUIRE(kept.ok());
}

TEST_CASE("with a durable state machine and no snapshots, a lagging follower gets one") {
    TestCluster c(3);
    c.snapshot_every = 0;
    c.snapshot_trailing = 8;  // the leader drops its log soon behind the durable point
    c.state_machine_factory = [] { return std::make_shared<DurableStateMachine>(); };
    for (NodeId id : {1, 2, 3}) c.start(id);
    const NodeId leader = c.leader();
    const NodeId lagging = leader == 3 ? 2 : 3;
    c.stop(lagging);
    for (int i = 0; i < 100; ++i) {
        std::string data("e");
        data += std::to_string(i);
        c.propose(data);
    }
    const std::uint64_t target = c.node(leader).status().commit_index;
    REQUIRE(eventually([&] { return c.node(leader).status().first_index > 50; }));

    c.start(lagging);
    REQUIRE(eventually([&] { return c.node(lagging).status().applied_index >= target; }));
    CHECK(c.sm(lagging).restores() == 1);
    CHECK(c.node(lagging).status().snapshot_index > 0);
    auto& sm = dynamic_cast<DurableStateMachine&>(c.sm(lagging));
    CHECK(sm.applied_index() >= target);
}
