// scan_wal(): the read-only scanner shared by recovery and waldump.
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
#include "segment_scan.hpp"

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

namespace {

using namespace detail;

class Scanner {
public:
    Scanner(FileSystem& fs, std::string dir, const ScanOptions& options,
            const std::function<void(const ScannedRecord&)>& on_record, ScanResult& result)
        : fs_(fs), dir_(std::move(dir)), options_(options), on_record_(on_record), r_(result) {}

    Status run() {
        for (std::size_t i = 0; i < r_.segments.size(); ++i) {
            if (Status s = scan_file(r_.segments[i]); !s.ok()) return s;
        }
        return Status();
    }

private:
    Status scan_file(SegmentInfo& info) {
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
            const bool known =
                version == kSegmentVersionPacked || version == kSegmentVersionAligned ||
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

    void check_segment_continuity(SegmentInfo& info, const char* buf, std::uint64_t bytes) {
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

    void scan_records(SegmentInfo& info, const char* buf, std::uint64_t size) {
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

    // Where the scan of a segment stands: the next index and chain value
    // expected, and whether the next record follows a resync (--continue),
    // which skips its index and chain checks.
    struct Cursor {
        std::uint64_t expected = 0;
        std::uint32_t chain = 0;
        bool resynced = false;
    };

    // A self-consistent record where the next one is due: checks its index
    // and chain, reports it and advances the cursor.  false: the segment's
    // scan ends (a void record above a pending fence, or a problem without
    // resync).
    bool take_record(SegmentInfo& info, const char* buf, std::uint64_t size, const FoundRecord& rec,
                     Cursor& at) {
        const RecordHeader& h = rec.header;
        const std::uint64_t off = rec.offset;
        if (h.index > options_.ignore_after_index) return false;  // void (unfinished truncation)
        bool chain_ok = h.prev_crc == at.chain && !at.resynced;
        if (h.index != at.expected && !at.resynced) {
            const bool gap = h.index > at.expected;
            add_issue(
                gap ? IssueKind::gap : IssueKind::duplicate, info, off, h.index, rec.bytes,
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

    // Versions 3 and 4 (aligned): every flush is a batch, a batch header at a block boundary
    // giving the extent of the records behind it.  A batch ends at its
    // extent, or earlier where zeros run to the end of the block and the
    // next block starts a batch that continues the log (a truncation, or
    // recovery after a torn flush, cut it there).  Damage anywhere in the
    // last batch of the log (no self-consistent batch header at any later
    // block) is a torn tail: nothing after it was written, so its write
    // never completed and none of its records was acknowledged.  Damage
    // followed by a later batch is corruption.
    void scan_batches(SegmentInfo& info, const char* buf, std::uint64_t size) {
        const std::uint64_t align = info.flush_align_bytes;
        std::uint64_t off = records_start(align);
        std::uint64_t batch_end = off;  // end of the current batch's extent
        Cursor at{info.first_index, info.start_crc, false};
        while (!stopped_) {
            if (off < batch_end) {
                const std::uint64_t within = std::min(size, batch_end);
                if (auto rec = check_record_at(buf, within, off, shape_)) {
                    if (!take_record(info, buf, size, *rec, at)) return;
                    off = rec->offset + rec->bytes;
                    continue;
                }
            }
            const std::uint64_t next = align_up(off, align);
            std::optional<BatchHeader> h;
            if (next < size && all_zero(buf + off, next - off))
                h = check_batch_header_at(buf, size, next);
            if (!h) {
                if (off >= size || all_zero(buf + off, size - off)) return;  // clean end
                auto later = judge_batch_damage(info, buf, size, off, at.expected);
                if (!later) return;
                at.resynced = true;
                // Resync: a record further on in this batch, else the later batch.
                bool saw_data = false;
                auto rec = off < batch_end ? find_next_record(buf, std::min(size, batch_end),
                                                              off + 8, shape_, &saw_data)
                                           : std::nullopt;
                if (rec && rec->offset < later->first) {
                    if (!take_record(info, buf, size, *rec, at)) return;
                    off = rec->offset + rec->bytes;
                    continue;
                }
                h = later->second;
                off = later->first;
            } else {
                if (h->first_index > options_.ignore_after_index) return;  // void
                if (!batch_continues(info, buf, size, next, *h, at)) return;
                off = next;
            }
            batch_end = off + kBatchHeaderBytes + h->length_bytes;
            off += kBatchHeaderBytes;
        }
    }

    // A self-consistent batch header at `off` where the next batch is due:
    // false (scan ends) if it does not continue the log and not resyncing.
    bool batch_continues(SegmentInfo& info, const char* buf, std::uint64_t size, std::uint64_t off,
                         const BatchHeader& h, Cursor& at) {
        if (at.resynced || (h.first_index == at.expected && h.prev_crc == at.chain)) return true;
        if (h.first_index != at.expected) {
            const bool gap = h.first_index > at.expected;
            add_issue(gap ? IssueKind::gap : IssueKind::duplicate, info, off, h.first_index, 0,
                      fmt::format("{}: batch at {} offset {} starts at index {} but index {} "
                                  "was expected",
                                  gap ? "gap" : "duplicate", info.file_name, off, h.first_index,
                                  at.expected),
                      buf, size);
        } else {
            add_issue(IssueKind::corruption, info, off, h.first_index, 0,
                      fmt::format("corruption: batch at {} offset {} (index {}) does not "
                                  "continue the CRC chain (a lost, misplaced or reordered write)",
                                  info.file_name, off, h.first_index),
                      buf, size);
        }
        if (!options_.resync) {
            stopped_ = true;
            return false;
        }
        at.resynced = true;
        return true;
    }

    // Versions 3 and 4: the log does not go on cleanly at `off` (inside a batch,
    // or where the next batch is due).  A self-consistent batch header at a
    // later block means a later flush was written, so this one had
    // completed: corruption; with resync, returns that batch (offset,
    // header).  None: the damage lies in the final flush, a torn tail.
    std::optional<std::pair<std::uint64_t, BatchHeader>> judge_batch_damage(
        SegmentInfo& info, const char* buf, std::uint64_t size, std::uint64_t off,
        std::uint64_t expected) {
        const std::uint64_t align = info.flush_align_bytes;
        for (std::uint64_t z = align_up(off + 1, align); z < size; z += align) {
            if (all_zero(buf + z, std::min(kBatchHeaderBytes, size - z))) continue;
            auto h = check_batch_header_at(buf, size, z);
            if (!h || h->first_index > options_.ignore_after_index) continue;
            add_issue(IssueKind::corruption, info, off, expected, z - off,
                      fmt::format("corruption: damaged batch at {} offset {} (index {}) is "
                                  "followed by a later flush (a batch of index {} at offset {})",
                                  info.file_name, off, expected, h->first_index, z),
                      buf, size);
            if (!options_.resync) {
                stopped_ = true;
                return std::nullopt;
            }
            return std::make_pair(z, *h);
        }
        const std::uint64_t end = nonzero_end(buf, size, off);
        add_issue(IssueKind::torn_tail, info, off, expected, end - off,
                  fmt::format("torn tail: the final flush is incomplete at {} offset {} (index "
                              "{}), {} bytes up to the last non-zero byte, no later flush",
                              info.file_name, off, expected, end - off),
                  buf, size);
        pending_torn_ = static_cast<int>(r_.issues.size()) - 1;
        return std::nullopt;
    }

    // Version 2: a flush ends with zeros up to the next multiple of
    // flush_align_bytes, where the next flush starts.  From `off` (past a
    // record), returns where the next record must be: the next block when
    // the rest of this one is zeros (padding), `off` otherwise (a record, or
    // damage for the caller to judge).  An all-zero block start is the end.
    static std::uint64_t skip_flush_padding(const SegmentInfo& info, const char* buf,
                                            std::uint64_t size, std::uint64_t off) {
        const std::uint64_t align = info.flush_align_bytes;
        if (align == 0 || off % align == 0 || off >= size) return off;
        const std::uint64_t block_end = std::min(align_up(off, align), size);
        return all_zero(buf + off, block_end - off) ? block_end : off;
    }

    // The record at `off` is missing or damaged.  Returns the next valid
    // record when scanning should go on (resync), nullopt when the segment ends.
    std::optional<FoundRecord> judge_tail(SegmentInfo& info, const char* buf, std::uint64_t size,
                                          std::uint64_t off, std::uint64_t expected) {
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

    // A torn tail was followed by a valid record in a later segment: it was
    // not the end of the log after all.
    void promote_pending_torn(const SegmentInfo& info, std::uint64_t off, std::uint64_t index) {
        ScanIssue& issue = r_.issues[static_cast<std::size_t>(pending_torn_)];
        issue.kind = IssueKind::corruption;
        issue.message = fmt::format(
            "corruption: bad record at {} offset {} (index {}) is followed by a valid record "
            "(index {} at {} offset {})",
            issue.file_name, issue.offset, issue.index, index, info.file_name, off);
        pending_torn_ = -1;
        if (!options_.resync) stopped_ = true;
    }

    void emit(const SegmentInfo& info, const char* buf, const FoundRecord& rec, bool chain_ok) {
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

    void add_issue(IssueKind kind, const SegmentInfo& info, std::uint64_t off, std::uint64_t index,
                   std::uint64_t bad_bytes, std::string message, const char* buf,
                   std::uint64_t size) {
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

    FileSystem& fs_;
    std::string dir_;
    const ScanOptions& options_;
    const std::function<void(const ScannedRecord&)>& on_record_;
    ScanResult& r_;
    std::unique_ptr<char[]> buf_;
    std::uint64_t capacity_ = 0;
    RecordShape shape_;                      // of the segment being scanned
    std::optional<std::uint64_t> expected_;  // next index across segments
    std::uint32_t chain_ = 0;
    int pending_torn_ = -1;  // index in r_.issues of a torn tail not yet confirmed
    bool stopped_ = false;
};

}  // namespace

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
