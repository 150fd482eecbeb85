// Recovery: torn tails, corruption, gaps, the CRC chain, repair.
#include <catch2/catch.hpp>

#include <fstream>

#include "keel/wal/reader.hpp"
#include "keel/wal/wal.hpp"
#include "test_util.hpp"

using namespace keel;
using namespace keel::wal;
using namespace keel::wal::test;

namespace {

struct Located {
    std::string file;
    std::uint64_t offset = 0;
    std::uint64_t bytes = 0;
};

// Where record `index` lives, found with the public scanner.
Located locate(const std::string& dir, std::uint64_t index) {
    Located out;
    auto scan = scan_wal(dir, ScanOptions{}, [&](const ScannedRecord& r) {
        if (r.index == index) out = {r.segment->file_name, r.offset, r.record_bytes};
    });
    REQUIRE(scan.ok());
    REQUIRE(out.bytes > 0);
    return out;
}

void patch(const std::string& path, std::uint64_t offset, const std::string& bytes) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path, std::uint64_t offset, std::uint64_t n) {
    std::ifstream f(path, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    std::string out(n, '\0');
    f.read(out.data(), static_cast<std::streamsize>(n));
    return out;
}

// Records 1..count, `per_append` to an append (one flush each).  Damage in
// the last flush can be a torn write of it on the direct path (layout
// version 3, docs/wal.md): the tests of corruption damage an earlier one.
void build(const std::string& dir, std::uint64_t count, std::uint64_t term = 1,
           std::uint64_t per_append = 50) {
    auto wal = Wal::open(dir, small_options());
    REQUIRE(wal.ok());
    for (std::uint64_t i = 1; i <= count; i += per_append)
        REQUIRE(append_sync(**wal, make_records(
                                       i, std::min<std::uint64_t>(per_append, count + 1 - i), term))
                    .ok());
}

}  // namespace

TEST_CASE("a torn last record at every byte offset recovers to the previous record") {
    TempDir base;
    const std::string clean = base.sub("clean");
    build(clean, 5);
    const Located last = locate(clean, 5);  // 40-byte payload: no padding bytes
    for (std::uint64_t b = last.offset; b < last.offset + last.bytes; ++b) {
        for (bool cut_file : {false, true}) {
            const std::string dir = base.sub("torn");
            std::filesystem::remove_all(dir);
            copy_dir(clean, dir);
            const std::string seg = dir + "/" + last.file;
            if (cut_file) {
                std::filesystem::resize_file(seg, b);  // the write never extended the file
            } else {
                patch(seg, b,
                      std::string(last.offset + last.bytes - b, '\0'));  // preallocated zeros
            }
            INFO("byte offset " << b << (cut_file ? " (file cut)" : " (zeroed)"));
            Options o = small_options();
            o.preallocate = false;  // no background zero-filling: keeps 144 opens fast
            {
                auto wal = Wal::open(dir, o);
                REQUIRE(wal.ok());
                REQUIRE((*wal)->last_index() == 4);
                const OpenReport& r = (*wal)->open_report();
                REQUIRE(r.torn_tail == (b > last.offset));
                if (r.torn_tail) {
                    REQUIRE(r.torn_file == last.file);
                    REQUIRE(r.torn_offset == last.offset);
                }
                if (b % 8 != 0) continue;  // the rest proves the same thing; sample it
                REQUIRE(append_sync(**wal, {make_record(5, 9)}).ok());
            }
            auto wal = Wal::open(dir, o);
            REQUIRE(wal.ok());
            REQUIRE_FALSE((*wal)->open_report().torn_tail);
            REQUIRE((*wal)->last_index() == 5);
            REQUIRE((*(*wal)->read(5, 6))[0] == make_record(5, 9));
        }
    }
}

TEST_CASE("a flipped bit in a middle record fails open and modifies nothing") {
    TempDir base;
    build(base.path(), 10, 1, 5);
    const Located rec = locate(base.path(), 4);
    const std::string seg = base.path() + "/" + rec.file;
    std::string byte = read_bytes(seg, rec.offset + 40, 1);
    byte[0] ^= 0x10;
    patch(seg, rec.offset + 40, byte);
    const auto before = dir_contents(base.path());

    auto wal = Wal::open(base.path(), small_options());
    REQUIRE_FALSE(wal.ok());
    REQUIRE(wal.status().code() == ErrorCode::corruption);
    const std::string& msg = wal.status().message();
    REQUIRE_THAT(msg, Catch::Contains(rec.file) &&
                          Catch::Contains("offset " + std::to_string(rec.offset)) &&
                          Catch::Contains("index 4"));
    REQUIRE(dir_contents(base.path()) == before);

    SECTION("the repair option truncates there") {
        Options o = small_options();
        o.repair = true;
        auto repaired = Wal::open(base.path(), o);
        REQUIRE(repaired.ok());
        REQUIRE((*repaired)->open_report().repaired);
        REQUIRE((*repaired)->last_index() == 3);
    }
}

