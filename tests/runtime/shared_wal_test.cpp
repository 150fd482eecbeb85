// The groups' logs on one shared WAL (runtime/shared_wal.hpp): each group's
// Raft log and hard state come back exactly after a reopen, replacements of
// a conflicting suffix and resets included; appends of two groups share one
// write and one fdatasync; a segment goes once every group in it compacted
// past it, not before; what does not decode is refused.  Rewriting groups
// forward: shared_wal_rewrite_test.cpp.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../common/gate.hpp"
#include "../common/temp_dir.hpp"
#include "runtime/shared_wal.hpp"
#include "shared_wal_support.hpp"

using namespace keel;
using namespace keel::runtime;
using namespace keel::runtime::shared_wal_support;

TEST_CASE("every group's log and hard state come back from the shared WAL", "[shared_wal]") {
    keel::test::TempDir dir;
    const std::string wal_dir = dir.path() + "/wal";
    {
        auto shared = open_shared(wal_dir);
        auto g1 = open_group(*shared, 1);
        auto g2 = open_group(*shared, 2);
        REQUIRE(g1->fresh());
        append(*g1, {entry(1, 1, "a"), entry(2, 1, "b")});
        append(*g2, {entry(1, 1, "x")});
        append(*g1, {entry(3, 1, "c"), entry(4, 1, "d"), entry(5, 1, "e")});
        append(*g2, {entry(2, 1, "y"), entry(3, 1, "z")});
        // Group 1's leader changed: entries 4 and 5 are replaced.
        append(*g1, {entry(4, 2, "D")});
        // Group 2 installed a snapshot at 10 (term 3), then goes on.
        reset(*g2, 10, 3);
        append(*g2, {entry(11, 3, "k")});
        REQUIRE(g1->save_hard_state(raft::HardState{2, 1, 3}).ok());
        REQUIRE(g2->save_hard_state(raft::HardState{3, 2, 11}).ok());
        CHECK(g1->next_index() == 5);
        CHECK(g2->next_index() == 12);
        // Closed and opened again in the same process: read back too.
        g2.reset();
        g2 = open_group(*shared, 2);
        CHECK(log_of(*g2, 10, 3) == std::vector<std::string>{"11@3:k"});
    }
    auto shared = open_shared(wal_dir);
    auto g1 = open_group(*shared, 1);
    auto g2 = open_group(*shared, 2);
    auto g3 = open_group(*shared, 3);
    CHECK(log_of(*g1, 0, 0) == std::vector<std::string>{"1@1:a", "2@1:b", "3@1:c", "4@2:D"});
    CHECK(g1->next_index() == 5);
    CHECK(g1->hard_state() == raft::HardState{2, 1, 3});
    CHECK(log_of(*g2, 10, 3) == std::vector<std::string>{"11@3:k"});
    CHECK(g2->first_index() == 11);
    CHECK(g2->next_index() == 12);
    CHECK(g2->hard_state() == raft::HardState{3, 2, 11});
    CHECK(g3->fresh());
    CHECK(g3->empty());
    // A second store of an open group is refused.
    CHECK(shared->open_group(1, SharedWal::Hooks{}).status().code() == ErrorCode::busy);
}

TEST_CASE("appends of two groups share one write and one fdatasync", "[shared_wal]") {
    keel::test::TempDir dir;
    auto shared = open_shared(dir.path() + "/wal");
    int after_batch[3] = {0, 0, 0};
    auto hooks = [&](int g) {
        return SharedWal::Hooks{[&after_batch, g] { ++after_batch[g]; }, {}};
    };
    auto g1 = shared->open_group(1, hooks(1)).value();
    auto g2 = shared->open_group(2, hooks(2)).value();
    // Writer::caller does not wake the flusher, but a flusher thread that
    // has not gone to sleep yet (just started, on a loaded machine) takes
    // what it finds queued.  Such a round proves nothing and is done again;
    // a WAL that writes each group's records on their own fails every round.
    constexpr int kRoundsMax = 50;
    bool shared_write_seen = false;
    raft::Index next1 = 1, next2 = 1;
    for (int round = 0; round < kRoundsMax && !shared_write_seen; ++round) {
        const wal::Stats before = shared->wal().stats();
        const int batches1 = after_batch[1], batches2 = after_batch[2];
        std::promise<Status> d1, d2;
        std::vector<raft::Entry> e1{entry(next1, 1, "a"), entry(next1 + 1, 1, "b")};
        std::vector<raft::Entry> e2{entry(next2, 1, "x")};
        next1 += 2;
        next2 += 1;
        REQUIRE(g1->append(e1, wal::Wal::Writer::caller, [&](Status s) { d1.set_value(s); }).ok());
        REQUIRE(g2->append(e2, wal::Wal::Writer::caller, [&](Status s) { d2.set_value(s); }).ok());
        const bool written_here = shared->wal().write_queued();
        REQUIRE(d1.get_future().get().ok());
        REQUIRE(d2.get_future().get().ok());
        const wal::Stats after = shared->wal().stats();
        UNSCOPED_INFO("round " << round << ": written by this thread " << written_here << ", "
                               << after.records_written - before.records_written << " records, "
                               << after.fsyncs - before.fsyncs << " fdatasyncs");
        // Each group heard of the one batch once.
        shared_write_seen = written_here && after.records_written - before.records_written == 3 &&
                            after.fsyncs - before.fsyncs == 1 && after_batch[1] - batches1 == 1 &&
                            after_batch[2] - batches2 == 1;
    }
    CHECK(shared_write_seen);
}

