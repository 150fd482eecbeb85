// scan_wal(): the read-only scanner shared by recovery and waldump.  This
// file lists a WAL directory and reads its layout; the Scanner
// (scanner.hpp) reads the segments.
//
// Classification rules (docs/wal.md, "Recovery"):
//  - a zero record header with only zeros after it ends a segment cleanly;
//  - a damaged record (or non-zero bytes after the end) with no
//    self-consistent record anywhere after it is a torn tail;
//  - a damaged record followed by a valid record (in this or a later segment)
//    is corruption, as is a record whose prev_crc breaks the chain;
//  - an index that jumps forward is a gap, one that repeats or goes back a
//    duplicate (within a segment or between segments).
#include <algorithm>
#include <memory>

#include <fmt/format.h>

#include "format.hpp"
#include "keel/wal/reader.hpp"
#include "metadata_file.hpp"
#include "scanner.hpp"

namespace keel::wal {

const char* issue_kind_name(IssueKind kind) noexcept {
    switch (kind) {
        case IssueKind::torn_tail:
            return "torn_tail";
        case IssueKind::corruption:
            return "corruption";
        case IssueKind::gap:
            return "gap";
        case IssueKind::duplicate:
            return "duplicate";
    }
    return "unknown";
}

bool ScanResult::torn_only() const {
    return issues.size() == 1 && issues[0].kind == IssueKind::torn_tail;
}

bool is_segment_file_name(std::string_view name) {
    std::uint64_t a, b;
    return detail::parse_segment_file_name(name, &a, &b);
}

using namespace detail;

namespace {

// Reads the meta file and lists the segments in sequence order.
Result<ScanResult> list_wal(FileSystem& fs, const std::string& dir) {
    auto exists = fs.exists(dir);
    if (!exists.ok()) return exists.status();
    if (!*exists) return Status(ErrorCode::not_found, fmt::format("no such directory: {}", dir));
    auto names = fs.list(dir);
    if (!names.ok()) return names.status();
    ScanResult result;
    auto meta = read_metadata_file(fs, dir);
    if (!meta.ok()) return meta.status();
    result.meta = *meta;
    std::vector<std::pair<std::uint64_t, std::string>> segments;
    for (const auto& name : *names) {
        std::uint64_t seq, first;
        if (parse_segment_file_name(name, &seq, &first)) segments.emplace_back(seq, name);
    }
    if (segments.empty() && !result.meta.present)
        return Status(
            ErrorCode::not_found,
            fmt::format("{} is not a WAL directory (no segment files, no meta file)", dir));
    std::sort(segments.begin(), segments.end());
    for (auto& [seq, name] : segments) {
        SegmentInfo info;
        info.file_name = name;
        info.sequence = seq;
        result.segments.push_back(std::move(info));
    }
    return result;
}

}  // namespace

Result<ScanResult> read_wal_layout(const std::string& dir, FileSystem* fs_or_null) {
    FileSystem& fs = fs_or_null != nullptr ? *fs_or_null : *default_file_system();
    auto result = list_wal(fs, dir);
    if (!result.ok()) return result;
    for (SegmentInfo& info : result->segments) {
        auto file = fs.open(dir + "/" + info.file_name, OpenMode::read_only);
        if (!file.ok()) return file.status();
        auto size = (*file)->size();
        if (!size.ok()) return size.status();
        info.file_bytes = *size;
        char header[kSegmentHeaderBytes];
        auto n = (*file)->pread(header, sizeof header, 0);
        if (!n.ok()) return n.status();
        auto h = decode_segment_header(header, *n, &info.version);
        if (!h) continue;
        info.header_ok = true;
        info.sequence = h->sequence;
        info.first_index = h->first_index;
        info.start_crc = h->start_crc;
        info.flush_align_bytes = h->flush_align_bytes;
    }
    return result;
}

Result<ScanResult> scan_wal(const std::string& dir, const ScanOptions& options,
                            const std::function<void(const ScannedRecord&)>& on_record) {
    FileSystem& fs = options.fs != nullptr ? *options.fs : *default_file_system();
    auto result = list_wal(fs, dir);
    if (!result.ok()) return result;
    Scanner scanner(fs, dir, options, on_record, *result);
    if (Status s = scanner.run(); !s.ok()) return s;
    return result;
}

}  // namespace keel::wal
