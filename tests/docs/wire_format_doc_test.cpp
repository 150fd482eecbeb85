// docs/wire-format.md's byte examples are what the code writes: each block
// after a `<!-- bytes: NAME -->` line is compared with the encoder's output
// for the inputs the document states (the same inputs below), and decodes back
// to them.  KEEL_SOURCE_ROOT names the repository (meson sets it).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "../common/temp_dir.hpp"
#include "keel/wal/file_system.hpp"
#include "runtime/backup_archive.hpp"
#include "runtime/snapshot_store.hpp"
#include "transport/codec.hpp"

using namespace keel;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// The bytes of every example block: on each line, the two-digit lowercase hex
// tokens before a `|` (what follows it is the field's description).
std::map<std::string, std::string> doc_examples() {
    const char* root = std::getenv("KEEL_SOURCE_ROOT");
    REQUIRE(root != nullptr);
    std::istringstream doc(read_file(std::string(root) + "/docs/wire-format.md"));
    std::map<std::string, std::string> out;
    std::string line, name;
    bool inside = false;
    const std::string marker = "<!-- bytes: ";
    while (std::getline(doc, line)) {
        if (line.rfind(marker, 0) == 0) {
            name = line.substr(marker.size(), line.find(" -->") - marker.size());
            continue;
        }
        if (line.rfind("```", 0) == 0) {
            inside = !inside && !name.empty();
            if (!inside) name.clear();
            continue;
        }
        if (!inside) continue;
        std::istringstream tokens(line.substr(0, line.find('|')));
        std::string token;
        while (tokens >> token) {
            INFO(name << ": " << line);
            REQUIRE(token.size() == 2);
            const int high = hex_digit(token[0]), low = hex_digit(token[1]);
            REQUIRE((high >= 0 && low >= 0));
            out[name].push_back(static_cast<char>(high * 16 + low));
        }
    }
    return out;
}

std::string hex(const std::string& bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        if (!out.empty()) out += ' ';
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

const std::string& example(const std::string& name) {
    static const std::map<std::string, std::string> examples = doc_examples();
    auto it = examples.find(name);
    INFO("docs/wire-format.md has no example " << name);
    REQUIRE(it != examples.end());
    return it->second;
}

}  // namespace

TEST_CASE("wire-format.md: the hello example is encode_hello's output", "[docs]") {
    transport::Hello hello;
    hello.cluster_id = *transport::ClusterId::parse_hex("5f0e8a3c9b2d4e7f8a1b2c3d4e5f6a7b");
    hello.from = 1;
    hello.address = "127.0.0.1:7081";
    const std::string encoded = transport::encode_hello(hello);
    INFO("encoder: " << hex(encoded));
    CHECK(example("hello") == encoded);
    Result<transport::Frame> decoded = transport::decode_frame(example("hello"), {});
    REQUIRE(decoded.ok());
    CHECK(std::get<transport::Hello>(*decoded) == hello);
}

TEST_CASE("wire-format.md: the append example is encode_messages' output", "[docs]") {
    raft::Message m;
    m.type = raft::MessageType::append;
    m.from = 1;
    m.to = 2;
    m.term = 3;
    m.log_index = 4;
    m.log_term = 3;
    m.commit = 4;
    raft::Entry e;
    e.term = 3;
    e.index = 5;
    e.type = raft::EntryType::normal;
    e.data = SharedBytes("hi");
    m.entries.push_back(e);
    Result<std::string> encoded = transport::encode_messages({&m, 1}, {}, /*group=*/7);
    REQUIRE(encoded.ok());
    INFO("encoder: " << hex(*encoded));
    CHECK(example("append") == *encoded);
    Result<transport::Frame> decoded = transport::decode_frame(example("append"), {});
    REQUIRE(decoded.ok());
    const auto& batch = std::get<transport::MessageBatch>(*decoded);
    CHECK(batch.group == 7);
    CHECK(batch.messages.at(0) == m);
}

TEST_CASE("wire-format.md: the snapshot chunk example is encode_snapshot_chunk's output",
          "[docs]") {
    transport::SnapshotChunk chunk;
    chunk.group = 7;
    chunk.snapshot_id = 1;
    chunk.offset = 0;
    chunk.total_bytes = 10;
    chunk.data = "snap";
    Result<std::string> encoded = transport::encode_snapshot_chunk(chunk, {});
    REQUIRE(encoded.ok());
    INFO("encoder: " << hex(*encoded));
    CHECK(example("snapshot-chunk") == *encoded);
    Result<transport::Frame> decoded = transport::decode_frame(example("snapshot-chunk"), {});
    REQUIRE(decoded.ok());
    CHECK(std::get<transport::SnapshotChunk>(*decoded) == chunk);
    Result<transport::FrameRoute> route = transport::frame_route(example("snapshot-chunk"));
    REQUIRE(route.ok());
    CHECK(route->group == 7);
}

TEST_CASE("wire-format.md: the snapshot file example is what SnapshotStore writes", "[docs]") {
    test::TempDir dir("keel-doc-snapshot");
    wal::FileSystem& fs = *wal::default_file_system();
    auto store = runtime::SnapshotStore::open(dir.sub("snapshots"), fs);
    REQUIRE(store.ok());
    auto writer = (*store)->begin();
    REQUIRE(writer.ok());
    REQUIRE((*writer)->write("hello").ok());
    raft::SnapshotMeta meta;
    meta.index = 7;
    meta.term = 2;
    meta.config.members[1] = raft::MemberInfo{true, ""};
    auto file = (*store)->publish(**writer, meta);
    REQUIRE(file.ok());
    CHECK(file->path == dir.sub("snapshots") + "/snapshot-0000000000000007-0000000000000002.snap");
    const std::string written = read_file(file->path);
    INFO("written: " << hex(written));
    CHECK(example("snapshot-file") == written);
    // The example is a complete snapshot file: verify() accepts a copy of it.
    const std::string copy = dir.sub("copy.snap");
    std::ofstream(copy, std::ios::binary) << example("snapshot-file");
    auto verified = runtime::SnapshotStore::verify(fs, copy, &meta);
    INFO(verified.status().to_string());
    CHECK(verified.ok());
}

TEST_CASE("wire-format.md: the backup archive example is what BackupArchiveWriter writes",
          "[docs]") {
    test::TempDir dir("keel-doc-archive");
    wal::FileSystem& fs = *wal::default_file_system();
    // The snapshot file of the example above, archived as group 3's.
    const std::string snapshot = dir.sub("one.snap");
    std::ofstream(snapshot, std::ios::binary) << example("snapshot-file");
    const std::string path = dir.sub("backup.keel");
    auto writer = runtime::create_backup_archive(fs, path, 1);
    REQUIRE(writer.ok());
    REQUIRE((*writer)->add_group(3, snapshot).ok());
    auto info = (*writer)->finish();
    REQUIRE(info.ok());
    const std::string written = read_file(path);
    INFO("written: " << hex(written));
    CHECK(example("backup-archive") == written);
    const std::string copy = dir.sub("copy.keel");
    std::ofstream(copy, std::ios::binary) << example("backup-archive");
    auto verified = runtime::read_backup_archive(fs, copy);
    INFO(verified.status().to_string());
    REQUIRE(verified.ok());
    REQUIRE(verified->groups.size() == 1);
    CHECK(verified->groups[0].group == 3);
    CHECK(verified->groups[0].snapshot.index == 7);
}
