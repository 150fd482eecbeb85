// Wal: appends, reads, reopen, limits, truncation, reset, compaction, metadata.
#include <catch2/catch.hpp>

#include <limits>

#include "../common/write_back_trace.hpp"
#include "keel/wal/file_removal.hpp"
#include "keel/wal/wal.hpp"
#include "test_util.hpp"
#include "wal_impl.hpp"

using namespace keel;
using namespace keel::wal;
using namespace keel::wal::test;

namespace {
std::unique_ptr<Wal> open_ok(const std::string& dir, Options o) {
    auto wal = Wal::open(dir, o);
    INFO(wal.status().to_string());
    REQUIRE(wal.ok());
    return std::move(*wal);
}
void require_records(Wal& wal, std::uint64_t from, std::uint64_t to, std::uint64_t term = 1) {
    auto got = wal.read(from, to);
    INFO(got.status().to_string());
    REQUIRE(got.ok());
    REQUIRE(got->size() == to - from);
    for (std::uint64_t i = from; i < to; ++i) REQUIRE((*got)[i - from] == make_record(i, term));
}
}  // namespace

TEST_CASE("records appended are read back, from memory and from disk") {
    TempDir dir;
    Options o = small_options();
    o.cache_bytes = 2000;  // most reads below must go to disk
    auto wal = open_ok(dir.path(), o);
    REQUIRE(wal->open_report().created);
    REQUIRE(wal->first_index() == 1);
    REQUIRE(wal->last_index() == 0);
    for (std::uint64_t i = 1; i <= 300; i += 10)
        REQUIRE(append_sync(*wal, make_records(i, 10)).ok());
    REQUIRE(wal->last_index() == 300);
    require_records(*wal, 1, 301);
    REQUIRE(wal->stats().segments > 1);  // rolled
    REQUIRE(*wal->term_at(42) == 1);
    REQUIRE(wal->term_at(301).status().code() == ErrorCode::not_found);
    REQUIRE(wal->read(0, 5).status().code() == ErrorCode::not_found);
    REQUIRE(wal->read(5, 302).status().code() == ErrorCode::not_found);
}

TEST_CASE("record_buffer hands back the vector of a written append, emptied") {
    TempDir dir;
    auto wal = open_ok(dir.path(), small_options());
    REQUIRE(wal->record_buffer().capacity() == 0);  // nothing written yet
    std::vector<Record> first = make_records(1, 40);
    const Record* storage = first.data();
    REQUIRE(append_sync(*wal, std::move(first)).ok());
    // The flusher gives a batch's vectors back after its callbacks, before
    // it takes the next batch: once a later append completes, the first
    // one's is there (and perhaps the later one's, given back last).
    REQUIRE(append_sync(*wal, make_records(41, 1)).ok());
    std::vector<Record> reused = wal->record_buffer();
    if (reused.data() != storage) reused = wal->record_buffer();
    REQUIRE(reused.data() == storage);
    REQUIRE(reused.empty());
    REQUIRE(reused.capacity() >= 40);
    // And it carries the next append like any other vector.
    for (Record& r : make_records(42, 5)) reused.push_back(std::move(r));
    REQUIRE(append_sync(*wal, std::move(reused)).ok());
    require_records(*wal, 1, 47);
}

TEST_CASE("read stops at max_bytes but returns at least one record") {
    TempDir dir;
    auto wal = open_ok(dir.path(), small_options());
    REQUIRE(append_sync(*wal, make_records(1, 10)).ok());
    REQUIRE(wal->read(1, 11, 100)->size() == 2);  // 40-byte payloads
    REQUIRE(wal->read(1, 11, 1)->size() == 1);
    REQUIRE(wal->read(3, 3)->empty());
}

TEST_CASE("a reopened WAL holds every record and continues the index") {
    TempDir dir;
    {
        auto wal = open_ok(dir.path(), small_options());
        REQUIRE(append_sync(*wal, make_records(1, 500)).ok());
    }
    auto wal = open_ok(dir.path(), small_options());
    const OpenReport& r = wal->open_report();
    REQUIRE_FALSE(r.created);
    REQUIRE_FALSE(r.torn_tail);
    REQUIRE(r.records == 500);
    REQUIRE(wal->last_index() == 500);
    require_records(*wal, 1, 501);
    REQUIRE(append_sync(*wal, make_records(501, 5)).ok());
    require_records(*wal, 495, 506);
}

