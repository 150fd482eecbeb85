// One WAL shared by many groups (docs/wal.md, "Groups"): records carry their
// group through the write, the read, recovery and the scanner; segments of
// the layouts before groups read as group 0; a segment is deleted only once
// every group with records in it has released them, which survives a crash
// at any instant; what pins the oldest segment is reported; and what comes
// from disk (a group id, a release table) is checked, never trusted.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "format.hpp"
#include "keel/crc32c.hpp"
#include "keel/wal/reader.hpp"
#include "keel/wal/wal.hpp"
#include "old_layout.hpp"
#include "test_util.hpp"

using namespace keel;
using namespace keel::wal;
using namespace keel::wal::test;

namespace {

// make_record(i) of group `group`, 200 bytes: small_options' 16 KiB
// segments hold about 70 (the direct path: 30).
Record group_record(std::uint64_t index, std::uint64_t group, std::size_t bytes = 200) {
    Record r = make_record(index, 1, bytes);
    r.group = group;
    return r;
}

std::unique_ptr<Wal> open_ok(const std::string& dir, Options o = small_options()) {
    auto wal = Wal::open(dir, o);
    REQUIRE(wal.ok());
    return std::move(*wal);
}

// index -> group of every record scan_wal finds.
std::map<std::uint64_t, std::uint64_t> scanned_groups(const std::string& dir) {
    std::map<std::uint64_t, std::uint64_t> out;
    auto scan =
        scan_wal(dir, ScanOptions{}, [&](const ScannedRecord& r) { out[r.index] = r.group; });
    REQUIRE(scan.ok());
    REQUIRE(scan->clean());
    return out;
}

// Appends one record per index from `first` to `last` to `group`, in
// batches of ten.
void append_group(Wal& wal, std::uint64_t first, std::uint64_t last, std::uint64_t group) {
    for (std::uint64_t i = first; i <= last; i += 10) {
        std::vector<Record> batch;
        for (std::uint64_t j = i; j <= std::min(last, i + 9); ++j)
            batch.push_back(group_record(j, group));
        REQUIRE(append_sync(wal, std::move(batch)).ok());
    }
}

}  // namespace

TEST_CASE("records keep their group through the write, the read, a reopen and the scanner") {
    TempDir dir;
    std::vector<Record> written;
    for (std::uint64_t i = 1; i <= 300; ++i)
        written.push_back(group_record(i, i % 5 == 0 ? kMaxGroup : i % 4));
    {
        auto wal = open_ok(dir.path());
        for (std::uint64_t i = 0; i < written.size(); i += 30)
            REQUIRE(append_sync(*wal,
                                std::vector<Record>(written.begin() + i, written.begin() + i + 30))
                        .ok());
        auto got = wal->read(1, 301);
        REQUIRE(got.ok());
        REQUIRE(*got == written);  // from the cache
    }
    Options no_cache = small_options();
    no_cache.cache_bytes = 0;
    auto wal = open_ok(dir.path(), no_cache);
    auto got = wal->read(1, 301);  // from the files
    REQUIRE(got.ok());
    REQUIRE(*got == written);
    const auto groups = scanned_groups(dir.path());
    REQUIRE(groups.size() == 300);
    for (const Record& r : written) REQUIRE(groups.at(r.index) == r.group);
}

TEST_CASE("an append with a group over kMaxGroup is refused") {
    TempDir dir;
    auto wal = open_ok(dir.path());
    Status s = wal->append({group_record(1, kMaxGroup + 1)}, nullptr);
    REQUIRE(s.code() == ErrorCode::invalid_argument);
    REQUIRE(wal->next_index() == 1);
    REQUIRE(wal->release(kMaxGroup + 1, 1).code() == ErrorCode::invalid_argument);
}