namespace {

// Holds a pool's one thread at a gate, so what waits in its run queue is exact.
struct BlockingStrand final : StrandPool::Strand {
    bool run_slice() override {
        gate.wait_open();
        return false;
    }
    keel::test::Gate gate;
};

struct CountingStrand final : StrandPool::Strand {
    bool run_slice() override {
        runs.fetch_add(1);
        return false;
    }
    std::atomic<int> runs{0};
};

}  // namespace

TEST_CASE("the applies a batch's completions schedule are queued together once they all ran",
          "[shared_wal]") {
    keel::test::TempDir dir;
    auto shared = open_shared(dir.path() + "/wal");
    StrandPool pool(1, "wal-batch-test");
    BlockingStrand blocker;
    pool.schedule(blocker);
    blocker.gate.wait_entered();
    shared->batch_completions_on(&pool);
    CountingStrand apply;
    std::atomic<bool> scheduled{false};
    std::atomic<int> queued_in_hook{-1};
    // As a group's commit schedules its apply from its after_batch hook.
    auto g1 = shared
                  ->open_group(
                      1, SharedWal::Hooks{[&] {
                                              if (scheduled.exchange(true)) return;
                                              pool.schedule(apply);
                                              queued_in_hook.store(static_cast<int>(pool.queued()));
                                          },
                                          {}})
                  .value();
    append(*g1, {entry(1, 1, "a")});
    blocker.gate.release();
    while (apply.runs.load() == 0) std::this_thread::yield();
    // Held while the batch's hooks ran (the pool's run queue was empty),
    // queued after them: it ran.  Scheduled one by one, it was queued at once.
    CHECK(queued_in_hook.load() == 0);
    CHECK(apply.runs.load() == 1);
    g1.reset();
}

TEST_CASE("a segment goes once every group in it compacted past it", "[shared_wal]") {
    keel::test::TempDir dir;
    const std::string wal_dir = dir.path() + "/wal";
    const std::string payload(200, 'p');
    {
        auto shared = open_shared(wal_dir, 4096);
        auto g1 = open_group(*shared, 1);
        auto g2 = open_group(*shared, 2);
        for (raft::Index i = 1; i <= 60; ++i) {
            append(*g1, {entry(i, 1, payload)});
            append(*g2, {entry(i, 1, payload)});
        }
        const std::uint64_t segments = shared->wal().stats().segments;
        REQUIRE(segments > 4);
        // Group 1 alone: nothing goes, group 2 pins the oldest segment.
        REQUIRE(g1->compaction_frees(50));
        REQUIRE(g1->compact_through(50, g1->generation()).ok());
        CHECK(shared->wal().first_index() == 1);
        CHECK(shared->wal().stats().segments == segments);
        auto pins = shared->wal().oldest_segment_pins();
        REQUIRE(pins.size() == 1);
        CHECK(pins[0].group == 2);
        // Group 2 too: the segments before both groups' entry 51 go.
        REQUIRE(g2->compact_through(50, g2->generation()).ok());
        REQUIRE(shared->wal().first_index() > 1);
        CHECK(shared->wal().stats().segments < segments);
        // A reset since supersedes an older compaction: nothing happens.
        const std::uint64_t generation = g1->generation();
        reset(*g1, 70, 2);
        CHECK(g1->compact_through(69, generation).ok());
        CHECK(g1->next_index() == 71);
    }
    auto shared = open_shared(wal_dir, 4096);
    auto g1 = open_group(*shared, 1);
    auto g2 = open_group(*shared, 2);
    CHECK(g2->first_index() == 51);
    const std::vector<std::string> g2_log = log_of(*g2, 50, 1);
    REQUIRE(g2_log.size() == 10);
    CHECK(g2_log.front() == "51@1:" + payload);
    CHECK(g1->first_index() == 71);
    CHECK(log_of(*g1, 70, 2).empty());
}