TEST_CASE("appends must be contiguous") {
    TempDir dir;
    auto wal = open_ok(dir.path(), small_options());
    REQUIRE(wal->append(make_record(2), nullptr).code() == ErrorCode::invalid_argument);
    std::vector<Record> gap{make_record(1), make_record(3)};
    REQUIRE(wal->append(gap, nullptr).code() == ErrorCode::invalid_argument);
    REQUIRE(wal->append(std::vector<Record>{}, nullptr).code() == ErrorCode::invalid_argument);
    REQUIRE(append_sync(*wal, make_records(1, 2)).ok());
    REQUIRE(wal->append(make_record(2), nullptr).code() == ErrorCode::invalid_argument);
    REQUIRE(wal->next_index() == 3);
}

TEST_CASE("a record over max_record_bytes is refused with a clear error") {
    TempDir dir;
    Options o = small_options();
    o.max_record_bytes = 1000;
    auto wal = open_ok(dir.path(), o);
    Status s = wal->append(make_record(1, 1, 1001), nullptr);
    REQUIRE(s.code() == ErrorCode::too_large);
    REQUIRE_THAT(s.message(), Catch::Contains("1001") && Catch::Contains("max_record_bytes"));
    REQUIRE(append_sync(*wal, {make_record(1, 1, 1000)}).ok());  // exactly at the limit
}

TEST_CASE("a record larger than a segment gets a segment of its own") {
    TempDir dir;
    Options o = small_options();
    const std::size_t big = o.segment_bytes + o.segment_bytes / 2;
    o.max_record_bytes = big;
    {
        auto wal = open_ok(dir.path(), o);
        REQUIRE(append_sync(*wal, make_records(1, 3)).ok());
        REQUIRE(append_sync(*wal, {make_record(4, 1, big)}).ok());
        REQUIRE(append_sync(*wal, {make_record(5)}).ok());
        REQUIRE(wal->stats().segments == 3);
    }
    auto wal = open_ok(dir.path(), o);
    REQUIRE(wal->last_index() == 5);
    REQUIRE((*wal->read(4, 5))[0] == make_record(4, 1, big));
    REQUIRE((*wal->read(5, 6))[0] == make_record(5));
}

TEST_CASE("truncate_after removes the suffix and appends continue after it") {
    TempDir dir;
    auto wal = open_ok(dir.path(), small_options());
    REQUIRE(append_sync(*wal, make_records(1, 400)).ok());
    // Queued back to back, no waiting in between: the follower pattern.
    Status truncated, appended;
    REQUIRE(wal->truncate_after(120, [&](Status s) { truncated = s; }).ok());
    REQUIRE(wal->next_index() == 121);
    REQUIRE(append_sync(*wal, make_records(121, 10, 2)).ok());
    REQUIRE(truncated.ok());
    REQUIRE(wal->last_index() == 130);
    require_records(*wal, 1, 121);
    require_records(*wal, 121, 131, 2);
    REQUIRE(truncate_after_sync(*wal, 500).ok());  // past the end: no-op
    wal.reset();
    auto again = open_ok(dir.path(), small_options());
    REQUIRE(again->last_index() == 130);
    REQUIRE_FALSE(again->open_report().torn_tail);
    require_records(*again, 121, 131, 2);
    require_records(*again, 1, 121);
}

TEST_CASE("truncate_after at a segment boundary and to an empty log") {
    TempDir dir;
    auto wal = open_ok(dir.path(), small_options());
    REQUIRE(append_sync(*wal, make_records(1, 400)).ok());
    REQUIRE(truncate_after_sync(*wal, 0).ok());
    REQUIRE(wal->last_index() == 0);
    REQUIRE(wal->first_index() == 1);
    REQUIRE(append_sync(*wal, make_records(1, 3, 5)).ok());
    wal.reset();
    auto again = open_ok(dir.path(), small_options());
    REQUIRE(again->last_index() == 3);
    require_records(*again, 1, 4, 5);
}

