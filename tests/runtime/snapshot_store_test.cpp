// The snapshot files' checksums (runtime/snapshot_store.cpp): what the store
// writes and accepts is format version 1 as its first implementation
// (Boost.CRC) wrote it, so files written before the checksum code changed
// still verify.  Real files in a temporary directory; the data is seeded
// (KEEL_SEED replays one seed).
#include <catch2/catch.hpp>

#include <boost/crc.hpp>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "../common/temp_dir.hpp"
#include "../common/test_seed.hpp"
#include "runtime/snapshot_store.hpp"

using namespace keel;
using keel::runtime::SnapshotStore;
using keel::test::TempDir;

namespace {

// The checksum as the format's first implementation computed it: Boost's
// CRC-32, its interim remainder finished with the final XOR.
std::uint32_t reference_crc(std::string_view bytes) {
    boost::crc_32_type crc;
    crc.reset(0xFFFFFFFFu);
    crc.process_bytes(bytes.data(), bytes.size());
    return crc.get_interim_remainder() ^ 0xFFFFFFFFu;
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A whole snapshot file of format version 1 built by hand with the
// reference checksums (docs/wire-format.md, "Snapshot files").
std::string reference_file(const std::string& data, const raft::SnapshotMeta& meta) {
    const std::string config = raft::encode_configuration(meta.config);
    std::string file = data + config;
    std::string trailer;
    put_u64(trailer, meta.index);
    put_u64(trailer, meta.term);
    put_u64(trailer, data.size());
    put_u32(trailer, static_cast<std::uint32_t>(config.size()));
    put_u32(trailer, reference_crc(data));
    put_u32(trailer, 1);  // version
    put_u32(trailer, reference_crc(config + trailer));
    trailer += "KEELSNAP";
    return file + trailer;
}

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    return s;
}

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

raft::SnapshotMeta meta_at(raft::Index index) {
    raft::SnapshotMeta meta;
    meta.index = index;
    meta.term = 3;
    meta.config.members[1] = raft::MemberInfo{true, "node-1"};
    meta.config.members[2] = raft::MemberInfo{false, ""};
    return meta;
}

}  // namespace

TEST_CASE("a snapshot written in pieces is byte for byte the file the format's reference makes") {
    const std::uint64_t seed = test::seed_from_env().value_or(20261207);
    INFO("KEEL_SEED=" << seed);
    std::mt19937_64 rng(seed);
    TempDir dir;
    wal::FileSystem& fs = *wal::default_file_system();
    auto store = SnapshotStore::open(dir.sub("snapshots"), fs);
    REQUIRE(store.ok());
    // Past the writer's buffer and verify()'s chunk (1 MiB each), written in
    // uneven pieces, some empty, one larger than the buffer.
    const std::string data = random_bytes(rng, (5 << 19) + 12345);
    auto writer = (*store)->begin();
    REQUIRE(writer.ok());
    for (std::size_t at = 0; at < data.size();) {
        const std::size_t n = std::min<std::size_t>(
            data.size() - at, rng() % 4 == 0 ? (3 << 19) : static_cast<std::size_t>(rng() % 70000));
        REQUIRE((*writer)->write(std::string_view(data).substr(at, n)).ok());
        at += n;
    }
    const raft::SnapshotMeta meta = meta_at(77);
    auto file = (*store)->publish(**writer, meta);
    REQUIRE(file.ok());

    CHECK(file->data_crc32 == reference_crc(data));
    CHECK(read_all(file->path) == reference_file(data, meta));
    auto verified = SnapshotStore::verify(fs, file->path, &meta);
    INFO(verified.status().to_string());
    CHECK(verified.ok());
}

TEST_CASE("a snapshot file made with the reference checksums is listed, verified and read") {
    const std::uint64_t seed = test::seed_from_env().value_or(4242);
    INFO("KEEL_SEED=" << seed);
    std::mt19937_64 rng(seed);
    TempDir dir;
    wal::FileSystem& fs = *wal::default_file_system();
    const std::string snapshots = dir.sub("snapshots");
    const raft::SnapshotMeta meta = meta_at(9);
    const std::string data = random_bytes(rng, (1 << 20) + 777);
    const std::string file_bytes = reference_file(data, meta);
    REQUIRE(std::filesystem::create_directories(snapshots));
    const std::string path = snapshots + "/snapshot-0000000000000009-0000000000000003.snap";
    std::ofstream(path, std::ios::binary) << file_bytes;

    auto store = SnapshotStore::open(snapshots, fs);
    REQUIRE(store.ok());
    CHECK((*store)->damaged().empty());
    auto latest = (*store)->latest();
    REQUIRE(latest);
    CHECK(latest->meta == meta);
    CHECK(latest->data_crc32 == reference_crc(data));
    auto verified = SnapshotStore::verify(fs, path, &meta);
    INFO(verified.status().to_string());
    CHECK(verified.ok());

    auto reader = (*store)->open_reader(*latest);
    REQUIRE(reader.ok());
    std::string got;
    char buffer[50000];
    for (;;) {
        auto n = (*reader)->read(buffer, sizeof buffer);
        INFO(n.status().to_string());
        REQUIRE(n.ok());
        if (*n == 0) break;
        got.append(buffer, *n);
    }
    CHECK(got == data);

    SECTION("one flipped bit in the data is refused") {
        std::string damaged = file_bytes;
        damaged[rng() % data.size()] ^= static_cast<char>(1 << (rng() % 8));
        std::ofstream(path, std::ios::binary | std::ios::trunc) << damaged;
        auto refused = SnapshotStore::verify(fs, path, &meta);
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.status().code() == ErrorCode::corruption);
    }
}
