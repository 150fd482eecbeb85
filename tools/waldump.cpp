// waldump: inspect a keel WAL directory, read-only (safe on a crashed or
// running node's directory).  Uses only public headers: keel/wal's to read,
// keel/log_entry.hpp to name entry types and decode config entries, and
// raftd's command codec (keel/kv/kv_command.hpp) for --decode kv.
//
// Every record is shown with its group (a WAL shared by many groups;
// --group G shows one).
//
// Exit status: 0 clean, 1 torn tail (reported), 2 corruption / gap /
// duplicate, 3 the directory is missing or not a WAL or cannot be read.
#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "keel/kv/kv_command.hpp"
#include "keel/log_entry.hpp"
#include "keel/wal/reader.hpp"

namespace {

using keel::wal::IssueKind;
using keel::wal::ScanIssue;
using keel::wal::ScannedRecord;
using keel::wal::ScanResult;
using keel::wal::SegmentInfo;
using nlohmann::json;

constexpr std::size_t kPreviewBytes = 24;

struct Args {
    std::string dir;
    bool json = false;
    bool verify = false;
    bool stats = false;
    bool resync = false;
    std::optional<std::uint64_t> from, to;
    std::optional<unsigned> type;
    std::optional<std::uint64_t> group;  // --group: only this group's records
    bool decode_kv = false;              // --decode kv: normal entries are raftd's commands
    std::uint64_t max_record_bytes = keel::wal::kFormatMaxPayloadBytes;
};

std::string preview(std::string_view payload) {
    const std::string_view head = payload.substr(0, kPreviewBytes);
    bool printable = true;
    for (unsigned char c : head) printable = printable && std::isprint(c) && c != '"';
    std::string out;
    if (printable) {
        out = fmt::format("\"{}\"", head);
    } else {
        out = "0x";
        for (unsigned char c : head) out += fmt::format("{:02x}", c);
    }
    if (payload.size() > head.size()) out += "...";
    return out;
}

std::string hex_dump(const std::string& region, std::uint64_t base) {
    std::string out;
    for (std::size_t i = 0; i < region.size(); i += 16) {
        out += fmt::format("    {:08x}  ", base + i);
        std::string ascii;
        for (std::size_t j = i; j < i + 16; ++j) {
            if (j < region.size()) {
                const auto c = static_cast<unsigned char>(region[j]);
                out += fmt::format("{:02x} ", c);
                ascii += std::isprint(c) ? static_cast<char>(c) : '.';
            } else {
                out += "   ";
            }
        }
        out += " |" + ascii + "|\n";
    }
    return out;
}

// "normal", "noop", "config", a shared WAL's "entry:normal", "reset",
// "image" and so on, or nullptr for a type keel does not write.
const char* type_name(unsigned type) {
    const char* name = keel::log_entry_type_name(type);
    return name != nullptr ? name : keel::shared_record_type_name(type);
}

// The name, or the number of a type keel does not write.
std::string type_label(unsigned type) {
    const char* name = type_name(type);
    return name != nullptr ? name : std::to_string(type);
}

// In JSON "type" is always a name; "type_code" carries the number.
std::string type_name_or_unknown(unsigned type) {
    const char* name = type_name(type);
    return name != nullptr ? name : "unknown";
}

// JSON text never throws on bytes that are not UTF-8 (they come from disk).
std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json members_json(const std::vector<keel::MemberSpec>& members) {
    json out = json::array();
    for (const keel::MemberSpec& m : members) {
        out.push_back({{"id", m.id},
                       {"voter", m.voter},
                       {"raft_address", m.raft_address},
                       {"metadata", m.metadata}});
    }
    return out;
}

json command_json(const keel::kv::KvCommand& c) {
    json j = {{"op", c.op == keel::kv::KvOp::put ? "put" : "delete"}, {"key", c.key}};
    if (c.op == keel::kv::KvOp::put) j["value"] = c.value;
    if (c.prev_value) j["prev_value"] = *c.prev_value;
    if (c.prev_revision) j["prev_revision"] = *c.prev_revision;
    return j;
}

// What a record's payload decodes to: {"members": [...]} for a config
// entry, {"command": {...}} for a normal one under --decode kv, and
// {"decode_error": "..."} when the bytes are not what they should be.
// Empty for everything else (the payload preview says it all).
json decoded(const Args& a, const ScannedRecord& r) {
    if (r.type == static_cast<unsigned>(keel::LogEntryType::config)) {
        auto members = keel::decode_config_entry(r.payload);
        if (!members.ok()) return {{"decode_error", members.status().to_string()}};
        return {{"members", members_json(*members)}};
    }
    if (r.type == keel::kSharedHardStateRecordType) {
        auto hs = keel::decode_shared_hard_state(r.payload);
        if (!hs.ok()) return {{"decode_error", hs.status().to_string()}};
        return {{"hard_state", {{"term", hs->term}, {"vote", hs->vote}, {"commit", hs->commit}}}};
    }
    if (a.decode_kv && r.type == static_cast<unsigned>(keel::LogEntryType::normal)) {
        auto command = keel::kv::decode_command(r.payload);
        if (!command.ok()) return {{"decode_error", command.status().to_string()}};
        return {{"command", command_json(*command)}};
    }
    return json::object();
}

json meta_json(const ScanResult& r) {
    const auto& m = r.meta;
    json j = {{"present", m.present}};
    if (m.present) {
        j.update({{"term", m.metadata.term},
                  {"vote", m.metadata.vote},
                  {"commit", m.metadata.commit},
                  {"snapshot_index", m.metadata.snapshot_index},
                  {"snapshot_term", m.metadata.snapshot_term},
                  {"log_floor", m.log_floor},
                  {"opaque_bytes", m.metadata.opaque.size()}});
        json releases = json::object();
        for (const auto& [group, below] : m.releases) releases[std::to_string(group)] = below;
        j["releases"] = releases;
        j["fence"] = m.fence ? json(*m.fence) : json(nullptr);
    }
    return j;
}

void print_layout(const Args& a, const ScanResult& layout) {
    const auto& m = layout.meta;
    if (a.json) {
        std::printf("%s\n", json{{"meta", meta_json(layout)}}.dump().c_str());
    } else if (m.present) {
        std::printf("hard state: term=%" PRIu64 " vote=%" PRIu64 " commit=%" PRIu64
                    "  snapshot: index=%" PRIu64 " term=%" PRIu64 "  log_floor=%" PRIu64
                    " fence=%s opaque=%zu bytes\n",
                    m.metadata.term, m.metadata.vote, m.metadata.commit, m.metadata.snapshot_index,
                    m.metadata.snapshot_term, m.log_floor,
                    m.fence ? std::to_string(*m.fence).c_str() : "none", m.metadata.opaque.size());
        // Groups that released records still on disk (Wal::release).
        for (const auto& [group, below] : m.releases)
            std::printf("release: group=%" PRIu64 " below=%" PRIu64 "\n", group, below);
    } else {
        std::printf("hard state: (no meta file)\n");
    }
    for (const SegmentInfo& s : layout.segments) {
        if (a.json) {
            json j = {
                {"file", s.file_name}, {"header_ok", s.header_ok}, {"file_bytes", s.file_bytes}};
            if (s.header_ok)
                j.update({{"version", s.version},
                          {"flush_align_bytes", s.flush_align_bytes},
                          {"sequence", s.sequence},
                          {"first_index", s.first_index},
                          {"start_crc", fmt::format("0x{:08x}", s.start_crc)}});
            std::printf("%s\n", json{{"segment_header", j}}.dump().c_str());
        } else if (s.header_ok) {
            // flush_align: versions 2 and 3, every flush starts on a block of that size.
            std::printf("segment %s: version=%u sequence=%" PRIu64 " first_index=%" PRIu64
                        " start_crc=0x%08x file_bytes=%" PRIu64 "%s\n",
                        s.file_name.c_str(), s.version, s.sequence, s.first_index, s.start_crc,
                        s.file_bytes,
                        s.flush_align_bytes != 0
                            ? fmt::format(" flush_align={}", s.flush_align_bytes).c_str()
                            : "");
        } else {
            std::printf("segment %s: BAD HEADER (file_bytes=%" PRIu64 ")\n", s.file_name.c_str(),
                        s.file_bytes);
        }
    }
}

bool selected(const Args& a, const ScannedRecord& r) {
    if (a.from && r.index < *a.from) return false;
    if (a.to && r.index > *a.to) return false;
    if (a.type && r.type != *a.type) return false;
    if (a.group && r.group != *a.group) return false;
    return true;
}

void print_record(const Args& a, const ScannedRecord& r) {
    if (a.json) {
        json j = {{"segment", r.segment->file_name},
                  {"offset", r.offset},
                  {"index", r.index},
                  {"group", r.group},
                  {"term", r.term},
                  {"type", type_name_or_unknown(r.type)},
                  {"type_code", r.type},
                  {"size", r.payload_bytes},
                  {"record_bytes", r.record_bytes},
                  {"crc", fmt::format("0x{:08x}", r.crc)},
                  {"crc_ok", r.crc_ok},
                  {"chain_ok", r.chain_ok},
                  {"payload", preview(r.payload)}};
        j.update(decoded(a, r));
        std::printf("%s\n", dump(j).c_str());
    } else {
        // The decoded form, when there is one, as "key=JSON" after the preview.
        std::string decoded_text;
        const json parts = decoded(a, r);
        for (const auto& [key, value] : parts.items())
            decoded_text += "  " + key + "=" + dump(value);
        std::printf("%s  offset=%-10" PRIu64 " index=%-10" PRIu64 " group=%-6" PRIu64
                    " term=%-6" PRIu64 " type=%-6s size=%-8u crc=%s%s  %s%s\n",
                    r.segment->file_name.c_str(), r.offset, r.index, r.group, r.term,
                    type_label(r.type).c_str(), r.payload_bytes, r.crc_ok ? "ok" : "BAD",
                    r.chain_ok ? "" : " (chain broken)", preview(r.payload).c_str(),
                    decoded_text.c_str());
    }
}

struct Totals {
    std::uint64_t records = 0, bytes = 0, payload_bytes = 0;
    std::optional<std::uint64_t> first, last;
    std::map<unsigned, std::pair<std::uint64_t, std::uint64_t>> by_type;        // records, bytes
    std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> by_group;  // records, bytes
};

void print_stats(const Args& a, const ScanResult& r, const Totals& t) {
    std::uint64_t disk = 0;
    for (const auto& s : r.segments) disk += s.file_bytes;
    if (a.json) {
        json types = json::object();
        for (const auto& [type, v] : t.by_type)
            types[type_label(type)] = {{"records", v.first}, {"bytes", v.second}};
        json groups = json::object();
        for (const auto& [group, v] : t.by_group)
            groups[std::to_string(group)] = {{"records", v.first}, {"bytes", v.second}};
        json j = {{"segments", r.segments.size()},
                  {"records", t.records},
                  {"bytes", t.bytes},
                  {"payload_bytes", t.payload_bytes},
                  {"file_bytes", disk},
                  {"types", types},
                  {"groups", groups}};
        j["first_index"] = t.first ? json(*t.first) : json(nullptr);
        j["last_index"] = t.last ? json(*t.last) : json(nullptr);
        std::printf("%s\n", json{{"stats", j}}.dump().c_str());
        return;
    }
    std::printf("stats: segments=%zu records=%" PRIu64 " bytes=%" PRIu64 " payload_bytes=%" PRIu64
                " file_bytes=%" PRIu64 " index_range=%s\n",
                r.segments.size(), t.records, t.bytes, t.payload_bytes, disk,
                t.first ? fmt::format("{}..{}", *t.first, *t.last).c_str() : "empty");
    for (const auto& [type, v] : t.by_type)
        std::printf("  type %-6s records=%-10" PRIu64 " bytes=%" PRIu64 "\n",
                    type_label(type).c_str(), v.first, v.second);
    for (const auto& [group, v] : t.by_group)
        std::printf("  group %-6" PRIu64 " records=%-10" PRIu64 " bytes=%" PRIu64 "\n", group,
                    v.first, v.second);
}

int exit_code(const ScanResult& r) {
    if (r.issues.empty()) return 0;
    for (const auto& i : r.issues)
        if (i.kind != IssueKind::torn_tail) return 2;
    return 1;
}

void print_issues(const Args& a, const ScanResult& r) {
    for (const ScanIssue& i : r.issues) {
        if (a.json) {
            std::string hex;
            for (unsigned char c : i.region) hex += fmt::format("{:02x}", c);
            json j = {{"class", keel::wal::issue_kind_name(i.kind)},
                      {"segment", i.file_name},
                      {"offset", i.offset},
                      {"index", i.index},
                      {"bad_bytes", i.bad_bytes},
                      {"message", i.message},
                      {"hex", hex}};
            std::printf("%s\n", json{{"issue", j}}.dump().c_str());
        } else {
            std::printf("%s: %s\n  class=%s file=%s offset=%" PRIu64 " index=%" PRIu64 "\n",
                        i.kind == IssueKind::torn_tail ? "TORN TAIL" : "ERROR", i.message.c_str(),
                        keel::wal::issue_kind_name(i.kind), i.file_name.c_str(), i.offset, i.index);
            std::printf("%s", hex_dump(i.region, i.offset).c_str());
        }
    }
}

int run(const Args& a) {
    auto layout = keel::wal::read_wal_layout(a.dir);
    if (!layout.ok()) {
        std::fprintf(stderr, "waldump: %s\n", layout.status().message().c_str());
        return 3;
    }
    print_layout(a, *layout);
    keel::wal::ScanOptions options;
    options.resync = a.resync;
    options.max_record_bytes = a.max_record_bytes;
    Totals t;
    const bool list = !a.verify && !a.stats;
    auto scan = keel::wal::scan_wal(a.dir, options, [&](const ScannedRecord& r) {
        if (!selected(a, r)) return;
        ++t.records;
        t.bytes += r.record_bytes;
        t.payload_bytes += r.payload_bytes;
        if (!t.first) t.first = r.index;
        t.last = r.index;
        auto& bt = t.by_type[r.type];
        ++bt.first;
        bt.second += r.record_bytes;
        auto& bg = t.by_group[r.group];
        ++bg.first;
        bg.second += r.record_bytes;
        if (list) print_record(a, r);
    });
    if (!scan.ok()) {
        std::fprintf(stderr, "waldump: %s\n", scan.status().message().c_str());
        return 3;
    }
    print_issues(a, *scan);
    if (a.stats) print_stats(a, *scan, t);
    const int code = exit_code(*scan);
    if (a.verify) {
        const char* verdict = code == 0 ? "clean" : code == 1 ? "torn_tail" : "corrupt";
        if (a.json) {
            std::printf("%s\n", json{{"verify", verdict},
                                     {"records", scan->records},
                                     {"first_index", scan->first_index},
                                     {"last_index", scan->last_index},
                                     {"issues", scan->issues.size()}}
                                    .dump()
                                    .c_str());
        } else {
            std::printf("verify: %s: %" PRIu64 " valid records, index %" PRIu64 "..%" PRIu64
                        ", %zu issue(s)\n",
                        verdict, scan->records, scan->first_index, scan->last_index,
                        scan->issues.size());
        }
    }
    return code;
}

// A type by name ("config") or by number ("3"); nullopt for anything else.
std::optional<unsigned> parse_type(const std::string& text) {
    if (auto t = keel::parse_log_entry_type(text)) return static_cast<unsigned>(*t);
    if (text.empty() || text.size() > 3 || !std::all_of(text.begin(), text.end(), ::isdigit))
        return std::nullopt;
    const unsigned n = static_cast<unsigned>(std::stoul(text));
    return n <= 255 ? std::optional<unsigned>(n) : std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "waldump: print, verify and summarise a keel WAL directory (read-only).\n"
        "Exit status: 0 clean, 1 torn tail, 2 corruption/gap/duplicate, 3 not a readable WAL."};
    Args a;
    app.add_option("DIR", a.dir, "WAL directory")->required();
    app.add_flag("--json", a.json, "JSON lines instead of text (for jq)");
    app.add_flag("--verify", a.verify, "check everything; print problems and a verdict only");
    app.add_flag("--stats", a.stats, "segments, records, bytes, index range, per-type totals");
    app.add_flag("--continue", a.resync,
                 "keep reading past a bad record, resynchronising at the next valid one");
    app.add_option("--from", a.from, "first index to print (inclusive)");
    app.add_option("--to", a.to, "last index to print (inclusive)");
    std::string type;
    app.add_option("--type", type, "only records of this type: normal, noop, config or a number");
    app.add_option("--group", a.group,
                   "only records of this group (a log shared by many groups; 0 in a one-group "
                   "log and in segments of layout versions 1 to 3)");
    std::string decode;
    app.add_option("--decode", decode,
                   "decode normal entries as an application's commands: kv (raftd's)")
        ->check(CLI::IsMember({"kv"}));
    app.add_option("--max-record-bytes", a.max_record_bytes,
                   "largest payload considered valid (default: the format's maximum)");
    CLI11_PARSE(app, argc, argv);
    if (!type.empty()) {
        a.type = parse_type(type);
        if (!a.type) {
            std::fprintf(stderr, "waldump: --type %s: not normal, noop, config or a number\n",
                         type.c_str());
            return 3;
        }
    }
    a.decode_kv = decode == "kv";
    try {
        return run(a);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "waldump: %s\n", e.what());
        return 3;
    }
}
