// The direct write path and the block-aligned segment layout (docs/wal.md,
// "Write paths"): batches start on fresh blocks behind a batch header and
// never rewrite one that holds acknowledged records, the padding is not
// taken for a torn record, either path reads what the other wrote (and what
// an older keel wrote, layout version 2), `auto` falls back where O_DIRECT
// is refused, a write torn at any 512-byte sectors loses no acknowledged
// record and recovers without `repair`, and the same damage to an earlier
// batch is still refused as corruption.  Run with TMPDIR on a file system that takes O_DIRECT
// (tests/wal/meson.build puts it in the build tree).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "../common/test_seed.hpp"
#include "keel/crc32c.hpp"
#include "keel/wal/reader.hpp"
#include "keel/wal/wal.hpp"
#include "old_layout.hpp"
#include "test_util.hpp"

using namespace keel;
using namespace keel::wal;
using namespace keel::wal::test;

namespace {

constexpr std::uint64_t kBlock = 4096;
constexpr std::uint64_t kSector = 512;
constexpr std::uint64_t kBatchHeader = 32;  // docs/wal.md, "Segment file", version 3

Options options_for(WritePath path, FileSystem* fs = nullptr) {
    Options o = small_options(fs);
    o.write_path = path;
    return o;
}

std::unique_ptr<Wal> open_ok(const std::string& dir, const Options& o) {
    auto wal = Wal::open(dir, o);
    INFO(wal.status().to_string());
    REQUIRE(wal.ok());
    return std::move(*wal);
}

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_all(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct Placed {
    std::string file;
    std::uint64_t offset;
    std::uint64_t bytes;
};

// Every record's place, by index (scan_wal: what recovery reads).
std::map<std::uint64_t, Placed> places(const std::string& dir) {
    std::map<std::uint64_t, Placed> out;
    auto scan = scan_wal(dir, ScanOptions{}, [&](const ScannedRecord& r) {
        out[r.index] = {r.segment->file_name, r.offset, r.record_bytes};
    });
    REQUIRE(scan.ok());
    REQUIRE(scan->clean());
    return out;
}

std::map<std::string, std::uint32_t> layouts(const std::string& dir) {
    auto layout = read_wal_layout(dir);
    REQUIRE(layout.ok());
    std::map<std::string, std::uint32_t> out;
    for (const SegmentInfo& s : layout->segments) {
        REQUIRE(s.header_ok);
        // Both paths write version 4 (packed or batched); versions 1 to 3
        // only come from an older keel (to_layout_2 below).
        REQUIRE(s.version == 4u);
        out[s.file_name] = s.flush_align_bytes;
    }
    return out;
}

}  // namespace

TEST_CASE("the direct path starts every batch on a fresh block and pads the last with zeros") {
    TempDir dir;
    Options o = options_for(WritePath::direct);
    o.segment_bytes = 64 * 1024;
    auto wal = open_ok(dir.path(), o);
    REQUIRE(wal->write_path() == WritePath::direct);
    // Batches of 1..9 records of 100 bytes (136 on disk): 1 to 3 blocks each.
    std::vector<std::uint64_t> batch_first;
    std::uint64_t next = 1;
    for (std::uint64_t n = 1; next < 200; n = n % 9 + 1) {
        batch_first.push_back(next);
        REQUIRE(append_sync(*wal, make_records(next, n, 1, 100)).ok());
        next += n;
    }
    wal.reset();
    const auto at = places(dir.path());
    REQUIRE(at.size() == next - 1);
    for (const auto& [file, align] : layouts(dir.path())) REQUIRE(align == kBlock);
    for (std::size_t b = 0; b < batch_first.size(); ++b) {
        const std::uint64_t first = batch_first[b];
        const std::uint64_t last = b + 1 < batch_first.size() ? batch_first[b + 1] - 1 : next - 1;
        INFO("batch " << first << ".." << last);
        const Placed& p = at.at(first);
        // Behind the batch header, at the start of a block.
        REQUIRE(p.offset % kBlock == kBatchHeader);
        REQUIRE(p.offset >= kBlock);  // the first block holds the segment header alone
        for (std::uint64_t i = first + 1; i <= last; ++i) {
            if (at.at(i).file != p.file) continue;  // rolled inside the batch
            const Placed& prev = at.at(i - 1);
            REQUIRE(at.at(i).offset == prev.offset + prev.bytes);  // packed inside a batch
        }
        // The rest of the batch's last block is zeros.
        const Placed& end = at.at(last);
        const std::string bytes = read_all(dir.path() + "/" + end.file);
        const std::uint64_t from = end.offset + end.bytes;
        const std::uint64_t to = (from + kBlock - 1) / kBlock * kBlock;
        REQUIRE(bytes.substr(from, to - from) == std::string(to - from, '\0'));
    }
}

TEST_CASE("the padding of a batch is no torn record: a direct WAL reopens clean and continues") {
    TempDir dir;
    {
        auto wal = open_ok(dir.path(), options_for(WritePath::direct));
        for (std::uint64_t i = 1; i <= 40; i += 4)
            REQUIRE(append_sync(*wal, make_records(i, 4)).ok());
    }
    auto wal = open_ok(dir.path(), options_for(WritePath::direct));
    REQUIRE_FALSE(wal->open_report().torn_tail);
    REQUIRE_FALSE(wal->open_report().repaired);
    const std::uint64_t segments = wal->stats().segments;
    REQUIRE(append_sync(*wal, make_records(41, 3)).ok());
    require_log_is(*wal, 1, 43);
    REQUIRE(wal->stats().segments >= segments);  // no roll at open: the layout fits
    REQUIRE(wal->open_report().removed_segments == 0);
}

TEST_CASE("either path reads what the other wrote; the direct path rolls off a buffered segment") {
    TempDir dir;
    {
        auto wal = open_ok(dir.path(), options_for(WritePath::buffered));
        REQUIRE(wal->write_path() == WritePath::buffered);
        REQUIRE(append_sync(*wal, make_records(1, 300)).ok());  // several segments
    }
    std::size_t buffered_segments = 0;
    for (const auto& [file, align] : layouts(dir.path())) {
        REQUIRE(align == 0);
        ++buffered_segments;
    }
    {
        auto wal = open_ok(dir.path(), options_for(WritePath::direct));
        REQUIRE(wal->write_path() == WritePath::direct);
        // Closed the buffered active segment: a new one, batched.
        REQUIRE(wal->stats().segments == buffered_segments + 1);
        require_log_is(*wal, 1, 300);
        REQUIRE(append_sync(*wal, make_records(301, 20)).ok());
        require_log_is(*wal, 1, 320);
    }
    const auto after_direct = layouts(dir.path());
    REQUIRE(after_direct.rbegin()->second == kBlock);
    {
        // The buffered path keeps the active segment's layout.
        auto wal = open_ok(dir.path(), options_for(WritePath::buffered));
        require_log_is(*wal, 1, 320);
        REQUIRE(append_sync(*wal, make_records(321, 5)).ok());
        REQUIRE(append_sync(*wal, make_records(326, 5)).ok());
    }
    const auto at = places(dir.path());
    REQUIRE(at.at(321).offset % kBlock == kBatchHeader);
    REQUIRE(at.at(326).offset % kBlock == kBatchHeader);
    auto wal = open_ok(dir.path(), options_for(WritePath::direct));
    REQUIRE(layouts(dir.path()).size() ==
            after_direct.size() + (at.at(330).file != after_direct.rbegin()->first));
    require_log_is(*wal, 1, 330);
}

TEST_CASE("truncating back into a buffered-layout segment on the direct path rolls to a new one") {
    TempDir dir;
    {
        auto wal = open_ok(dir.path(), options_for(WritePath::buffered));
        REQUIRE(append_sync(*wal, make_records(1, 100)).ok());
    }
    auto wal = open_ok(dir.path(), options_for(WritePath::direct));
    REQUIRE(append_sync(*wal, make_records(101, 50)).ok());
    REQUIRE(truncate_after_sync(*wal, 50).ok());
    REQUIRE(append_sync(*wal, make_records(51, 10)).ok());
    require_log_is(*wal, 1, 60);
    wal.reset();
    const auto at = places(dir.path());
    REQUIRE(layouts(dir.path()).at(at.at(51).file) == kBlock);
    REQUIRE(layouts(dir.path()).at(at.at(50).file) == 0);
    auto again = open_ok(dir.path(), options_for(WritePath::direct));
    require_log_is(*again, 1, 60);
}

TEST_CASE("auto picks direct where O_DIRECT works and falls back where it is refused") {
    TempDir base;
    FaultFs fs;
    SECTION("a file system that takes O_DIRECT") {
        auto wal = open_ok(base.sub("a"), options_for(WritePath::automatic, &fs));
        CHECK(wal->write_path() == WritePath::direct);
        REQUIRE(append_sync(*wal, make_records(1, 5)).ok());
        wal.reset();
        CHECK(layouts(base.sub("a")).begin()->second == kBlock);
    }
    SECTION("one that refuses it, as tmpfs before Linux 6.6 does") {
        fs.set_inject(fail_on("open_direct", "", ErrorCode::unsupported));
        auto wal = open_ok(base.sub("b"), options_for(WritePath::automatic, &fs));
        CHECK(wal->write_path() == WritePath::buffered);
        REQUIRE(append_sync(*wal, make_records(1, 5)).ok());
        wal.reset();
        CHECK(layouts(base.sub("b")).begin()->second == 0);
        // `direct` asked for explicitly does not fall back: open says why.
        auto direct = Wal::open(base.sub("c"), options_for(WritePath::direct, &fs));
        REQUIRE_FALSE(direct.ok());
        CHECK(direct.status().code() == ErrorCode::unsupported);
    }
}

namespace {

// A direct WAL of 12 acknowledged records (four batches), then a batch of
// 100 records of 100 bytes (13,632 bytes with its header: four blocks),
// with the segment's bytes just before that batch's write reached the disk
// and after it (and after `later` more records, one batch, when asked).
struct WatchedBatch {
    static constexpr std::uint64_t kAcked = 12;
    static constexpr std::uint64_t kBatch = 100;
    std::string before;  // the directory just before the batch's write
    std::string after;   // and at the end
    std::string seg;     // the segment the batch went to
    std::string old_bytes, new_bytes;
    std::uint64_t start = 0;  // the batch's first byte (its header), block-aligned
    std::uint64_t sectors = 0;
    std::map<std::uint64_t, Placed> at;
    std::uint64_t segment_bytes = 64 * 1024;