TEST_CASE("compact_before hides the prefix and deletes whole segments") {
    TempDir dir;
    auto wal = open_ok(dir.path(), small_options());
    REQUIRE(append_sync(*wal, make_records(1, 1000)).ok());
    const auto segments_before = wal->stats().segments;
    REQUIRE(wal->compact_before(700).ok());
    REQUIRE(wal->first_index() == 700);
    REQUIRE(wal->read(699, 701).status().code() == ErrorCode::not_found);
    require_records(*wal, 700, 1001);
    REQUIRE(wal->stats().segments < segments_before);
    REQUIRE(wal->compact_before(1002).code() == ErrorCode::invalid_argument);
    REQUIRE(append_sync(*wal, make_records(1001, 1)).ok());
    wal.reset();
    auto again = open_ok(dir.path(), small_options());
    REQUIRE(again->first_index() == 700);
    REQUIRE(again->last_index() == 1001);
    require_records(*again, 700, 1002);
}

// Segments of a few deletion chunks, holding 60 KB records: 100 records
// make four segments or so.
Options deletion_options(FaultFs& fs) {
    Options o = small_options(&fs);
    o.segment_bytes = 2 * keel::wal::kRemovalStepBytes + keel::wal::kRemovalStepBytes / 2;
    o.max_record_bytes = 128 * 1024;
    return o;
}

void append_60kb_records(Wal& wal, std::uint64_t last) {
    for (std::uint64_t i = 1; i <= last; ++i)
        REQUIRE(append_sync(wal, {make_record(i, 1, 60 * 1000)}).ok());
}

// A whole segment's unlink hands a file system with online discard the
// whole file's discard at once, and the log's writes wait behind it
// (decision 0051): a compacted segment is renamed out of the log's names,
// durably, then shortened a chunk at a time, each step synced, then removed.
TEST_CASE("a compacted segment is renamed away and deleted a chunk at a time") {
    TempDir dir;
    FaultFs fs;
    auto wal = open_ok(dir.path(), deletion_options(fs));
    append_60kb_records(*wal, 100);
    const std::uint64_t segments_before = wal->stats().segments;
    REQUIRE(segments_before >= 3);
    const std::string deleting = dir.sub(keel::wal::detail::kDeletingName);
    std::mutex mu;
    std::vector<std::string> steps;  // what the deletions did, in order
    fs.set_before_mutation([&](const std::string& what) {
        const bool of_deleting = what.find(keel::wal::detail::kDeletingName) != std::string::npos;
        const bool of_segment = what.find(".wal") != std::string::npos;
        std::lock_guard lock(mu);
        if (what.rfind("truncate ", 0) == 0 && of_deleting) {
            // The hook runs before the step: the size it starts from.
            steps.push_back("truncate " + std::to_string(std::filesystem::file_size(deleting)));
        } else if (what.rfind("remove ", 0) == 0 && of_deleting) {
            steps.push_back("remove " + std::to_string(std::filesystem::file_size(deleting)));
        } else if (of_deleting || of_segment) {
            steps.push_back(what.substr(0, what.find(' ')));  // rename, datasync, remove
        } else if (what.rfind("sync_dir ", 0) == 0 && !steps.empty()) {
            steps.push_back("sync_dir");  // after the compaction's metadata
        }
    });
    REQUIRE(wal->compact_before(100).ok());
    wal.reset();  // joins the background thread, which deletes before it stops
    fs.set_before_mutation(nullptr);

    std::lock_guard lock(mu);
    std::string all;
    for (const std::string& step : steps) all += step + "; ";
    INFO(all);
    std::size_t at = 0, deleted = 0;
    auto next = [&] { return at < steps.size() ? steps[at++] : std::string("(end)"); };
    while (at < steps.size()) {
        REQUIRE(next() == "rename");    // the segment, to kDeletingName
        REQUIRE(next() == "sync_dir");  // durable before any byte goes
        std::uint64_t size = std::numeric_limits<std::uint64_t>::max();
        int truncations = 0;
        for (std::string step = next(); step != "remove 0"; step = next()) {
            REQUIRE(step.rfind("truncate ", 0) == 0);
            const std::uint64_t from = std::stoull(step.substr(9));
            // Each step takes at most a chunk off what the last one left.
            if (truncations > 0) REQUIRE(size - from <= keel::wal::kRemovalStepBytes);
            REQUIRE(from < size);
            size = from;
            REQUIRE(next() == "datasync");
            ++truncations;
        }
        CHECK(truncations >= 3);  // a preallocated segment of 2.5 chunks
        REQUIRE(next() == "sync_dir");
        ++deleted;
    }
    CHECK(deleted == segments_before - 1);
    CHECK_FALSE(std::filesystem::exists(deleting));
}