TEST_CASE("a stale record from another history breaks the chain and is detected") {
    TempDir a, b;
    build(a.path(), 8, 1);
    build(b.path(), 8, 2);  // same indexes and sizes, different terms
    const Located rec = locate(a.path(), 5);
    const Located other = locate(b.path(), 5);
    REQUIRE(rec.offset == other.offset);
    // A misplaced write: record 5 of the other history lands here.  It is
    // self-consistent, so only the chain can tell.
    patch(a.path() + "/" + rec.file, rec.offset,
          read_bytes(b.path() + "/" + other.file, other.offset, other.bytes));
    auto wal = Wal::open(a.path(), small_options());
    REQUIRE(wal.status().code() == ErrorCode::corruption);
    REQUIRE_THAT(wal.status().message(), Catch::Contains("chain"));
}

TEST_CASE("a missing middle segment is a gap error") {
    TempDir base;
    build(base.path(), 600);
    auto scan = scan_wal(base.path(), ScanOptions{}, nullptr);
    REQUIRE(scan.ok());
    REQUIRE(scan->segments.size() >= 3);
    std::filesystem::remove(base.path() + "/" + scan->segments[1].file_name);
    auto wal = Wal::open(base.path(), small_options());
    REQUIRE(wal.status().code() == ErrorCode::corruption);
    REQUIRE_THAT(wal.status().message(), Catch::Contains("gap"));
}

TEST_CASE("a damaged record followed by a valid segment is corruption, not a torn tail") {
    TempDir base;
    build(base.path(), 600);
    auto scan = scan_wal(base.path(), ScanOptions{}, nullptr);
    REQUIRE(scan.ok());
    const SegmentInfo& first = scan->segments[0];
    const Located last_of_first = locate(base.path(), first.last_index);
    patch(base.path() + "/" + first.file_name, last_of_first.offset + 8, std::string(8, '\x7f'));
    auto wal = Wal::open(base.path(), small_options());
    REQUIRE(wal.status().code() == ErrorCode::corruption);
}

TEST_CASE("the scanner classifies without modifying, and resyncs when asked") {
    TempDir base;
    build(base.path(), 10, 1, 5);
    const Located rec = locate(base.path(), 4);
    patch(base.path() + "/" + rec.file, rec.offset + 36, "XX");
    const auto before = dir_contents(base.path());
    std::uint64_t seen = 0;
    auto scan = scan_wal(base.path(), ScanOptions{}, [&](const ScannedRecord&) { ++seen; });
    REQUIRE(scan.ok());
    REQUIRE(seen == 3);
    REQUIRE(scan->issues.size() == 1);
    REQUIRE(scan->issues[0].kind == IssueKind::corruption);
    REQUIRE(scan->issues[0].offset == rec.offset);
    ScanOptions resync;
    resync.resync = true;
    seen = 0;
    scan = scan_wal(base.path(), resync, [&](const ScannedRecord&) { ++seen; });
    REQUIRE(seen == 9);
    REQUIRE(dir_contents(base.path()) == before);
}

TEST_CASE("a record damaged on disk after open fails its CRC on read") {
    TempDir base;
    Options o = small_options();
    o.cache_bytes = 0;  // every read goes to disk
    auto wal = Wal::open(base.path(), o);
    REQUIRE(wal.ok());
    REQUIRE(append_sync(**wal, make_records(1, 10)).ok());
    const Located rec = locate(base.path(), 6);
    patch(base.path() + "/" + rec.file, rec.offset + 40, "!");
    REQUIRE((*wal)->read(1, 6).ok());
    auto bad = (*wal)->read(1, 11);
    REQUIRE(bad.status().code() == ErrorCode::corruption);
    REQUIRE_THAT(bad.status().message(), Catch::Contains("record 6"));
}

TEST_CASE("repair of a gap keeps the log up to the missing segment") {
    TempDir base;
    build(base.path(), 600);
    auto layout = read_wal_layout(base.path());
    REQUIRE(layout.ok());
    REQUIRE(layout->segments.size() >= 3);
    const std::uint64_t kept_last = layout->segments[1].first_index - 1;
    std::filesystem::remove(base.path() + "/" + layout->segments[1].file_name);
    Options o = small_options();
    o.repair = true;
    auto wal = Wal::open(base.path(), o);
    REQUIRE(wal.ok());
    REQUIRE((*wal)->open_report().repaired);
    REQUIRE_THAT((*wal)->open_report().repair_detail, Catch::Contains("gap"));
    REQUIRE((*wal)->last_index() == kept_last);
    REQUIRE(append_sync(**wal, make_records(kept_last + 1, 3)).ok());
    wal->reset();
    auto again = Wal::open(base.path(), small_options());
    REQUIRE(again.ok());
    REQUIRE((*again)->last_index() == kept_last + 3);
}