    WatchedBatch(TempDir& base, std::uint64_t later) {
        FaultFs fs;
        after = base.sub("wal");
        before = base.sub("before");
        Options o = options_for(WritePath::direct, &fs);
        o.segment_bytes = segment_bytes;
        auto wal = open_ok(after, o);
        for (std::uint64_t i = 1; i <= kAcked; i += 3)
            REQUIRE(append_sync(*wal, make_records(i, 3)).ok());
        bool armed = true;
        fs.set_before_mutation([&](const std::string& what) {
            if (armed && what.rfind("write ", 0) == 0 && what.find(".wal") != std::string::npos) {
                copy_dir(after, before);
                armed = false;
            }
        });
        REQUIRE(append_sync(*wal, make_records(kAcked + 1, kBatch, 1, 100)).ok());
        REQUIRE_FALSE(armed);
        fs.set_before_mutation(nullptr);
        if (later != 0) REQUIRE(append_sync(*wal, make_records(kAcked + kBatch + 1, later)).ok());
        wal.reset();
        at = places(after);
        seg = at.at(kAcked + 1).file;
        REQUIRE(at.at(kAcked + kBatch + later).file == seg);
        old_bytes = read_all(before + "/" + seg);
        new_bytes = read_all(after + "/" + seg);
        REQUIRE(old_bytes.size() == new_bytes.size());
        start = at.at(kAcked + 1).offset - kBatchHeader;
        const Placed& last = at.at(kAcked + kBatch);
        const std::uint64_t end = (last.offset + last.bytes + kBlock - 1) / kBlock * kBlock;
        REQUIRE(start % kBlock == 0);
        REQUIRE(end - start == 4 * kBlock);
        REQUIRE(old_bytes.substr(start, end - start) == std::string(end - start, '\0'));
        sectors = (end - start) / kSector;
    }