// A crash at any step of those deletions leaves a log that opens with every
// record from the floor on, and nothing of the half-deleted file.
TEST_CASE("a crash while a compacted segment is deleted loses nothing") {
    TempDir base;
    FaultFs fs;
    const std::string dir = base.sub("wal");
    auto wal = open_ok(dir, deletion_options(fs));
    append_60kb_records(*wal, 100);
    std::vector<std::string> crashes;
    // From the first step of a segment's deletion on (whatever it is): the
    // floor is durable by then.
    std::atomic<bool> deleting{false};
    fs.set_before_mutation([&](const std::string& what) {
        const std::string op = what.substr(0, what.find(' '));
        if ((op == "rename" || op == "truncate" || op == "remove") &&
            (what.find(".wal") != std::string::npos ||
             what.find(keel::wal::detail::kDeletingName) != std::string::npos))
            deleting = true;
        if (!deleting) return;
        const std::string copy = base.sub("crash" + std::to_string(crashes.size()));
        fs.copy_dropping_unsynced(dir, copy);
        crashes.push_back(copy);
    });
    REQUIRE(wal->compact_before(90).ok());  // two segments or more below it
    wal.reset();
    fs.set_before_mutation(nullptr);
    REQUIRE(crashes.size() >= 10);
    Options plain = deletion_options(fs);
    plain.fs = nullptr;
    for (const std::string& copy : crashes) {
        INFO(copy);
        auto after = open_ok(copy, plain);
        REQUIRE(after->first_index() == 90);
        REQUIRE(after->last_index() == 100);
        auto got = after->read(90, 101);
        REQUIRE(got.ok());
        REQUIRE(got->size() == 11);
        for (std::uint64_t i = 90; i <= 100; ++i)
            REQUIRE((*got)[i - 90] == make_record(i, 1, 60 * 1000));
        CHECK_FALSE(std::filesystem::exists(copy + "/" + keel::wal::detail::kDeletingName));
    }
}

TEST_CASE("reset throws the log away and starts at the given index") {
    TempDir dir;
    auto wal = open_ok(dir.path(), small_options());
    REQUIRE(append_sync(*wal, make_records(1, 300)).ok());
    REQUIRE(reset_sync(*wal, 5000).ok());
    REQUIRE(wal->first_index() == 5000);
    REQUIRE(wal->last_index() == 4999);
    REQUIRE(append_sync(*wal, make_records(5000, 3)).ok());
    wal.reset();
    auto again = open_ok(dir.path(), small_options());
    REQUIRE(again->first_index() == 5000);
    REQUIRE(again->last_index() == 5002);
    REQUIRE(again->stats().segments == 1);
    require_records(*again, 5000, 5003);
}

TEST_CASE("a new WAL may start at an arbitrary index") {
    TempDir dir;
    Options o = small_options();
    o.initial_index = 77;
    {
        auto wal = open_ok(dir.path(), o);
        REQUIRE(wal->first_index() == 77);
        REQUIRE(wal->next_index() == 77);
        REQUIRE(append_sync(*wal, make_records(77, 2)).ok());
    }
    auto wal = open_ok(dir.path(), small_options());
    REQUIRE(wal->first_index() == 77);
    REQUIRE(wal->last_index() == 78);
}

TEST_CASE("metadata is saved durably and read back after reopen") {
    TempDir dir;
    Metadata m{7, 3, 41, 40, 6, std::string("membership\0blob", 15)};
    {
        auto wal = open_ok(dir.path(), small_options());
        REQUIRE(wal->metadata() == Metadata{});
        REQUIRE(wal->save_metadata(m).ok());
        REQUIRE(wal->metadata() == m);
        Metadata big;
        big.opaque.resize(kMaxMetadataOpaqueBytes + 1);
        REQUIRE(wal->save_metadata(big).code() == ErrorCode::too_large);
    }
    auto wal = open_ok(dir.path(), small_options());
    REQUIRE(wal->metadata() == m);
}

