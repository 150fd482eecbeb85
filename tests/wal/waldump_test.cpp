// Integration: the real waldump binary on clean, torn, corrupt and missing
// directories (exit codes and key messages).  The binary's path comes from
// the WALDUMP environment variable (set by tests/wal/meson.build).
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "keel/wal/reader.hpp"
#include "keel/wal/wal.hpp"
#include "test_util.hpp"

using namespace keel::wal;
using namespace keel::wal::test;

namespace {

struct Run {
    int code = -1;
    std::string out;
};

Run waldump(const std::string& args) {
    const char* bin = std::getenv("WALDUMP");
    REQUIRE(bin != nullptr);
    const std::string cmd = std::string(bin) + " " + args + " 2>&1";
    Run r;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int status = ::pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

void build(const std::string& dir, std::uint64_t count) {
    auto wal = Wal::open(dir, small_options());
    REQUIRE(wal.ok());
    for (std::uint64_t i = 1; i <= count; i += 20)
        REQUIRE(
            append_sync(**wal, make_records(i, std::min<std::uint64_t>(20, count + 1 - i))).ok());
    REQUIRE((*wal)->save_metadata(Metadata{5, 2, 9, 0, 0, {}}).ok());
}

struct Where {
    std::string file;
    std::uint64_t offset = 0, bytes = 0;
};
Where locate(const std::string& dir, std::uint64_t index) {
    Where w;
    auto scan = scan_wal(dir, ScanOptions{}, [&](const ScannedRecord& r) {
        if (r.index == index) w = {r.segment->file_name, r.offset, r.record_bytes};
    });
    REQUIRE(scan.ok());
    return w;
}

void overwrite(const std::string& path, std::uint64_t offset, const std::string& bytes) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("waldump on a clean WAL lists every record and verifies clean") {
    TempDir dir;
    build(dir.path(), 300);
    Run list = waldump(dir.path());
    REQUIRE(list.code == 0);
    REQUIRE_THAT(list.out, Catch::Contains("hard state: term=5 vote=2 commit=9"));
    // Both paths write layout version 4, the direct path with aligned
    // flushes (docs/wal.md, "Write paths").
    const bool direct = test_write_path() == WritePath::direct;
    REQUIRE_THAT(list.out, Catch::Contains("segment 0000000000000001-0000000000000001"
                                           ".wal: version=4"));
    if (direct) REQUIRE_THAT(list.out, Catch::Contains("flush_align=4096"));
    REQUIRE_THAT(list.out, Catch::Contains("index=300 "));

    Run verify = waldump("--verify " + dir.path());
    REQUIRE(verify.code == 0);
    REQUIRE_THAT(verify.out, Catch::Contains("verify: clean: 300 valid records, index 1..300"));

    Run stats = waldump("--stats " + dir.path());
    REQUIRE(stats.code == 0);
    REQUIRE_THAT(stats.out,
                 Catch::Contains("records=300") && Catch::Contains("index_range=1..300"));

    Run json = waldump("--json --from 10 --to 12 --type 1 " + dir.path());
    REQUIRE(json.code == 0);
    std::istringstream lines(json.out);
    std::string line;
    int records = 0;
    while (std::getline(lines, line)) {
        auto j = nlohmann::json::parse(line);
        if (!j.contains("index")) continue;
        ++records;
        REQUIRE(j["index"] == 10);  // 10..12 with type 1 (index % 3 == 1): only 10
        REQUIRE(j["crc_ok"] == true);
        for (const char* key : {"segment", "offset", "term", "type", "size"})
            REQUIRE(j.contains(key));
        REQUIRE(j["offset"] == locate(dir.path(), 10).offset);
    }
    REQUIRE(records == 1);
}

TEST_CASE("waldump --verify reports a torn tail with exit status 1") {
    TempDir dir;
    build(dir.path(), 30);
    const Where last = locate(dir.path(), 30);
    overwrite(dir.path() + "/" + last.file, last.offset + 20, std::string(last.bytes - 20, '\0'));
    Run r = waldump("--verify " + dir.path());
    REQUIRE(r.code == 1);
    REQUIRE_THAT(r.out, Catch::Contains("torn_tail") && Catch::Contains(last.file) &&
                            Catch::Contains("offset=" + std::to_string(last.offset)) &&
                            Catch::Contains("index=30"));
}

TEST_CASE("waldump --verify reports corruption with exit status 2 and a hex dump") {
    TempDir dir;
    build(dir.path(), 30);
    const Where bad = locate(dir.path(), 4);
    overwrite(dir.path() + "/" + bad.file, bad.offset + 33, "#");
    Run r = waldump("--verify " + dir.path());
    REQUIRE(r.code == 2);
    REQUIRE_THAT(r.out, Catch::Contains("class=corruption") && Catch::Contains(bad.file) &&
                            Catch::Contains("offset=" + std::to_string(bad.offset)) &&
                            Catch::Contains("index=4"));
    REQUIRE_THAT(r.out, Catch::Contains(fmt::format("{:08x}  ", bad.offset)));  // hex dump line

    Run plain = waldump(dir.path());
    REQUIRE(plain.code == 2);
    REQUIRE_THAT(plain.out, !Catch::Contains("index=5 "));
    Run resync = waldump("--continue " + dir.path());
    REQUIRE(resync.code == 2);
    REQUIRE_THAT(resync.out, Catch::Contains("index=30 "));
}

TEST_CASE("waldump --verify reports a missing segment as a gap") {
    TempDir dir;
    build(dir.path(), 600);
    auto layout = read_wal_layout(dir.path());
    REQUIRE(layout.ok());
    REQUIRE(layout->segments.size() >= 3);
    std::filesystem::remove(dir.path() + "/" + layout->segments[1].file_name);
    Run r = waldump("--verify " + dir.path());
    REQUIRE(r.code == 2);
    REQUIRE_THAT(r.out, Catch::Contains("class=gap"));
}

TEST_CASE("waldump refuses a missing or non-WAL directory clearly") {
    TempDir dir;
    Run missing = waldump(dir.sub("nope"));
    REQUIRE(missing.code == 3);
    REQUIRE_THAT(missing.out, Catch::Contains("no such directory"));
    Run empty = waldump(dir.path());
    REQUIRE(empty.code == 3);
    REQUIRE_THAT(empty.out, Catch::Contains("is not a WAL directory"));
    Run help = waldump("--help");
    REQUIRE(help.code == 0);
    REQUIRE_THAT(help.out, Catch::Contains("--verify"));
}

TEST_CASE("waldump --group shows one group's records, and every record's group") {
    TempDir dir;
    {
        auto wal = Wal::open(dir.path(), small_options());
        REQUIRE(wal.ok());
        // Indexes 1..30 over groups 0, 1 and 7 in turn; group 1 then releases
        // its records below 20 (the release table shows in the header).
        std::vector<Record> records = make_records(1, 30);
        for (Record& r : records) r.group = std::vector<std::uint64_t>{0, 1, 7}[r.index % 3];
        REQUIRE(append_sync(**wal, std::move(records)).ok());
        REQUIRE((*wal)->release(1, 20).ok());
    }
    Run all = waldump(dir.path());
    REQUIRE(all.code == 0);
    REQUIRE_THAT(all.out, Catch::Contains(" index=4          group=1 ") &&
                              Catch::Contains(" index=5          group=7 ") &&
                              Catch::Contains(" index=6          group=0 "));
    REQUIRE_THAT(all.out, Catch::Contains("release: group=1 below=20"));

    Run one = waldump("--group 7 " + dir.path());
    REQUIRE(one.code == 0);
    int lines = 0;
    std::istringstream text(one.out);
    for (std::string line; std::getline(text, line);) {
        if (line.find(".wal  offset=") == std::string::npos) continue;  // a record's line
        ++lines;
        REQUIRE_THAT(line, Catch::Contains(" group=7 "));
    }
    REQUIRE(lines == 10);

    Run json = waldump("--json --group 1 --from 10 " + dir.path());
    REQUIRE(json.code == 0);
    std::istringstream json_lines(json.out);
    std::vector<std::uint64_t> indexes;
    for (std::string line; std::getline(json_lines, line);) {
        auto j = nlohmann::json::parse(line);
        if (j.contains("meta")) REQUIRE(j["meta"]["releases"]["1"] == 20);
        if (!j.contains("index")) continue;
        REQUIRE(j["group"] == 1);
        indexes.push_back(j["index"]);
    }
    REQUIRE(indexes == std::vector<std::uint64_t>{10, 13, 16, 19, 22, 25, 28});

    Run stats = waldump("--stats --json " + dir.path());
    REQUIRE(stats.code == 0);
    REQUIRE_THAT(stats.out, Catch::Contains(R"("groups":{"0":{"bytes":)") &&
                                Catch::Contains(R"("1":{"bytes":)") &&
                                Catch::Contains(R"("7":{"bytes":)"));
    Run stats_one = waldump("--stats --group 0 " + dir.path());
    REQUIRE(stats_one.code == 0);
    REQUIRE_THAT(stats_one.out, Catch::Contains("records=10 ") && Catch::Contains("  group 0 ") &&
                                    !Catch::Contains("  group 1 "));
}

TEST_CASE("waldump names a shared WAL's entries, resets and images, and filters them by group") {
    TempDir dir;
    {
        auto wal = Wal::open(dir.path(), small_options());
        REQUIRE(wal.ok());
        // The runtime's types (docs/wal.md, "Records of a shared WAL").
        std::vector<Record> records = make_records(1, 3);
        records[0].type = 0x11;  // an entry of group 4
        records[0].group = 4;
        records[1].type = 0x20;  // a reset of group 5
        records[1].group = 5;
        records[2].type = 0x21;  // an image of group 4
        records[2].group = 4;
        REQUIRE(append_sync(**wal, std::move(records)).ok());
    }
    Run all = waldump(dir.path());
    REQUIRE(all.code == 0);
    REQUIRE_THAT(all.out, Catch::Contains("type=entry:normal") && Catch::Contains("type=reset") &&
                              Catch::Contains("type=image"));
    Run four = waldump("--json --group 4 " + dir.path());
    REQUIRE(four.code == 0);
    REQUIRE_THAT(four.out, Catch::Contains(R"("type":"entry:normal")") &&
                               Catch::Contains(R"("type":"image")") &&
                               !Catch::Contains(R"("type":"reset")"));
}