    // The segment as the disk kept it: of the batch's sectors only those
    // `kept` (the others hold what they held before the write: zeros).
    std::string torn(const std::vector<bool>& kept) const {
        std::string bytes = new_bytes;
        for (std::uint64_t s = 0; s < sectors; ++s)
            if (!kept[s])
                bytes.replace(start + s * kSector, kSector,
                              old_bytes.substr(start + s * kSector, kSector));
        return bytes;
    }

    // How many of the batch's records lie wholly in kept sectors, from its
    // first: what recovery keeps of it (none when the header's sector is lost).
    std::uint64_t kept_records(const std::vector<bool>& kept) const {
        if (!kept[0]) return 0;
        std::uint64_t n = 0;
        for (std::uint64_t i = kAcked + 1; i <= kAcked + kBatch; ++i, ++n) {
            const Placed& p = at.at(i);
            for (std::uint64_t b = p.offset - start; b < p.offset + p.bytes - start; b += kSector)
                if (!kept[b / kSector]) return n;
            if (!kept[(p.offset + p.bytes - 1 - start) / kSector]) return n;
        }
        return n;
    }

    // Sectors whose content the write changed (the rest of the last block
    // is zeros before and after: losing those sectors changes nothing).
    bool changed(std::uint64_t s) const {
        return old_bytes.compare(start + s * kSector, kSector, new_bytes, start + s * kSector,
                                 kSector) != 0;
    }

