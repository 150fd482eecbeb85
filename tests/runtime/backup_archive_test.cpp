// The backup archive's codec (keel/backup_archive.hpp): what the writer
// makes reads back group by group; every damage an archive can come with
// (garbage, any byte changed, any truncation, bytes added, a group twice,
// another version, counts and sizes past the limits) is refused with a
// Status naming it, never an assertion; the writer refuses what would make
// a bad archive and leaves no partial file.
#include <zlib.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../common/temp_dir.hpp"
#include "../common/test_seed.hpp"
#include "keel/backup_archive.hpp"
#include "runtime/backup_archive.hpp"
#include "runtime/member_context.hpp"
#include "runtime/snapshot_store.hpp"

using namespace keel;
using keel::test::TempDir;

namespace {

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A snapshot file of `data` at (index, term) with one member, in `dir`.
std::string make_snapshot(const std::string& dir, std::uint64_t index, std::uint64_t term,
                          const std::string& data) {
    auto store = runtime::SnapshotStore::open(dir, *wal::default_file_system());
    REQUIRE(store.ok());
    auto writer = (*store)->begin();
    REQUIRE(writer.ok());
    REQUIRE((*writer)->write(data).ok());
    raft::SnapshotMeta meta;
    meta.index = index;
    meta.term = term;
    meta.config.members[7] = raft::MemberInfo{
        true, runtime::encode_member_context(MemberSpec{7, "127.0.0.1:7007", "", true})};
    auto file = (*store)->publish(**writer, meta);
    REQUIRE(file.ok());
    return file->path;
}

struct Archive {
    TempDir dir{"keel-archive"};
    std::string path = dir.sub("backup.keel");
    std::vector<std::string> snapshots;
};

// An archive of `groups` (ascending), group g's snapshot at index 10 * g.
void make_archive(Archive& a, const std::vector<GroupId>& groups, std::size_t data_bytes = 40) {
    auto writer = BackupArchiveWriter::create(a.path, groups.size());
    REQUIRE(writer.ok());
    for (GroupId g : groups) {
        const std::string dir = a.dir.sub("snap-" + std::to_string(g));
        a.snapshots.push_back(
            make_snapshot(dir, 10 * g + 1, g + 1, std::string(data_bytes, char('a' + g % 26))));
        auto added = (*writer)->add_group(g, a.snapshots.back());
        REQUIRE(added.ok());
    }
    auto info = (*writer)->finish();
    INFO(info.status().to_string());
    REQUIRE(info.ok());
}

std::uint32_t crc(const std::string& bytes) {
    return static_cast<std::uint32_t>(
        ::crc32_z(0, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}
void put_u32(std::string& s, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u64(std::string& s, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
// After a change to the header's fields: its CRC again.
void reseal_header(std::string& s) {
    put_u32(s, 20, crc(s.substr(0, 20)));
}
// After a change to the section header at `at`: its CRC and the footer's.
void reseal_section(std::string& s, const std::vector<std::size_t>& sections, std::size_t at) {
    put_u32(s, at + 36, crc(s.substr(at, 36)));
    std::uint32_t all = 0;
    for (std::size_t h : sections)
        all = static_cast<std::uint32_t>(
            ::crc32_z(all, reinterpret_cast<const Bytef*>(s.data() + h), 40));
    put_u32(s, s.size() - 24 + 12, all);
}

Result<BackupArchiveInfo> verify_bytes(const Archive& a, const std::string& bytes) {
    const std::string path = a.dir.sub("damaged.keel");
    write_all(path, bytes);
    return verify_backup_archive(path);
}

}  // namespace

TEST_CASE("an archive reads back every group's snapshot, byte for byte, with its group id",
          "[runtime][backup]") {
    Archive a;
    make_archive(a, {1, 2, 5}, 3000);
    auto info = verify_backup_archive(a.path);
    REQUIRE(info.ok());
    CHECK(info->version == kBackupArchiveVersion);
    CHECK(info->size_bytes == std::filesystem::file_size(a.path));
    REQUIRE(info->groups.size() == 3);
    const std::string bytes = read_all(a.path);
    const GroupId ids[] = {1, 2, 5};
    for (std::size_t i = 0; i < 3; ++i) {
        const BackupArchiveGroup& g = info->groups[i];
        CHECK(g.group == ids[i]);
        CHECK(g.snapshot.index == 10 * ids[i] + 1);
        CHECK(g.snapshot.term == ids[i] + 1);
        CHECK(g.snapshot.data_bytes == 3000);
        REQUIRE(g.snapshot.members.size() == 1);
        CHECK(g.snapshot.members[0].id == 7);
        CHECK(bytes.substr(g.offset, g.snapshot.size_bytes) == read_all(a.snapshots[i]));
    }
    CHECK_FALSE(std::filesystem::exists(a.path + ".part"));
}

TEST_CASE("garbage, and a plain snapshot file, are refused as no archive", "[runtime][backup]") {
    const std::uint64_t seed = test::seed_from_env().value_or(20261207);
    INFO("KEEL_SEED=" << seed);
    std::mt19937_64 rng(seed);
    Archive a;
    for (std::size_t size : {0, 1, 23, 47, 48, 100, 4096}) {
        std::string garbage(size, '\0');
        for (char& c : garbage) c = static_cast<char>(rng());
        auto info = verify_bytes(a, garbage);
        INFO(size << " bytes");
        CHECK(info.status().code() == ErrorCode::corruption);
    }
    const std::string snapshot = make_snapshot(a.dir.sub("plain"), 3, 1, "x");
    auto info = verify_backup_archive(snapshot);
    CHECK(info.status().code() == ErrorCode::corruption);
    CHECK_THAT(info.status().message(), Catch::Contains("is not a keel backup archive"));
    CHECK(verify_backup_archive(a.dir.sub("absent")).status().code() == ErrorCode::not_found);
    // And the other way: an archive is no snapshot file.
    make_archive(a, {1});
    CHECK(verify_snapshot_file(a.path).status().code() == ErrorCode::corruption);
}

TEST_CASE("any byte of an archive changed, any truncation and any bytes added are refused",
          "[runtime][backup]") {
    Archive a;
    make_archive(a, {1, 2});
    const std::string good = read_all(a.path);
    REQUIRE(verify_bytes(a, good).ok());
    for (std::size_t at = 0; at < good.size(); ++at) {
        std::string bad = good;
        bad[at] = static_cast<char>(bad[at] ^ 0x01);
        auto info = verify_bytes(a, bad);
        INFO("byte " << at << " of " << good.size() << ": " << info.status().to_string());
        CHECK_FALSE(info.ok());
    }
    for (std::size_t size = 0; size < good.size(); ++size) {
        auto info = verify_bytes(a, good.substr(0, size));
        INFO("cut to " << size << " bytes");
        CHECK(info.status().code() == ErrorCode::corruption);
    }
    auto padded = verify_bytes(a, good + std::string(1, '\0'));
    CHECK(padded.status().code() == ErrorCode::corruption);
    auto doubled = verify_bytes(a, good + good);
    CHECK(doubled.status().code() == ErrorCode::corruption);
}

TEST_CASE("an archive holding a group twice, or groups out of order, is refused",
          "[runtime][backup]") {
    Archive a;
    make_archive(a, {1, 2});
    std::string bytes = read_all(a.path);
    auto info = verify_backup_archive(a.path);
    REQUIRE(info.ok());
    const std::vector<std::size_t> sections = {info->groups[0].offset - 40,
                                               info->groups[1].offset - 40};
    std::string twice = bytes;
    put_u64(twice, sections[1], 1);
    reseal_section(twice, sections, sections[1]);
    auto dup = verify_bytes(a, twice);
    CHECK(dup.status().code() == ErrorCode::corruption);
    CHECK_THAT(dup.status().message(), Catch::Contains("holds group 1 twice"));

    std::string backwards = bytes;
    put_u64(backwards, sections[0], 3);
    reseal_section(backwards, sections, sections[0]);
    auto order = verify_bytes(a, backwards);
    CHECK_THAT(order.status().message(), Catch::Contains("must ascend"));

    // A section header that announces another index than its snapshot holds.
    std::string lying = bytes;
    put_u64(lying, sections[1] + 16, 999);
    reseal_section(lying, sections, sections[1]);
    auto announced = verify_bytes(a, lying);
    CHECK_THAT(announced.status().message(), Catch::Contains("announces index 999"));
}

TEST_CASE(
    "another version, and counts or sizes past the limits, are refused before anything "
    "is read for them",
    "[runtime][backup]") {
    Archive a;
    make_archive(a, {1});
    const std::string bytes = read_all(a.path);

    std::string version = bytes;
    put_u32(version, 8, kBackupArchiveVersion + 1);
    reseal_header(version);
    CHECK(verify_bytes(a, version).status().code() == ErrorCode::unsupported);

    // At the limit the count passes the header's check (and then the
    // sections are missing); one past it is too_large.
    std::string at_limit = bytes;
    put_u32(at_limit, 12, kBackupArchiveMaxGroups);
    reseal_header(at_limit);
    put_u32(at_limit, at_limit.size() - 24 + 8, kBackupArchiveMaxGroups);
    auto limit = verify_bytes(a, at_limit);
    CHECK(limit.status().code() == ErrorCode::corruption);
    CHECK_THAT(limit.status().message(), Catch::Contains("before section 2"));
    std::string past = bytes;
    put_u32(past, 12, kBackupArchiveMaxGroups + 1);
    reseal_header(past);
    CHECK(verify_bytes(a, past).status().code() == ErrorCode::too_large);

    std::string none = bytes;
    put_u32(none, 12, 0);
    reseal_header(none);
    CHECK_THAT(verify_bytes(a, none).status().message(), Catch::Contains("holds no group"));

    auto info = verify_backup_archive(a.path);
    REQUIRE(info.ok());
    const std::vector<std::size_t> sections = {info->groups[0].offset - 40};
    std::string huge = bytes;
    put_u64(huge, sections[0] + 8, kBackupArchiveMaxSnapshotBytes + 1);
    reseal_section(huge, sections, sections[0]);
    CHECK(verify_bytes(a, huge).status().code() == ErrorCode::too_large);
    std::string at_max = bytes;
    put_u64(at_max, sections[0] + 8, kBackupArchiveMaxSnapshotBytes);
    reseal_section(at_max, sections, sections[0]);
    auto max = verify_bytes(a, at_max);
    CHECK(max.status().code() == ErrorCode::corruption);
    CHECK_THAT(max.status().message(), Catch::Contains("runs past the footer"));
}

TEST_CASE("the writer refuses what would make a bad archive and leaves no partial file",
          "[runtime][backup]") {
    Archive a;
    CHECK(BackupArchiveWriter::create(a.path, 0).status().code() == ErrorCode::invalid_argument);
    CHECK(BackupArchiveWriter::create(a.path, kBackupArchiveMaxGroups + 1).status().code() ==
          ErrorCode::invalid_argument);
    CHECK(BackupArchiveWriter::create(a.path, kBackupArchiveMaxGroups).ok());
    CHECK_FALSE(std::filesystem::exists(a.path + ".part"));

    const std::string snap = make_snapshot(a.dir.sub("s"), 5, 2, "hello");
    {
        auto writer = BackupArchiveWriter::create(a.path, 2);
        REQUIRE(writer.ok());
        REQUIRE((*writer)->add_group(3, snap).ok());
        CHECK((*writer)->add_group(3, snap).status().code() == ErrorCode::invalid_argument);
        CHECK((*writer)->add_group(2, snap).status().code() == ErrorCode::invalid_argument);
        std::string damaged = read_all(snap);
        damaged[0] = static_cast<char>(damaged[0] ^ 0x40);
        write_all(a.dir.sub("damaged.snap"), damaged);
        CHECK((*writer)->add_group(4, a.dir.sub("damaged.snap")).status().code() ==
              ErrorCode::corruption);
        CHECK((*writer)->finish().status().code() == ErrorCode::invalid_argument);
        CHECK(std::filesystem::exists(a.path + ".part"));
    }
    CHECK_FALSE(std::filesystem::exists(a.path + ".part"));
    CHECK_FALSE(std::filesystem::exists(a.path));

    auto writer = BackupArchiveWriter::create(a.path, 1);
    REQUIRE(writer.ok());
    REQUIRE((*writer)->add_group(3, snap).ok());
    CHECK((*writer)->add_group(4, snap).status().code() == ErrorCode::invalid_argument);
    auto info = (*writer)->finish();
    REQUIRE(info.ok());
    CHECK(info->groups.size() == 1);
    CHECK(verify_backup_archive(a.path).ok());
}
