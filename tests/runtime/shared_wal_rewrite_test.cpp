// Rewriting groups forward on the shared WAL (runtime/shared_wal.hpp,
// RewritePolicy; decision 0024): groups rewritten forward free the oldest
// segments and come back exactly; a group with a write in flight or too large
// a live log is not rewritten; a hot group next to many idle ones keeps the
// segment count bounded.
#include <catch2/catch.hpp>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "../common/temp_dir.hpp"
#include "runtime/shared_wal.hpp"
#include "shared_wal_support.hpp"

using namespace keel;
using namespace keel::runtime;
using namespace keel::runtime::shared_wal_support;

namespace {

std::unique_ptr<SharedWal> open_rewriting(const std::string& dir, std::uint64_t segment_bytes,
                                          RewritePolicy policy) {
    wal::Options o;
    o.segment_bytes = segment_bytes;
    o.preallocate = false;
    auto s = SharedWal::open(dir, o, std::move(policy));
    REQUIRE(s.ok());
    return std::move(s.value());
}

RewritePolicy manual_policy(std::uint64_t above_segments) {
    RewritePolicy p;
    p.above_segments = above_segments;
    return p;
}

}  // namespace

TEST_CASE("groups rewritten forward free the oldest segments and come back exactly",
          "[shared_wal]") {
    keel::test::TempDir dir;
    const std::string wal_dir = dir.path() + "/wal";
    const std::string payload(200, 'p');
    {
        auto shared = open_rewriting(wal_dir, 4096, manual_policy(2));
        auto hot = open_group(*shared, 1);
        auto idle = open_group(*shared, 2);
        auto reset_only = open_group(*shared, 3);
        // Group 2: a suffix replaced by a new leader's entry (4 and 5 void).
        append(*idle, {entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")});
        append(*idle, {entry(4, 1, "d"), entry(5, 1, "e")});
        append(*idle, {entry(4, 2, "D")});
        REQUIRE(idle->save_hard_state(raft::HardState{2, 7, 3}).ok());
        // Group 3: a snapshot from its leader, nothing since.
        reset(*reset_only, 10, 3);
        for (raft::Index i = 1; i <= 120; ++i) append(*hot, {entry(i, 1, payload)});
        const std::uint64_t segments = shared->wal().stats().segments;
        REQUIRE(segments > 5);
        // The hot group compacts behind its snapshot; groups 2 and 3 pin.
        REQUIRE(hot->compact_through(100, hot->generation()).ok());
        CHECK(shared->wal().stats().segments == segments);
        REQUIRE(shared->rewrite_pass().ok());
        CHECK(shared->rewritten_groups() == 2);
        CHECK(shared->wal().stats().segments <= 3);
        CHECK(shared->wal().first_index() > 1);
        // The rewritten group goes on: a new leader replaces entry 3 again.
        append(*idle, {entry(3, 3, "C")});
        CHECK(idle->next_index() == 4);
        CHECK(reset_only->next_index() == 11);
    }
    auto shared = open_rewriting(wal_dir, 4096, manual_policy(2));
    auto hot = open_group(*shared, 1);
    auto idle = open_group(*shared, 2);
    auto reset_only = open_group(*shared, 3);
    CHECK(log_of(*idle, 0, 0) == std::vector<std::string>{"1@1:a", "2@1:b", "3@3:C"});
    CHECK(idle->next_index() == 4);
    CHECK(idle->hard_state() == raft::HardState{2, 7, 3});
    CHECK(reset_only->next_index() == 11);
    CHECK(log_of(*reset_only, 10, 3).empty());
    CHECK(hot->first_index() == 101);
    const std::vector<std::string> hot_log = log_of(*hot, 100, 1);
    REQUIRE(hot_log.size() == 20);
    CHECK(hot_log.front() == "101@1:" + payload);
}

TEST_CASE("a group with a write in flight or too large a live log is not rewritten",
          "[shared_wal]") {
    keel::test::TempDir dir;
    const std::string payload(200, 'p');
    RewritePolicy policy = manual_policy(1);
    policy.max_image_bytes = 1000;
    auto shared = open_rewriting(dir.path() + "/wal", 4096, policy);
    auto big = open_group(*shared, 1);
    auto small = open_group(*shared, 2);
    append(*small, {entry(1, 1, "s")});
    // Group 1 holds more than 1000 live bytes: it keeps the oldest segment,
    // so rewriting group 2 would free nothing and is not done.
    for (raft::Index i = 1; i <= 40; ++i) append(*big, {entry(i, 1, payload)});
    const std::uint64_t segments = shared->wal().stats().segments;
    REQUIRE(segments > 2);
    REQUIRE(shared->rewrite_pass().ok());
    CHECK(shared->rewritten_groups() == 0);
    CHECK(shared->wal().stats().segments == segments);
    // A write in flight (queued, not written): not now.
    std::vector<raft::Entry> more{entry(2, 1, "t")};
    std::promise<Status> done;
    REQUIRE(
        small->append(more, wal::Wal::Writer::caller, [&](Status s) { done.set_value(s); }).ok());
    auto* rewritable = dynamic_cast<RewritableLog*>(small.get());
    REQUIRE(rewritable != nullptr);
    CHECK_FALSE(rewritable->may_rewrite());
    auto queued = rewritable->rewrite_forward(1 << 20, [](Status, std::uint64_t) {});
    REQUIRE(queued.ok());
    CHECK_FALSE(queued.value());
    // false when the flusher is writing a batch: it writes this one next.
    (void)shared->wal().write_queued();
    REQUIRE(done.get_future().get().ok());
    // The write leaves the store's count just after its callback ran.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!rewritable->may_rewrite() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    CHECK(rewritable->may_rewrite());
}

TEST_CASE("a hot group next to many idle ones keeps the segment count bounded", "[shared_wal]") {
    // The pass runs when the WAL asks for it (the Host's background thread
    // in production; this test's loop here).
    constexpr GroupId kIdle = 999;
    constexpr std::uint64_t kAbove = 4;
    constexpr raft::Index kSnapshotEvery = 100;
    std::vector<std::function<void()>> due;
    std::mutex due_mu;
    RewritePolicy policy = manual_policy(kAbove);
    policy.run_in_background = [&](std::function<void()> pass) {
        std::lock_guard lock(due_mu);
        due.push_back(std::move(pass));
        return true;
    };
    keel::test::TempDir dir;
    auto shared = open_rewriting(dir.path() + "/wal", 16 * 1024, policy);
    std::vector<std::unique_ptr<LogStore>> idle;
    idle.reserve(kIdle);
    std::vector<std::promise<Status>> idle_done(kIdle);
    for (GroupId g = 0; g < kIdle; ++g) {
        idle.push_back(open_group(*shared, g + 2));
        std::vector<raft::Entry> e{entry(1, 1, "idle"), entry(2, 1, "idle")};
        REQUIRE(idle.back()
                    ->append(e, wal::Wal::Writer::flusher,
                             [&idle_done, g](Status s) { idle_done[g].set_value(s); })
                    .ok());
    }
    for (auto& d : idle_done) REQUIRE(d.get_future().get().ok());
    // What the WAL must hold whatever its age: the idle groups' live
    // records, and the hot group's two snapshot intervals (it compacts
    // behind the older kept snapshot).  A pass waits for the log to double
    // what the previous one left, so twice that, and the active segment.
    constexpr std::uint64_t kSegmentBytes = 16 * 1024;
    const std::uint64_t idle_bytes = shared->wal().stats().disk_bytes;
    const std::uint64_t hot_bytes = 2 * kSnapshotEvery * (200 + 64);
    const std::uint64_t bound = 2 * ((idle_bytes + hot_bytes) / kSegmentBytes + 2);
    auto hot = open_group(*shared, 1);
    const std::string payload(200, 'h');
    std::uint64_t max_segments = 0;
    for (raft::Index i = 1; i <= 2500; ++i) {
        append(*hot, {entry(i, 1, payload)});
        // A snapshot every kSnapshotEvery entries; the log is compacted
        // behind the older kept one, as the runtime does.
        if (i % kSnapshotEvery == 0 && i > kSnapshotEvery)
            REQUIRE(hot->compact_through(i - kSnapshotEvery, hot->generation()).ok());
        std::vector<std::function<void()>> passes;
        {
            std::lock_guard lock(due_mu);
            passes.swap(due);
        }
        for (auto& pass : passes) pass();
        max_segments = std::max(max_segments, shared->wal().stats().segments);
    }
    INFO("max segments " << max_segments << ", bound " << bound << ", rewritten "
                         << shared->rewritten_groups());
    // 2500 hot entries alone take about 38 segments.
    CHECK(max_segments <= bound);
    CHECK(shared->rewritten_groups() >= kIdle);
    // Every idle group still has its two entries.
    for (auto& g : idle) {
        CHECK(g->next_index() == 3);
        CHECK(g->first_index() == 1);
    }
}
