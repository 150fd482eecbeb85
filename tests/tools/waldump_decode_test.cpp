// waldump on what keel and raftd really write: a single node's WAL holding
// the bootstrap configuration, a leader's noop, raftd's KV commands and a
// membership change.  waldump must name every entry type, show config
// entries as their members and, with --decode kv, raftd's commands as JSON;
// bytes that are not what their type says are reported, never over-read.
// The binary comes from WALDUMP (set by tests/tools/meson.build).
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../common/temp_dir.hpp"
#include "keel/keel.hpp"
#include "keel/kv/kv_command.hpp"
#include "keel/log_entry.hpp"
#include "keel/wal/reader.hpp"
#include "keel/wal/wal.hpp"

using keel::test::TempDir;
using nlohmann::json;

namespace {

// Small segments: preallocating keel's default 64 MiB ones costs seconds here.
constexpr std::uint64_t kSegmentBytes = 1 << 20;

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

// The output lines of the record at `index` (text mode: " index=N ").
std::string line_of(const std::string& out, std::uint64_t index) {
    std::istringstream lines(out);
    std::string line;
    const std::string key = " index=" + std::to_string(index) + " ";
    while (std::getline(lines, line))
        if (line.find(key) != std::string::npos) return line;
    return "";
}

// The JSON record objects of a --json run, by index.
std::map<std::uint64_t, json> json_records(const std::string& out) {
    std::map<std::uint64_t, json> records;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        json j = json::parse(line);
        if (j.contains("index") && j.contains("type")) records[j["index"]] = j;
    }
    return records;
}

class NullStateMachine : public keel::StateMachine {
public:
    void apply(const std::vector<keel::CommittedEntry>& entries,
               std::vector<std::string>& results) override {
        for (std::size_t i = 0; i < entries.size(); ++i) results[i] = "ok";
    }
    keel::SnapshotFunction snapshot() override {
        return [](keel::SnapshotWriter&) { return keel::Status::ok_status(); };
    }
    keel::Status restore(keel::SnapshotReader&) override { return keel::Status::ok_status(); }
};

// A single node founded with member metadata: index 1 is the bootstrap
// configuration, 2 the leader's noop, 3..5 what is proposed here, 6 the
// configuration with learner 2 added.
void write_raftd_log(const std::string& data_dir) {
    keel::NodeOptions options;
    options.id = 1;
    options.data_dir = data_dir;
    options.listen_address = "127.0.0.1:0";
    options.wal_segment_bytes = kSegmentBytes;
    options.initial_members = {{1, "127.0.0.1:7001", "http://127.0.0.1:8001", true}};
    auto node = keel::Node::open(options, std::make_shared<NullStateMachine>());
    REQUIRE(node.ok());
    using keel::kv::KvOp;
    const std::vector<std::string> proposals = {
        keel::kv::encode_command({KvOp::put, "greeting", "hello", std::nullopt, std::nullopt}),
        keel::kv::encode_command({KvOp::del, "old", "", std::string("x"), std::uint64_t{3}}),
        "not a kv command",
    };
    for (const std::string& p : proposals) REQUIRE((*node)->propose(p).get().status.ok());
    REQUIRE((*node)->add_member({2, "127.0.0.1:7002", "learner-meta", false}).get().ok());
    (*node)->stop();
}

}  // namespace