TEST_CASE("stats count fsyncs and records") {
    TempDir dir;
    auto wal = open_ok(dir.path(), small_options());
    REQUIRE(append_sync(*wal, make_records(1, 10)).ok());
    Stats s = wal->stats();
    REQUIRE(s.records_written == 10);
    REQUIRE(s.fsyncs == 1);
    REQUIRE(s.records_per_fsync() == 10.0);
}

TEST_CASE("a directory can be open in only one Wal at a time") {
    TempDir dir;
    auto first = open_ok(dir.path(), small_options());
    auto second = Wal::open(dir.path(), small_options());
    REQUIRE(second.status().code() == ErrorCode::busy);
    first.reset();
    REQUIRE(Wal::open(dir.path(), small_options()).ok());
}

TEST_CASE("records over a lowered max_record_bytes are still recovered, not taken for damage") {
    TempDir dir;
    Options big = small_options();
    big.max_record_bytes = 10000;
    {
        auto wal = open_ok(dir.path(), big);
        REQUIRE(append_sync(*wal, {make_record(1, 1, 9000), make_record(2)}).ok());
    }
    Options small = small_options();
    small.max_record_bytes = 100;
    auto wal = open_ok(dir.path(), small);
    REQUIRE_FALSE(wal->open_report().torn_tail);
    REQUIRE(wal->last_index() == 2);
    REQUIRE((*wal->read(1, 2))[0] == make_record(1, 1, 9000));
}

// Zero-filling the next segment competes with appends for the disk; a fresh
// WAL must not start it before the active segment is half full.
TEST_CASE("the next segment is prepared once the active one is half full, not at open") {
    TempDir dir;
    FaultFs fs;
    Options o = small_options(&fs);  // small segments (test_util.hpp)
    auto wal = open_ok(dir.path(), o);
    std::mutex mu;
    int segment_writes = 0;                  // appends written so far (one write each)
    std::vector<int> prepared_after_writes;  // segment_writes at each preparation
    fs.set_before_mutation([&](const std::string& what) {
        std::lock_guard lock(mu);
        if (what.rfind("write ", 0) == 0 && what.find(".wal") != std::string::npos)
            ++segment_writes;
        if (what.rfind("create ", 0) == 0 && what.find("next-segment.tmp") != std::string::npos)
            prepared_after_writes.push_back(segment_writes);
    });
    // 1 KiB records, one append (one write) at a time: the first segment
    // holds 15, so half of it is reached by the 8th; on the direct path each
    // write takes a 4 KiB block of its own after the header's, so by the 2nd.
    for (std::uint64_t i = 1; i <= 20; ++i)
        REQUIRE(append_sync(*wal, {make_record(i, 1, 1000)}).ok());
    wal.reset();  // joins the background thread: every preparation is recorded
    std::lock_guard lock(mu);
    REQUIRE(!prepared_after_writes.empty());
    CHECK(prepared_after_writes.front() >= (test_write_path() == WritePath::direct ? 2 : 7));
}

// The events of preparing one segment (the first, inside open) on the
// file being prepared: "create", "write", "write_back OFFSET SIZE",
// "write_back_wait OFFSET SIZE", "datasync", then the roll's header write.
// refuse_direct_fill: the file system refuses OpenMode::fill_direct for it.
std::vector<std::string> events_preparing_a_segment(std::uint64_t segment_bytes,
                                                    bool refuse_direct_fill) {
    TempDir dir;
    FaultFs fs;
    std::mutex mu;
    std::vector<std::string> events;
    fs.set_before_mutation([&](const std::string& what) {
        std::lock_guard lock(mu);
        if (what.find(keel::wal::detail::kPreallocName) != std::string::npos)
            events.push_back(what);
    });
    if (refuse_direct_fill) {
        fs.set_inject([](const std::string& op, const std::string& path) {
            if (op == "open_direct" &&
                path.find(keel::wal::detail::kPreallocName) != std::string::npos)
                return Status(ErrorCode::invalid_argument,
                              "injected: a FileSystem that does not know OpenMode::fill_direct");
            return Status();
        });
    }
    Options o = small_options(&fs);
    o.segment_bytes = segment_bytes;
    auto wal = open_ok(dir.path(), o);  // prepares the first segment
    wal.reset();
    std::lock_guard lock(mu);
    return events;
}