TEST_CASE("a shared WAL whose group table or records do not decode is refused", "[shared_wal]") {
    CHECK(decode_group_table("", "d").ok());
    std::map<GroupId, GroupMeta> table;
    table[7] = GroupMeta{3, 1, 2, 0, 0, 0, "floor"};
    const std::string blob = encode_group_table(table);
    auto back = decode_group_table(blob, "d");
    REQUIRE(back.ok());
    CHECK(back.value() == table);
    CHECK(decode_group_table(blob.substr(0, blob.size() - 1), "d").status().code() ==
          ErrorCode::corruption);
    CHECK(decode_group_table(blob + "x", "d").status().code() == ErrorCode::corruption);
    CHECK(decode_group_table("nonsense", "d").status().code() == ErrorCode::corruption);

    // A record of a type no group store writes.
    keel::test::TempDir dir;
    const std::string wal_dir = dir.path() + "/wal";
    {
        auto w = wal::Wal::open(wal_dir, wal::Options{});
        REQUIRE(w.ok());
        wal::Record r;
        r.index = 1;
        r.type = 3;
        r.group = 1;
        r.payload = SharedBytes("12345678");
        REQUIRE(wal::append_sync(*w.value(), {r}).ok());
    }
    auto shared = SharedWal::open(wal_dir, wal::Options{});
    CHECK(shared.status().code() == ErrorCode::corruption);
}

TEST_CASE("an image record that does not decode is refused", "[shared_wal]") {
    std::vector<raft::Entry> entries{entry(6, 2, "abc"), entry(7, 3, "")};
    const wal::Record good = encode_image(5, entries);
    auto back = decode_image(good);
    REQUIRE(back.ok());
    CHECK(back.value().base == 5);
    CHECK(back.value().entries == entries);
    auto with = [&](std::string payload) {
        wal::Record r = good;
        r.payload = SharedBytes(std::move(payload));
        return decode_image(r).status().code();
    };
    const std::string p = good.payload.str();
    CHECK(with(p.substr(0, p.size() - 1)) == ErrorCode::invalid_argument);  // data cut
    CHECK(with(p + "x") == ErrorCode::invalid_argument);                    // trailing bytes
    CHECK(with(p.substr(0, 12)) == ErrorCode::invalid_argument);            // header cut
    std::string too_many = p;
    too_many[8] = static_cast<char>(0xff);  // count
    too_many[9] = static_cast<char>(0xff);
    CHECK(with(too_many) == ErrorCode::invalid_argument);
    std::string bad_type = p;
    bad_type[16 + 8] = 9;  // the first entry's type
    CHECK(with(bad_type) == ErrorCode::invalid_argument);
    std::string huge_base = p;
    huge_base[7] = static_cast<char>(0xff);
    CHECK(with(huge_base) == ErrorCode::invalid_argument);
    // At the limit of entries: decodes; one more does not.
    std::vector<raft::Entry> full;
    for (raft::Index i = 1; i <= kMaxImageEntries; ++i) full.push_back(entry(i, 1, ""));
    CHECK(decode_image(encode_image(0, full)).ok());
    std::string over = encode_image(0, full).payload.str();
    const std::uint64_t count = kMaxImageEntries + 1;
    for (int i = 0; i < 8; ++i) over[8 + i] = static_cast<char>((count >> (8 * i)) & 0xff);
    over.append(24, '\0');
    CHECK(with(over) == ErrorCode::invalid_argument);

    // In a WAL: the open fails with corruption.
    keel::test::TempDir dir;
    const std::string wal_dir = dir.path() + "/wal";
    {
        auto w = wal::Wal::open(wal_dir, wal::Options{});
        REQUIRE(w.ok());
        wal::Record r = good;
        r.index = 1;
        r.group = 4;
        r.payload = SharedBytes(p + "x");
        REQUIRE(wal::append_sync(*w.value(), {r}).ok());
    }
    CHECK(SharedWal::open(wal_dir, wal::Options{}).status().code() == ErrorCode::corruption);
}