TEST_CASE("segments of the layouts before groups read as group 0 and the log goes on") {
    TempDir dir;
    {
        auto wal = open_ok(dir.path());
        REQUIRE(append_sync(*wal, make_records(1, 200)).ok());
    }
    to_layout_before_groups(dir.path());
    auto layout = read_wal_layout(dir.path());
    REQUIRE(layout.ok());
    const std::size_t old_segments = layout->segments.size();
    for (const SegmentInfo& s : layout->segments)
        REQUIRE(s.version == (s.flush_align_bytes == 0 ? 1u : 3u));
    for (const auto& [index, group] : scanned_groups(dir.path())) REQUIRE(group == 0);
    {
        auto wal = open_ok(dir.path());
        require_log_is(*wal, 1, 200);
        // Group 0 goes on in the old active segment (version 1 on the
        // buffered path, 3 on the direct one).
        REQUIRE(append_sync(*wal, make_records(201, 5)).ok());
        REQUIRE(wal->stats().segments == old_segments);
        // Another group needs a segment of version 4.
        REQUIRE(append_sync(*wal, {group_record(206, 3)}).ok());
        REQUIRE(wal->stats().segments == old_segments + 1);
    }
    layout = read_wal_layout(dir.path());
    REQUIRE(layout.ok());
    REQUIRE(layout->segments.back().version == 4u);
    REQUIRE(layout->segments.back().first_index == 206);
    auto wal = open_ok(dir.path());
    REQUIRE_FALSE(wal->open_report().torn_tail);
    auto got = wal->read(1, 207);
    REQUIRE(got.ok());
    for (std::uint64_t i = 1; i <= 205; ++i) REQUIRE((*got)[i - 1] == make_record(i));
    REQUIRE((*got)[205] == group_record(206, 3));
}

TEST_CASE("an idle group pins the oldest segment until it releases its records") {
    TempDir dir;
    auto wal = open_ok(dir.path());
    // Group 9 (idle) writes 5 records, then group 1 (hot) writes through
    // several segments.
    append_group(*wal, 1, 5, 9);
    append_group(*wal, 6, 600, 1);
    const std::uint64_t segments = wal->stats().segments;
    REQUIRE(segments >= 4);

    // Group 1 releases everything it has: group 9 still needs the first
    // segment, and so nothing after it goes either (oldest first).
    REQUIRE(wal->release(1, 601).ok());
    REQUIRE(wal->first_index() == 1);
    REQUIRE(wal->stats().segments == segments);
    auto pins = wal->oldest_segment_pins();
    REQUIRE(pins.size() == 1);
    REQUIRE(pins[0].group == 9);
    REQUIRE(pins[0].segment_first_index == 1);
    REQUIRE(pins[0].last_index == 5);
    REQUIRE(pins[0].released_below == 1);

    // Releasing less than its last record there keeps the pin.
    REQUIRE(wal->release(9, 5).ok());
    REQUIRE(wal->stats().segments == segments);
    REQUIRE(wal->oldest_segment_pins().at(0).released_below == 5);

    // Once group 9 lets go, every segment but the active one goes.
    REQUIRE(wal->release(9, 6).ok());
    REQUIRE(wal->stats().segments == 1);
    REQUIRE(wal->oldest_segment_pins().empty());
    REQUIRE(wal->first_index() > 6);
    auto last = wal->read(600, 601);
    REQUIRE(last.ok());
    REQUIRE(last->at(0) == group_record(600, 1));
    REQUIRE(wal->read(1, 2).status().code() == ErrorCode::not_found);
}

TEST_CASE("a segment goes once every group in it released it, not before") {
    TempDir dir;
    auto wal = open_ok(dir.path());
    // Groups 1 and 2 alternate by tens through several segments.
    for (std::uint64_t i = 1; i <= 600; i += 10) append_group(*wal, i, i + 9, (i / 10) % 2 + 1);
    REQUIRE(wal->stats().segments >= 4);
    auto layout = read_wal_layout(dir.path());
    REQUIRE(layout.ok());
    const std::uint64_t second = layout->segments[1].first_index;
    const std::uint64_t third = layout->segments[2].first_index;

    // Group 1 releases all; group 2 only what lies in the first segment.
    REQUIRE(wal->release(1, 601).ok());
    REQUIRE(wal->first_index() == 1);
    REQUIRE(wal->release(2, second).ok());
    REQUIRE(wal->first_index() == second);
    // Group 2's last record in the second segment.
    std::uint64_t last_of_2 = 0;
    for (std::uint64_t i = second; i < third; ++i)
        if ((i - 1) / 10 % 2 + 1 == 2) last_of_2 = i;
    REQUIRE(last_of_2 != 0);
    REQUIRE(wal->release(2, last_of_2).ok());
    REQUIRE(wal->first_index() == second);
    const auto pins = wal->oldest_segment_pins();
    REQUIRE(pins.size() == 1);
    REQUIRE(pins[0].group == 2);
    REQUIRE(pins[0].last_index == last_of_2);
    REQUIRE(wal->release(2, last_of_2 + 1).ok());
    REQUIRE(wal->first_index() == third);
    // Every record of the kept segments is still there, with its group.
    auto got = wal->read(third, 601);
    REQUIRE(got.ok());
    for (const Record& r : *got) REQUIRE(r.group == (r.index - 1) / 10 % 2 + 1);
}

