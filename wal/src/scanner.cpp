// The segment scanner (scanner.hpp): segment files, their headers and the
// chain between them, the packed record layouts (versions 1 and 2), and how
// a missing or damaged record is judged (torn tail or corruption).
#include "scanner.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace keel::wal::detail {

Status Scanner::run() {
    for (std::size_t i = 0; i < r_.segments.size(); ++i) {
        if (Status s = scan_file(r_.segments[i]); !s.ok()) return s;
    }
    return Status();
}

Status Scanner::scan_file(SegmentInfo& info) {
    auto file = fs_.open(dir_ + "/" + info.file_name, OpenMode::read_only);
    if (!file.ok()) return file.status();
    auto size = (*file)->size();
    if (!size.ok()) return size.status();
    info.file_bytes = *size;
    // Read, not mapped: a disk error on a mapped page is a SIGBUS, on a
    // read an error naming the file and offset (PosixFile::pread).
    if (capacity_ < *size) {
        buf_.reset(new char[*size]);
        capacity_ = *size;
    }
    auto n = (*file)->pread(buf_.get(), *size, 0);
    if (!n.ok()) return n.status();
    const std::uint64_t bytes = *n;
    const char* buf = buf_.get();
    std::uint32_t version = 0;
    auto header = decode_segment_header(buf, bytes, &version);
    if (!header) {
        const bool known = version == kSegmentVersionPacked || version == kSegmentVersionAligned ||
                           version == kSegmentVersionBatched || version == kSegmentVersionGroups;
        const char* why = version != 0 && !known ? "has an unsupported format version"
                                                 : "has a bad segment header (magic or CRC)";
        add_issue(IssueKind::corruption, info, 0, expected_.value_or(0), bytes,
                  fmt::format("segment {} {}", info.file_name, why), buf, bytes);
        if (!options_.resync) stopped_ = true;
        return Status();
    }
    info.header_ok = true;
    info.version = version;
    info.sequence = header->sequence;
    info.first_index = header->first_index;
    info.start_crc = header->start_crc;
    info.flush_align_bytes = header->flush_align_bytes;
    info.last_index = header->first_index - 1;
    info.last_crc = header->start_crc;
    info.end_offset = records_start(header->flush_align_bytes);
    shape_ = RecordShape{record_header_bytes(version), options_.max_record_bytes};
    if (stopped_) return Status();
    if (header->first_index > options_.ignore_after_index &&
        header->first_index - 1 > options_.ignore_after_index) {
        info.ignored = true;
        return Status();
    }
    check_segment_continuity(info, buf, bytes);
    if (stopped_) return Status();
    scan_records(info, buf, bytes);
    return Status();
}

void Scanner::check_segment_continuity(SegmentInfo& info, const char* buf, std::uint64_t bytes) {
    if (!expected_) {
        expected_ = info.first_index;
        chain_ = info.start_crc;
        return;
    }
    if (pending_torn_ >= 0) return;  // judged when this segment's records are seen
    if (info.first_index > *expected_) {
        add_issue(IssueKind::gap, info, 0, *expected_, 0,
                  fmt::format("gap: segment {} starts at index {} but index {} was expected "
                              "(a segment is missing)",
                              info.file_name, info.first_index, *expected_),
                  buf, bytes);
    } else if (info.first_index < *expected_) {
        add_issue(IssueKind::duplicate, info, 0, info.first_index, 0,
                  fmt::format("duplicate: segment {} starts at index {}, already seen "
                              "(expected {})",
                              info.file_name, info.first_index, *expected_),
                  buf, bytes);
    } else if (info.start_crc != chain_) {
        add_issue(IssueKind::corruption, info, 0, *expected_, 0,
                  fmt::format("corruption: segment {} does not continue the CRC chain of the "
                              "previous segment",
                              info.file_name),
                  buf, bytes);
    } else {
        return;
    }
    if (!options_.resync) {
        stopped_ = true;
        return;
    }
    expected_ = info.first_index;
    chain_ = info.start_crc;
}

void Scanner::scan_records(SegmentInfo& info, const char* buf, std::uint64_t size) {
    if (has_batch_headers(info.version, info.flush_align_bytes))
        return scan_batches(info, buf, size);
    std::uint64_t off = records_start(info.flush_align_bytes);
    Cursor at{info.first_index, info.start_crc, false};
    while (!stopped_) {
        off = skip_flush_padding(info, buf, size, off);
        std::optional<FoundRecord> rec;
        if (off + shape_.header_bytes <= size && !all_zero(buf + off, shape_.header_bytes))
            rec = check_record_at(buf, size, off, shape_);
        if (!rec) {
            auto next = judge_tail(info, buf, size, off, at.expected);
            if (!next) return;
            rec = next;
            at.resynced = true;
        }
        if (!take_record(info, buf, size, *rec, at)) return;
        off = rec->offset + rec->bytes;
    }
}