TEST_CASE("a hard-state record round-trips and what does not decode is refused", "[shared_wal]") {
    const raft::HardState hs{7, 3, 42};
    const wal::Record good = encode_hard_state(hs);
    CHECK(good.type == kSharedHardStateType);
    CHECK(good.term == 7);
    REQUIRE(good.payload.size() == kHardStateRecordBytes);
    auto back = decode_hard_state(good);
    REQUIRE(back.ok());
    CHECK(back.value() == hs);
    auto with = [&](std::string payload, std::uint16_t type = kSharedHardStateType) {
        wal::Record r = good;
        r.type = type;
        r.payload = SharedBytes(std::move(payload));
        return decode_hard_state(r).status().code();
    };
    const std::string p = good.payload.str();
    CHECK(with(p.substr(0, p.size() - 1)) == ErrorCode::invalid_argument);  // cut
    CHECK(with(p + "x") == ErrorCode::invalid_argument);                    // trailing byte
    CHECK(with("") == ErrorCode::invalid_argument);
    CHECK(with(p, kSharedImageType) == ErrorCode::invalid_argument);  // another type
    // At the limit: a term and commit of 2^63 - 1 decode; 2^63 does not.
    const std::uint64_t max = (1ull << 63) - 1;
    CHECK(decode_hard_state(encode_hard_state(raft::HardState{max, ~0ull, max})).ok());
    CHECK(decode_hard_state(encode_hard_state(raft::HardState{max + 1, 1, 1})).status().code() ==
          ErrorCode::invalid_argument);
    CHECK(decode_hard_state(encode_hard_state(raft::HardState{1, 1, max + 1})).status().code() ==
          ErrorCode::invalid_argument);

    // In a WAL: the open fails with corruption.
    keel::test::TempDir dir;
    const std::string wal_dir = dir.path() + "/wal";
    {
        auto w = wal::Wal::open(wal_dir, wal::Options{});
        REQUIRE(w.ok());
        wal::Record r = good;
        r.index = 1;
        r.group = 4;
        r.payload = SharedBytes(p.substr(0, 23));
        REQUIRE(wal::append_sync(*w.value(), {r}).ok());
    }
    CHECK(SharedWal::open(wal_dir, wal::Options{}).status().code() == ErrorCode::corruption);
}

TEST_CASE("a group table of version 1 (no hard_state_below) still decodes", "[shared_wal]") {
    std::string v1 = "keel-groups-1\n";
    put_u64(v1, 1);
    for (std::uint64_t v : {9, 4, 2, 11, 0, 0, 5, 3}) put_u64(v1, v);  // group 9, floor of 3 bytes
    v1 += "abc";
    auto table = decode_group_table(v1, "d");
    REQUIRE(table.ok());
    REQUIRE(table.value().count(9) == 1);
    CHECK(table.value().at(9) == GroupMeta{4, 2, 11, 0, 0, 5, "abc", 0});
    CHECK(decode_group_table(v1.substr(0, v1.size() - 1), "d").status().code() ==
          ErrorCode::corruption);
    // Version 2 round-trips hard_state_below.
    std::map<GroupId, GroupMeta> v2;
    v2[9] = GroupMeta{4, 2, 11, 0, 0, 5, "abc", 77};
    auto back = decode_group_table(encode_group_table(v2), "d");
    REQUIRE(back.ok());
    CHECK(back.value() == v2);
}

// The replay order (shared_wal.hpp, "Hard state"): the latest hard-state
// record of a group wins over its row; a release that drops the records
// leaves their latest in the row.
TEST_CASE("a group's hard state: its latest record, else its row as of its released records",
          "[shared_wal]") {
    keel::test::TempDir dir;
    const std::string wal_dir = dir.path() + "/wal";
    const std::string payload(200, 'p');
    {
        auto shared = open_shared(wal_dir, 4096);
        auto g1 = open_group(*shared, 1);
        auto g2 = open_group(*shared, 2);
        REQUIRE(g1->save_hard_state(raft::HardState{3, 1, 0}).ok());
        REQUIRE(g1->save_hard_state(raft::HardState{4, 2, 0}).ok());
        CHECK(g1->hard_state() == raft::HardState{4, 2, 0});
        // No row was written: the hard state is in records only.
        CHECK(shared->meta(1) == GroupMeta{});
        for (raft::Index i = 1; i <= 60; ++i) {
            append(*g1, {entry(i, 4, payload)});
            append(*g2, {entry(i, 1, payload)});
        }
        // Both compact past group 1's hard-state records: their segments go.
        REQUIRE(g1->compact_through(50, g1->generation()).ok());
        REQUIRE(g2->compact_through(50, g2->generation()).ok());
        REQUIRE(shared->wal().first_index() > 3);
        CHECK(shared->meta(1).term == 4);
        CHECK(shared->meta(1).vote == 2);
        CHECK(shared->meta(1).hard_state_below > 2);
    }
    {
        // Only the row holds it now.
        auto shared = open_shared(wal_dir, 4096);
        auto g1 = open_group(*shared, 1);
        CHECK(g1->hard_state() == raft::HardState{4, 2, 0});
        // A later record wins over the row.
        REQUIRE(g1->save_hard_state(raft::HardState{5, 3, 50}).ok());
    }
    auto shared = open_shared(wal_dir, 4096);
    auto g1 = open_group(*shared, 1);
    CHECK(g1->hard_state() == raft::HardState{5, 3, 50});
    CHECK(shared->meta(1).term == 4);
}