    Options reopen_options() const {
        Options ro = options_for(WritePath::direct);
        ro.segment_bytes = segment_bytes;
        ro.preallocate = false;  // no background zero-filling: keeps the many opens fast
        return ro;
    }
};

}  // namespace

TEST_CASE("a batch write torn at any 512-byte sectors loses no acknowledged record and opens") {
    TempDir base;
    const WatchedBatch w(base, 0);
    const std::uint64_t acked = WatchedBatch::kAcked;

    // The disk kept the sectors `kept` of the final batch's write and none
    // of the others: open recovers without repair, keeps every acknowledged
    // record and exactly the records of the batch that were wholly kept
    // from its first on, cuts the rest, and takes new appends; those
    // reopen clean.
    auto recover = [&](const std::vector<bool>& kept, const std::string& name) {
        const std::string torn = base.sub(name);
        std::filesystem::remove_all(torn);
        copy_dir(w.before, torn);
        write_all(torn + "/" + w.seg, w.torn(kept));
        const std::uint64_t expect_last = acked + w.kept_records(kept);
        // Every acknowledged record, what was kept of the write, and (after)
        // the record appended since, intact.
        auto require_log = [&](Wal& wal, std::uint64_t last) {
            REQUIRE(wal.last_index() == last);
            auto got = wal.read(1, last + 1);
            REQUIRE(got.ok());
            REQUIRE(got->size() == last);
            for (std::uint64_t i = 1; i <= last; ++i)
                REQUIRE((*got)[i - 1] ==
                        (i <= acked || i > expect_last ? make_record(i) : make_record(i, 1, 100)));
        };
        {
            auto opened = Wal::open(torn, w.reopen_options());
            INFO(opened.status().to_string());
            REQUIRE(opened.ok());
            REQUIRE_FALSE((*opened)->open_report().repaired);
            require_log(**opened, expect_last);
            REQUIRE(append_sync(**opened, {make_record(expect_last + 1)}).ok());
        }
        auto again = open_ok(torn, w.reopen_options());
        REQUIRE_FALSE(again->open_report().torn_tail);
        require_log(*again, expect_last + 1);
    };

    SECTION("every prefix of the sectors (the disk wrote them in order)") {
        for (std::uint64_t p = 0; p <= w.sectors; ++p) {
            INFO("sectors kept: the first " << p << " of " << w.sectors);
            std::vector<bool> kept(w.sectors, false);
            for (std::uint64_t s = 0; s < p; ++s) kept[s] = true;
            recover(kept, "prefix");
        }
    }
    SECTION("every single sector lost, the later ones kept") {
        for (std::uint64_t lost = 0; lost < w.sectors; ++lost) {
            INFO("sector lost: " << lost << " of " << w.sectors);
            std::vector<bool> kept(w.sectors, true);
            kept[lost] = false;
            recover(kept, "one-lost");
        }
    }
    SECTION("random subsets of the sectors") {
        const std::uint64_t seed = keel::test::seed_from_env().value_or(27);
        INFO("seed " << seed << " (rerun with KEEL_SEED=" << seed << ")");
        std::mt19937_64 rng(seed);
        for (int run = 0; run < 40; ++run) {
            std::vector<bool> kept(w.sectors);
            for (std::uint64_t s = 0; s < w.sectors; ++s) kept[s] = (rng() & 1) != 0;
            INFO("run " << run);
            recover(kept, "subset");
        }
    }
}

TEST_CASE("the same sectors lost from a batch that a later batch follows are corruption") {
    TempDir base;
    const WatchedBatch w(base, 3);  // then a batch of three more records

    // Sectors of an acknowledged batch lost: open refuses, changing nothing.
    auto refused = [&](const std::vector<bool>& kept, const std::string& name) {
        const std::string damaged = base.sub(name);
        std::filesystem::remove_all(damaged);
        copy_dir(w.after, damaged);
        write_all(damaged + "/" + w.seg, w.torn(kept));
        const auto untouched = dir_contents(damaged);
        auto opened = Wal::open(damaged, w.reopen_options());
        REQUIRE_FALSE(opened.ok());
        INFO(opened.status().to_string());
        REQUIRE(opened.status().code() == ErrorCode::corruption);
        REQUIRE(dir_contents(damaged) == untouched);
    };

    SECTION("every single sector lost") {
        for (std::uint64_t lost = 0; lost < w.sectors; ++lost) {
            if (!w.changed(lost)) continue;
            INFO("sector lost: " << lost << " of " << w.sectors);
            std::vector<bool> kept(w.sectors, true);
            kept[lost] = false;
            refused(kept, "one-lost");
        }
    }
    SECTION("random subsets of the sectors") {
        const std::uint64_t seed = keel::test::seed_from_env().value_or(27);
        INFO("seed " << seed << " (rerun with KEEL_SEED=" << seed << ")");
        std::mt19937_64 rng(seed);
        for (int run = 0; run < 40; ++run) {
            std::vector<bool> kept(w.sectors);
            bool damage = false;
            for (std::uint64_t s = 0; s < w.sectors; ++s) {
                kept[s] = (rng() & 1) != 0;
                damage |= !kept[s] && w.changed(s);
            }
            if (!damage) continue;
            INFO("run " << run);
            refused(kept, "subset");
        }
    }
}

namespace {

// Rewrites the version-4 segments of `dir` as an older keel wrote them,
// layout version 2 (docs/wal.md): first version 3 (old_layout.hpp), then
// each batch's records moved to the start of its block, the batch header
// gone.  Records carry no offsets, so they stay valid and chained.
void to_layout_2(const std::string& dir) {
    to_layout_before_groups(dir);
    auto layout = read_wal_layout(dir);
    REQUIRE(layout.ok());
    for (const SegmentInfo& s : layout->segments) {
        REQUIRE(s.version == 3u);
        const std::string path = dir + "/" + s.file_name;
        std::string bytes = read_all(path);
        std::uint32_t version = 2;
        std::memcpy(bytes.data() + 8, &version, 4);
        const std::uint32_t header_crc = crc32c(bytes.data(), 60);
        std::memcpy(bytes.data() + 60, &header_crc, 4);
        for (std::uint64_t p = kBlock; p + kBatchHeader <= bytes.size(); p += kBlock) {
            if (bytes.compare(p + 4, 4, "KBAT") != 0) continue;
            std::uint64_t length = 0;
            std::memcpy(&length, bytes.data() + p + 16, 8);
            bytes.replace(p, length, bytes.substr(p + kBatchHeader, length));
            bytes.replace(p + length, kBatchHeader, std::string(kBatchHeader, '\0'));
        }
        write_all(path, bytes);
    }
}

}  // namespace

TEST_CASE("a WAL of layout version 2 (an older keel's direct path) opens and goes on") {
    TempDir dir;
    {
        auto wal = open_ok(dir.path(), options_for(WritePath::direct));
        for (std::uint64_t i = 1; i <= 200; i += 20)
            REQUIRE(append_sync(*wal, make_records(i, 20)).ok());
    }
    to_layout_2(dir.path());
    std::size_t old_segments = 0;
    {
        auto layout = read_wal_layout(dir.path());
        REQUIRE(layout.ok());
        for (const SegmentInfo& s : layout->segments) REQUIRE(s.version == 2u);
        old_segments = layout->segments.size();
        auto scan = scan_wal(dir.path(), ScanOptions{}, nullptr);
        REQUIRE(scan.ok());
        REQUIRE(scan->clean());
        REQUIRE(scan->records == 200);
    }
    SECTION("the buffered path writes on in version 2") {
        {
            auto wal = open_ok(dir.path(), options_for(WritePath::buffered));
            require_log_is(*wal, 1, 200);
            REQUIRE(append_sync(*wal, make_records(201, 5)).ok());
        }
        auto wal = open_ok(dir.path(), options_for(WritePath::buffered));
        REQUIRE_FALSE(wal->open_report().torn_tail);
        require_log_is(*wal, 1, 205);
    }
    SECTION("the direct path rolls to a version-4 segment") {
        {
            auto wal = open_ok(dir.path(), options_for(WritePath::direct));
            require_log_is(*wal, 1, 200);
            REQUIRE(wal->stats().segments == old_segments + 1);
            REQUIRE(append_sync(*wal, make_records(201, 5)).ok());
        }
        auto layout = read_wal_layout(dir.path());
        REQUIRE(layout.ok());
        REQUIRE(layout->segments.back().version == 4u);
        auto wal = open_ok(dir.path(), options_for(WritePath::direct));
        REQUIRE_FALSE(wal->open_report().torn_tail);
        require_log_is(*wal, 1, 205);
    }
}

TEST_CASE("a truncation inside a batch, then appends, reopens clean on the direct path") {
    TempDir dir;
    {
        auto wal = open_ok(dir.path(), options_for(WritePath::direct));
        for (std::uint64_t i = 1; i <= 30; i += 10)
            REQUIRE(append_sync(*wal, make_records(i, 10)).ok());
        // Cuts the second batch after its fifth record: its header still
        // gives the old extent.
        REQUIRE(truncate_after_sync(*wal, 15).ok());
        REQUIRE(append_sync(*wal, make_records(16, 3)).ok());
        REQUIRE(append_sync(*wal, make_records(19, 2)).ok());
        require_log_is(*wal, 1, 20);
    }
    auto wal = open_ok(dir.path(), options_for(WritePath::direct));
    REQUIRE_FALSE(wal->open_report().torn_tail);
    REQUIRE_FALSE(wal->open_report().repaired);
    require_log_is(*wal, 1, 20);
}