TEST_CASE("releases of several groups are one metadata write, all or none") {
    TempDir dir;
    std::uint64_t second = 0;
    {
        auto wal = open_ok(dir.path());
        for (std::uint64_t i = 1; i <= 600; i += 10) append_group(*wal, i, i + 9, (i / 10) % 2 + 1);
        REQUIRE(wal->stats().segments >= 4);
        auto layout = read_wal_layout(dir.path());
        REQUIRE(layout.ok());
        second = layout->segments[1].first_index;
        // One release out of range: refused, and the valid one is not made.
        const std::vector<Release> bad{{1, second}, {2, 602}};
        REQUIRE(wal->release(bad).code() == ErrorCode::invalid_argument);
        REQUIRE(wal->first_index() == 1);
        REQUIRE(wal->oldest_segment_pins().size() == 2);
        // Both at once: the first segment goes.
        const std::vector<Release> both{{1, second}, {2, second}};
        REQUIRE(wal->release(both).ok());
        REQUIRE(wal->first_index() == second);
        // Nothing to release: ok.
        REQUIRE(wal->release(std::vector<Release>{}).ok());
        REQUIRE(wal->release(both).ok());
    }
    auto wal = open_ok(dir.path());
    REQUIRE(wal->first_index() == second);
}

TEST_CASE("releases are durable: a reopened WAL remembers them") {
    TempDir dir;
    std::uint64_t segments = 0;
    {
        auto wal = open_ok(dir.path());
        append_group(*wal, 1, 5, 9);
        append_group(*wal, 6, 600, 1);
        segments = wal->stats().segments;
        REQUIRE(wal->release(1, 601).ok());
        REQUIRE(wal->stats().segments == segments);
    }
    auto wal = open_ok(dir.path());
    REQUIRE(wal->stats().segments == segments);
    REQUIRE(wal->oldest_segment_pins().size() == 1);
    // Group 1's release came back from disk: group 9's alone frees the rest.
    REQUIRE(wal->release(9, 6).ok());
    REQUIRE(wal->stats().segments == 1);
}

TEST_CASE("compact_before is a release by every group") {
    TempDir dir;
    auto wal = open_ok(dir.path());
    append_group(*wal, 1, 5, 9);
    append_group(*wal, 6, 600, 1);
    REQUIRE(wal->compact_before(400).ok());
    REQUIRE(wal->first_index() == 400);
    REQUIRE(wal->oldest_segment_pins().size() <= 1);
    for (const SegmentPin& pin : wal->oldest_segment_pins()) REQUIRE(pin.group == 1);
}

namespace {

// A log of groups 1 (indexes 1..5), 2 (6..200) and 3 (201..400).
void build_three_groups(Wal& wal) {
    append_group(wal, 1, 5, 1);
    append_group(wal, 6, 200, 2);
    append_group(wal, 201, 400, 3);
}

std::uint64_t group_of(std::uint64_t index) {
    return index <= 5 ? 1 : index <= 200 ? 2 : 3;
}

}  // namespace

