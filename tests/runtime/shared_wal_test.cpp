// The groups' logs on one shared WAL (runtime/shared_wal.hpp): each group's
// Raft log and hard state come back exactly after a reopen, replacements of
// a conflicting suffix and resets included; appends of two groups share one
// write and one fdatasync; a segment goes once every group in it compacted
// past it, not before; what does not decode is refused.
#include <catch2/catch.hpp>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "../common/temp_dir.hpp"
#include "runtime/shared_wal.hpp"

using namespace keel;
using namespace keel::runtime;

namespace {

raft::Entry entry(raft::Index index, raft::Term term, const std::string& data) {
    return raft::Entry{term, index, raft::EntryType::normal, SharedBytes(data)};
}

// Appends and waits until durable.
void append(LogStore& log, std::vector<raft::Entry> entries) {
    std::promise<Status> done;
    REQUIRE(log.append(entries, wal::Wal::Writer::flusher,
                       [&done](Status s) { done.set_value(std::move(s)); })
                .ok());
    REQUIRE(done.get_future().get().ok());
}

void reset(LogStore& log, raft::Index index, raft::Term term) {
    std::promise<Status> done;
    REQUIRE(
        log.reset_after_snapshot(index, term, [&done](Status s) { done.set_value(std::move(s)); })
            .ok());
    REQUIRE(done.get_future().get().ok());
}

std::vector<std::string> log_of(const LogStore& log, raft::Index after, raft::Term term) {
    auto entries = log.entries_after(after, term);
    REQUIRE(entries.ok());
    std::vector<std::string> out;
    for (const raft::Entry& e : entries.value())
        out.push_back(std::to_string(e.index) + "@" + std::to_string(e.term) + ":" + e.data.str());
    return out;
}

std::unique_ptr<SharedWal> open_shared(const std::string& dir, std::uint64_t segment_bytes = 0) {
    wal::Options o;
    if (segment_bytes != 0) o.segment_bytes = segment_bytes;
    o.preallocate = false;
    auto s = SharedWal::open(dir, o);
    REQUIRE(s.ok());
    return std::move(s.value());
}

std::unique_ptr<LogStore> open_group(SharedWal& shared, GroupId g) {
    auto log = shared.open_group(g, SharedWal::Hooks{});
    REQUIRE(log.ok());
    return std::move(log.value());
}

}  // namespace

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
    const wal::Stats before = shared->wal().stats();
    std::promise<Status> d1, d2;
    std::vector<raft::Entry> e1{entry(1, 1, "a"), entry(2, 1, "b")};
    std::vector<raft::Entry> e2{entry(1, 1, "x")};
    // Neither wakes the flusher: this thread writes both, as one batch.
    REQUIRE(g1->append(e1, wal::Wal::Writer::caller, [&](Status s) { d1.set_value(s); }).ok());
    REQUIRE(g2->append(e2, wal::Wal::Writer::caller, [&](Status s) { d2.set_value(s); }).ok());
    REQUIRE(shared->wal().write_queued());
    REQUIRE(d1.get_future().get().ok());
    REQUIRE(d2.get_future().get().ok());
    const wal::Stats after = shared->wal().stats();
    CHECK(after.records_written - before.records_written == 3);
    CHECK(after.fsyncs - before.fsyncs == 1);
    // Each group heard of the batch once.
    CHECK(after_batch[1] == 1);
    CHECK(after_batch[2] == 1);
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