TEST_CASE("waldump names entry types and shows config entries as their members") {
    TempDir dir;
    write_raftd_log(dir.path());
    const std::string wal = dir.path() + "/wal";

    Run text = waldump(wal);
    REQUIRE(text.code == 0);
    CHECK_THAT(line_of(text.out, 1), Catch::Contains("type=config"));
    CHECK_THAT(line_of(text.out, 1),
               Catch::Contains(R"(members=[{"id":1,"metadata":"http://127.0.0.1:8001",)"
                               R"("raft_address":"127.0.0.1:7001","voter":true}])"));
    CHECK_THAT(line_of(text.out, 2), Catch::Contains("type=noop"));
    CHECK_THAT(line_of(text.out, 3), Catch::Contains("type=normal"));
    CHECK_THAT(line_of(text.out, 3), !Catch::Contains("command="));  // no --decode: bytes only
    CHECK_THAT(line_of(text.out, 6), Catch::Contains("type=config"));
    CHECK_THAT(line_of(text.out, 6),
               Catch::Contains(R"({"id":2,"metadata":"learner-meta",)"
                               R"("raft_address":"127.0.0.1:7002","voter":false})"));
    CHECK_THAT(text.out, !Catch::Contains("type=1") && !Catch::Contains("type=3"));

    Run configs = waldump("--type config " + wal);
    REQUIRE(configs.code == 0);
    CHECK_FALSE(line_of(configs.out, 1).empty());
    CHECK(line_of(configs.out, 3).empty());
    CHECK_FALSE(line_of(configs.out, 6).empty());

    Run stats = waldump("--stats " + wal);
    REQUIRE(stats.code == 0);
    CHECK_THAT(stats.out, Catch::Contains("type normal records=3") &&
                              Catch::Contains("type noop   records=1") &&
                              Catch::Contains("type config records=2"));

    auto records = json_records(waldump("--json " + wal).out);
    REQUIRE(records.size() == 6);
    CHECK(records[1]["type"] == "config");
    CHECK(records[1]["type_code"] == 3);
    CHECK(records[1]["members"][0]["raft_address"] == "127.0.0.1:7001");
    CHECK(records[2]["type"] == "noop");
    CHECK(records[3]["type"] == "normal");
    CHECK_FALSE(records[3].contains("command"));
    CHECK(records[6]["members"].size() == 2);
    CHECK(records[6]["members"][1]["voter"] == false);
}

TEST_CASE("waldump --decode kv shows raftd's commands as JSON") {
    TempDir dir;
    write_raftd_log(dir.path());
    const std::string wal = dir.path() + "/wal";

    Run text = waldump("--decode kv " + wal);
    REQUIRE(text.code == 0);
    CHECK_THAT(line_of(text.out, 3),
               Catch::Contains(R"(command={"key":"greeting","op":"put","value":"hello"})"));
    CHECK_THAT(line_of(text.out, 4),
               Catch::Contains(R"(command={"key":"old","op":"delete","prev_revision":3,)"
                               R"("prev_value":"x"})"));
    // A normal entry that is not a command is reported, and the dump goes on.
    CHECK_THAT(line_of(text.out, 5),
               Catch::Contains("decode_error=") && Catch::Contains("kv command: unknown version"));
    CHECK_THAT(line_of(text.out, 6), Catch::Contains("members="));

    auto records = json_records(waldump("--json --decode kv " + wal).out);
    REQUIRE(records.size() == 6);
    CHECK(records[3]["command"] == json{{"op", "put"}, {"key", "greeting"}, {"value", "hello"}});
    CHECK(records[4]["command"]["prev_revision"] == 3);
    CHECK(records[5].contains("decode_error"));
    CHECK_FALSE(records[2].contains("command"));  // a noop is never decoded

    Run unknown = waldump("--decode yaml " + wal);
    CHECK(unknown.code != 0);
    Run bad_type = waldump("--type snapshot " + wal);
    CHECK(bad_type.code == 3);
    CHECK_THAT(bad_type.out, Catch::Contains("not normal, noop, config or a number"));
}