TEST_CASE("a crash at any instant of a release recovers to before or after") {
    TempDir base;
    FaultFs fs;
    const std::string dir = base.sub("wal");
    std::vector<std::string> snapshots;
    {
        auto wal = open_ok(dir, small_options(&fs));
        build_three_groups(*wal);
        REQUIRE(wal->release(2, 201).ok());  // pinned by group 1: nothing goes
        REQUIRE(wal->release(3, 300).ok());
        REQUIRE(wal->stats().segments > 3);
        int n = 0;
        fs.set_before_mutation([&](const std::string&) {
            const std::string snap = base.sub("snap" + std::to_string(n++));
            copy_dir(dir, snap);
            snapshots.push_back(snap);
        });
        REQUIRE(wal->release(1, 6).ok());  // frees every segment below group 3's 300
        REQUIRE(wal->first_index() > 6);
        wal.reset();  // joins the background thread: deletions are done
        fs.set_before_mutation(nullptr);
    }
    snapshots.push_back(base.sub("snap-final"));
    copy_dir(dir, snapshots.back());
    REQUIRE(snapshots.size() > 3);
    int before = 0, after = 0;
    for (const auto& snap : snapshots) {
        INFO(snap);
        auto wal = open_ok(snap);
        const std::uint64_t first = wal->first_index();
        REQUIRE(wal->last_index() == 400);
        // Before: nothing deleted; after: the floor is past groups 1 and 2
        // and at most at group 3's release.  Never a record a group needs lost.
        REQUIRE((first == 1 || (first > 200 && first <= 300)));
        (first == 1 ? before : after)++;
        auto got = wal->read(first, 401);
        REQUIRE(got.ok());
        for (const Record& r : *got) REQUIRE(r == group_record(r.index, group_of(r.index)));
        // The releases came through: group 1's is the last one needed.
        if (first == 1) {
            const auto pins = wal->oldest_segment_pins();
            REQUIRE(pins.size() == 1);
            REQUIRE(pins[0].group == 1);
            REQUIRE(wal->release(1, 6).ok());
            REQUIRE(wal->first_index() > 200);
        }
        REQUIRE(wal->oldest_segment_pins().at(0).group == 3);
    }
    REQUIRE(before > 0);
    REQUIRE(after > 0);
}

namespace {

// `meta` with its release table replaced by `entries` (a valid CRC).
std::string meta_with_releases(const std::string& meta,
                               const std::vector<std::pair<std::uint64_t, std::uint64_t>>& entries,
                               std::uint32_t count) {
    std::uint32_t opaque = 0;
    std::memcpy(&opaque, meta.data() + 88, 4);
    std::string out = meta.substr(0, wal::detail::kMetadataFixedBytes + opaque);
    out.append(reinterpret_cast<const char*>(&count), 4);
    for (const auto& [group, below] : entries) {
        out.append(reinterpret_cast<const char*>(&group), 8);
        out.append(reinterpret_cast<const char*>(&below), 8);
    }
    const auto size = static_cast<std::uint32_t>(out.size());
    std::memcpy(out.data() + 12, &size, 4);
    const std::uint32_t crc = crc32c(out.data() + 20, out.size() - 20);
    std::memcpy(out.data() + 16, &crc, 4);
    return out;
}

}  // namespace

TEST_CASE("a release table from disk is checked, and refused with a status when wrong") {
    TempDir dir;
    {
        auto wal = open_ok(dir.path());
        build_three_groups(*wal);
        REQUIRE(wal->release(2, 100).ok());
    }
    const std::string path = dir.path() + "/meta";
    const std::string good = read_file_bytes(path);
    REQUIRE(wal::detail::decode_metadata(good)->releases ==
            std::map<std::uint64_t, std::uint64_t>{{2, 100}});
    using Entries = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
    const std::vector<std::pair<const char*, std::string>> bad = {
        {"groups out of order", meta_with_releases(good, {{3, 250}, {2, 100}}, 2)},
        {"a group twice", meta_with_releases(good, {{2, 100}, {2, 150}}, 2)},
        {"a group over kMaxGroup", meta_with_releases(good, {{kMaxGroup + 1, 100}}, 1)},
        {"an index past 2^62 + 1", meta_with_releases(good, {{2, (1ull << 62) + 2}}, 1)},
        {"a zero index", meta_with_releases(good, {{2, 0}}, 1)},
        {"a count the bytes do not hold", meta_with_releases(good, {{2, 100}}, 2)},
        {"a count over the limit", meta_with_releases(good, Entries{}, kMaxReleasedGroups + 1)},
    };
    for (const auto& [what, bytes] : bad) {
        INFO(what);
        REQUIRE_FALSE(wal::detail::decode_metadata(bytes).has_value());
        write_file_bytes(path, bytes);
        auto wal = Wal::open(dir.path(), small_options());
        REQUIRE(wal.status().code() == ErrorCode::corruption);
        auto scan = scan_wal(dir.path(), ScanOptions{}, nullptr);
        REQUIRE(scan.status().code() == ErrorCode::corruption);
    }
    write_file_bytes(path, good);
    REQUIRE(Wal::open(dir.path(), small_options()).ok());
}