bool Scanner::take_record(SegmentInfo& info, const char* buf, std::uint64_t size,
                          const FoundRecord& rec, Cursor& at) {
    const RecordHeader& h = rec.header;
    const std::uint64_t off = rec.offset;
    if (h.index > options_.ignore_after_index) return false;  // void (unfinished truncation)
    bool chain_ok = h.prev_crc == at.chain && !at.resynced;
    if (h.index != at.expected && !at.resynced) {
        const bool gap = h.index > at.expected;
        add_issue(gap ? IssueKind::gap : IssueKind::duplicate, info, off, h.index, rec.bytes,
                  fmt::format("{}: record at {} offset {} has index {} but index {} was "
                              "expected",
                              gap ? "gap" : "duplicate", info.file_name, off, h.index, at.expected),
                  buf, size);
        if (!options_.resync) {
            stopped_ = true;
            return false;
        }
        chain_ok = false;
    } else if (!chain_ok && !at.resynced) {
        add_issue(IssueKind::corruption, info, off, h.index, rec.bytes,
                  fmt::format("corruption: record at {} offset {} (index {}) does not "
                              "continue the CRC chain (a lost, misplaced or reordered "
                              "write)",
                              info.file_name, off, h.index),
                  buf, size);
        if (!options_.resync) {
            stopped_ = true;
            return false;
        }
    }
    at.resynced = false;
    if (pending_torn_ >= 0) promote_pending_torn(info, off, h.index);
    if (stopped_) return false;
    emit(info, buf, rec, chain_ok);
    at.chain = h.crc;
    at.expected = h.index + 1;
    info.records++;
    info.last_index = h.index;
    info.last_crc = h.crc;
    info.end_offset = off + rec.bytes;
    expected_ = at.expected;
    chain_ = at.chain;
    return true;
}

std::uint64_t Scanner::skip_flush_padding(const SegmentInfo& info, const char* buf,
                                          std::uint64_t size, std::uint64_t off) {
    const std::uint64_t align = info.flush_align_bytes;
    if (align == 0 || off % align == 0 || off >= size) return off;
    const std::uint64_t block_end = std::min(align_up(off, align), size);
    return all_zero(buf + off, block_end - off) ? block_end : off;
}

std::optional<FoundRecord> Scanner::judge_tail(SegmentInfo& info, const char* buf,
                                               std::uint64_t size, std::uint64_t off,
                                               std::uint64_t expected) {
    bool saw_data = false;
    auto next = find_next_record(buf, size, off + 8, shape_, &saw_data);
    if (next && next->header.index > options_.ignore_after_index) next.reset();
    if (!next) {
        const bool header_zero =
            off >= size || all_zero(buf + off, std::min(shape_.header_bytes, size - off));
        const std::uint64_t end = saw_data || !header_zero ? nonzero_end(buf, size, off) : off;
        if (end == off) return std::nullopt;  // clean end: zeros only
        add_issue(IssueKind::torn_tail, info, off, expected, end - off,
                  fmt::format("torn tail: incomplete record at {} offset {} (index {}), "
                              "{} bytes up to the last non-zero byte, nothing valid after it",
                              info.file_name, off, expected, end - off),
                  buf, size);
        pending_torn_ = static_cast<int>(r_.issues.size()) - 1;
        return std::nullopt;
    }
    add_issue(IssueKind::corruption, info, off, expected, next->offset - off,
              fmt::format("corruption: bad record at {} offset {} (index {}) is followed by a "
                          "valid record (index {} at offset {})",
                          info.file_name, off, expected, next->header.index, next->offset),
              buf, size);
    if (!options_.resync) {
        stopped_ = true;
        return std::nullopt;
    }
    return next;
}

void Scanner::promote_pending_torn(const SegmentInfo& info, std::uint64_t off,
                                   std::uint64_t index) {
    ScanIssue& issue = r_.issues[static_cast<std::size_t>(pending_torn_)];
    issue.kind = IssueKind::corruption;
    issue.message = fmt::format(
        "corruption: bad record at {} offset {} (index {}) is followed by a valid record "
        "(index {} at {} offset {})",
        issue.file_name, issue.offset, issue.index, index, info.file_name, off);
    pending_torn_ = -1;
    if (!options_.resync) stopped_ = true;
}

void Scanner::emit(const SegmentInfo& info, const char* buf, const FoundRecord& rec,
                   bool chain_ok) {
    r_.records++;
    if (r_.first_index == 0) r_.first_index = rec.header.index;
    r_.last_index = rec.header.index;
    if (!on_record_) return;
    ScannedRecord s;
    s.segment = &info;
    s.offset = rec.offset;
    s.index = rec.header.index;
    s.term = rec.header.term;
    s.type = rec.header.type;
    s.group = rec.header.group;
    s.payload_bytes = rec.header.length;
    s.record_bytes = rec.bytes;
    s.crc = rec.header.crc;
    s.chain_ok = chain_ok;
    s.payload = std::string_view(buf + rec.offset + shape_.header_bytes, rec.header.length);
    on_record_(s);
}

void Scanner::add_issue(IssueKind kind, const SegmentInfo& info, std::uint64_t off,
                        std::uint64_t index, std::uint64_t bad_bytes, std::string message,
                        const char* buf, std::uint64_t size) {
    ScanIssue issue;
    issue.kind = kind;
    issue.file_name = info.file_name;
    issue.offset = off;
    issue.index = index;
    issue.bad_bytes = bad_bytes;
    issue.message = std::move(message);
    if (off < size) issue.region.assign(buf + off, std::min<std::uint64_t>(256, size - off));
    r_.issues.push_back(std::move(issue));
}

}  // namespace keel::wal::detail