TEST_CASE("waldump reports a config entry it cannot decode and names unknown types by number") {
    TempDir dir;
    {
        keel::wal::Options wal_options;
        wal_options.segment_bytes = kSegmentBytes;
        auto wal = keel::wal::Wal::open(dir.path(), wal_options);
        REQUIRE(wal.ok());
        std::vector<keel::wal::Record> records = {
            {1, 1, static_cast<std::uint16_t>(keel::LogEntryType::config), "\x01garbage"},
            {2, 1, 9, "opaque"},
        };
        REQUIRE(keel::wal::append_sync(**wal, records).ok());
    }
    Run text = waldump(dir.path());
    REQUIRE(text.code == 0);
    CHECK_THAT(line_of(text.out, 1), Catch::Contains("type=config") &&
                                         Catch::Contains("decode_error=") &&
                                         Catch::Contains("not a configuration"));
    CHECK_THAT(line_of(text.out, 2), Catch::Contains("type=9 "));
    auto records = json_records(waldump("--json " + dir.path()).out);
    CHECK(records[1]["decode_error"] == "corruption: config entry: not a configuration");
    CHECK(records[2]["type"] == "unknown");
    CHECK(records[2]["type_code"] == 9);
    Run only_nine = waldump("--type 9 " + dir.path());
    CHECK(line_of(only_nine.out, 1).empty());
    CHECK_FALSE(line_of(only_nine.out, 2).empty());
}

TEST_CASE("decode_config_entry refuses every truncation and a bad member context") {
    TempDir dir;
    // A real configuration's bytes: read back from a bootstrapped node's WAL.
    write_raftd_log(dir.path());
    std::string config;
    auto scan = keel::wal::scan_wal(dir.path() + "/wal", keel::wal::ScanOptions{},
                                    [&](const keel::wal::ScannedRecord& r) {
                                        if (r.index == 6) config = std::string(r.payload);
                                    });
    REQUIRE(scan.ok());
    auto members = keel::decode_config_entry(config);
    REQUIRE(members.ok());
    REQUIRE(members->size() == 2);
    CHECK(members->at(0).metadata == "http://127.0.0.1:8001");
    for (std::size_t n = 0; n < config.size(); ++n) {
        auto cut = keel::decode_config_entry(std::string_view(config).substr(0, n));
        REQUIRE_FALSE(cut.ok());
        CHECK(cut.status().code() == keel::ErrorCode::corruption);
    }
    CHECK_FALSE(keel::decode_config_entry(config + "x").ok());
    // Member 1's context starts at byte 1 + 4 + 8 + 1 + 4: its version byte.
    std::string bad_context = config;
    bad_context[18] = 7;
    auto refused = keel::decode_config_entry(bad_context);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.status().message(), Catch::Contains("member 1"));
}

TEST_CASE("waldump names a shared WAL's hard-state records and decodes them, with --group") {
    TempDir dir;
    auto le = [](std::uint64_t v) {
        std::string out;
        for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
        return out;
    };
    {
        keel::wal::Options wal_options;
        wal_options.segment_bytes = kSegmentBytes;
        auto wal = keel::wal::Wal::open(dir.path(), wal_options);
        REQUIRE(wal.ok());
        const auto type = static_cast<std::uint16_t>(keel::kSharedHardStateRecordType);
        std::vector<keel::wal::Record> records = {
            {1, 7, type, le(7) + le(2) + le(40)},
            {2, 1, type, "short"},
        };
        records[0].group = 3;
        records[1].group = 4;
        REQUIRE(keel::wal::append_sync(**wal, records).ok());
    }
    Run text = waldump("--group 3 " + dir.path());
    REQUIRE(text.code == 0);
    CHECK_THAT(line_of(text.out, 1), Catch::Contains("type=hard_state") &&
                                         Catch::Contains("group=3 ") &&
                                         Catch::Contains("\"vote\":2"));
    CHECK(line_of(text.out, 2).empty());
    auto records = json_records(waldump("--json " + dir.path()).out);
    CHECK(records[1]["type"] == "hard_state");
    CHECK(records[1]["hard_state"] == json{{"term", 7}, {"vote", 2}, {"commit", 40}});
    CHECK_THAT(records[2]["decode_error"].get<std::string>(), Catch::Contains("hard state of 5"));
}