TEST_CASE("a release table of exactly kMaxReleasedGroups entries decodes; one more is refused") {
    wal::detail::MetadataFile m;
    m.log_floor = 1;
    for (std::uint64_t g = 0; g < kMaxReleasedGroups; ++g) m.releases[g * 3] = 2 + g;
    const std::string bytes = wal::detail::encode_metadata(m);
    auto decoded = wal::detail::decode_metadata(bytes);
    REQUIRE(decoded.has_value());
    REQUIRE(decoded->releases == m.releases);
    REQUIRE(bytes.size() == wal::detail::kMaxMetadataFileBytes - kMaxMetadataOpaqueBytes);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> entries(m.releases.begin(),
                                                                 m.releases.end());
    entries.emplace_back(kMaxGroup, 5);
    REQUIRE_FALSE(
        wal::detail::decode_metadata(meta_with_releases(bytes, entries, kMaxReleasedGroups + 1))
            .has_value());
}

TEST_CASE("a record whose group id is over kMaxGroup is damage, not a record") {
    TempDir dir;
    {
        auto wal = open_ok(dir.path());
        append_group(*wal, 1, 20, 4);
    }
    // Rewrite the last record with a group over the limit and a CRC that
    // matches: only the group check can tell.
    std::string file;
    std::uint64_t offset = 0, bytes = 0;
    std::uint32_t prev = 0;
    auto scan = scan_wal(dir.path(), ScanOptions{}, [&](const ScannedRecord& r) {
        if (r.index == 20) {
            file = dir.path() + "/" + r.segment->file_name;
            offset = r.offset;
            bytes = r.record_bytes;
        }
    });
    REQUIRE(scan.ok());
    std::string data = read_file_bytes(file);
    std::memcpy(&prev, data.data() + offset + 28, 4);
    const std::string payload = data.substr(offset + wal::detail::kGroupRecordHeaderBytes, 200);
    wal::detail::encode_record({20, 1, static_cast<std::uint16_t>(20 % 3), kMaxGroup + 1}, payload,
                               prev, wal::detail::kGroupRecordHeaderBytes, data.data() + offset);
    REQUIRE(wal::detail::record_bytes(200, wal::detail::kGroupRecordHeaderBytes) == bytes);
    write_file_bytes(file, data);

    auto after = scan_wal(dir.path(), ScanOptions{}, nullptr);
    REQUIRE(after.ok());
    REQUIRE(after->torn_only());  // the last record: cut like a torn write
    REQUIRE(after->last_index == 19);
    auto wal = open_ok(dir.path());
    REQUIRE(wal->open_report().torn_tail);
    REQUIRE(wal->last_index() == 19);
}

TEST_CASE("releases while two groups append and the log rolls lose no unreleased record") {
    TempDir dir;
    std::atomic<bool> done{false};
    std::atomic<bool> refused{false};  // a release failed (Catch asserts on this thread only)
    {
        auto wal = open_ok(dir.path());
        // Group 1 releases what it has written so far, over and over, while
        // records of groups 1 and 2 alternate by fives.
        std::thread releaser([&] {
            while (!done.load()) {
                const std::uint64_t upto = wal->last_index() + 1;
                if (!wal->release(1, upto).ok()) refused.store(true);
            }
        });
        for (std::uint64_t i = 1; i <= 1000; i += 5) append_group(*wal, i, i + 4, (i / 5) % 2 + 1);
        done.store(true);
        releaser.join();
        REQUIRE_FALSE(refused.load());
        // Group 2 never released: the floor is at most its first record's segment.
        REQUIRE(wal->first_index() <= 6);
        REQUIRE(wal->release(2, 1001).ok());
        REQUIRE(wal->release(1, 1001).ok());
        REQUIRE(wal->stats().segments == 1);
    }
    auto wal = open_ok(dir.path());
    auto got = wal->read(wal->first_index(), 1001);
    REQUIRE(got.ok());
    for (const Record& r : *got) REQUIRE(r == group_record(r.index, (r.index - 1) / 5 % 2 + 1));
}