// The buffered fill: the log's fdatasync queues behind the disk's
// outstanding writes, so a segment is zero-filled chunk by chunk, never more
// than two chunks in flight, and made durable at the end.
void check_paced_fill(const std::vector<std::string>& events, std::uint64_t segment_bytes) {
    constexpr std::uint64_t chunk = keel::wal::detail::kZeroFillChunkBytes;
    const keel::test::WriteBackTrace t = keel::test::replay_write_backs(events, 2 * chunk);
    CHECK(t.started_end == segment_bytes);
    CHECK(t.done_end == segment_bytes - chunk / 2);
    CHECK(t.synced_after);
}

TEST_CASE("zero-filling a segment keeps at most two chunks in flight") {
    constexpr std::uint64_t chunk = keel::wal::detail::kZeroFillChunkBytes;
    const std::uint64_t segment_bytes = 4 * chunk + chunk / 2;  // the last chunk is a short one
    const std::vector<std::string> events = events_preparing_a_segment(segment_bytes, false);
    if (test_write_path() != WritePath::direct) return check_paced_fill(events, segment_bytes);
    // The direct path writes its zeros past the page cache (O_DIRECT): each
    // write returns once the disk has it, one chunk in flight, nothing to
    // pace; then one fdatasync before the header is written.
    int writes_before_sync = 0;
    bool synced = false;
    for (const std::string& e : events) {
        const std::string kind = e.substr(0, e.find(' '));
        CHECK(kind.rfind("write_back", 0) != 0);
        if (kind == "write" && !synced) ++writes_before_sync;
        if (kind == "datasync" && !synced) synced = true;
    }
    CHECK(writes_before_sync == 5);
    CHECK(synced);
}

// Where the file system refuses the O_DIRECT descriptor for the segment
// being prepared (here: a FileSystem that does not know
// OpenMode::fill_direct), the direct path's fill goes through the page
// cache, paced.
TEST_CASE("a segment is zero-filled through the page cache where O_DIRECT is refused") {
    constexpr std::uint64_t chunk = keel::wal::detail::kZeroFillChunkBytes;
    const std::uint64_t segment_bytes = 4 * chunk + chunk / 2;
    check_paced_fill(events_preparing_a_segment(segment_bytes, true), segment_bytes);
}

// Pacing is a hint: a file system that refuses it still gets its segments
// zero-filled and synced, and the WAL works on.
TEST_CASE("segments are prepared without pacing where write_back is refused") {
    TempDir dir;
    FaultFs fs;
    fs.refuse_write_back = true;
    Options o = small_options(&fs);
    o.segment_bytes = 2 * keel::wal::detail::kZeroFillChunkBytes + 4096;
    o.max_record_bytes = 128 * 1024;
    {
        auto wal = open_ok(dir.path(), o);
        for (std::uint64_t i = 1; i <= 80; ++i)  // 6.4 MB in all: rolls twice or more
            REQUIRE(append_sync(*wal, {make_record(i, 1, 80 * 1000)}).ok());
        CHECK(wal->stats().segments >= 3);
    }
    auto wal = open_ok(dir.path(), o);
    REQUIRE(wal->last_index() == 80);
    REQUIRE((*wal->read(80, 81))[0] == make_record(80, 1, 80 * 1000));
}

TEST_CASE("with cache_bytes 0 nothing is cached and reads come from disk") {
    TempDir dir;
    Options o = small_options();
    o.cache_bytes = 0;
    auto wal = open_ok(dir.path(), o);
    REQUIRE(append_sync(*wal, make_records(1, 40)).ok());  // spans segments
    require_records(*wal, 1, 41);
    REQUIRE(append_sync(*wal, make_records(41, 5)).ok());
    require_records(*wal, 38, 46);
}
