// scanner.hpp — the segment scanner behind scan_wal(): reads each segment
// file, checks every record and the CRC chain across segments, and
// classifies what is wrong (reader.cpp states the rules).  scanner.cpp scans
// the packed layouts (versions 1 and 2) and judges records;
// scanner_batches.cpp the batched layouts (versions 3 and 4).
//
// One Scanner serves one scan_wal() call, on the caller's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "format.hpp"
#include "keel/wal/reader.hpp"
#include "segment_scan.hpp"

namespace keel::wal::detail {

class Scanner {
public:
    Scanner(FileSystem& fs, std::string dir, const ScanOptions& options,
            const std::function<void(const ScannedRecord&)>& on_record, ScanResult& result)
        : fs_(fs), dir_(std::move(dir)), options_(options), on_record_(on_record), r_(result) {}

    // Scans every segment of the ScanResult (listed by the caller) in order,
    // filling in its SegmentInfo, the issues and the record counts.  Errors
    // are I/O errors only: damage is reported as issues.
    Status run();

private:
    // Reads one segment file whole, checks its header and scans its records.
    Status scan_file(SegmentInfo& info);

    // Whether a segment's first index and start CRC continue the previous
    // segment's last record (a gap, a duplicate or a broken chain otherwise).
    void check_segment_continuity(SegmentInfo& info, const char* buf, std::uint64_t bytes);

    // Versions 1 and 2 (packed, or flushes aligned without batch headers):
    // records one after another; versions 3 and 4 go to scan_batches.
    void scan_records(SegmentInfo& info, const char* buf, std::uint64_t size);

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
                     Cursor& at);

    // Versions 3 and 4 (aligned): every flush is a batch, a batch header at a block boundary
    // giving the extent of the records behind it.  A batch ends at its
    // extent, or earlier where zeros run to the end of the block and the
    // next block starts a batch that continues the log (a truncation, or
    // recovery after a torn flush, cut it there).  Damage anywhere in the
    // last batch of the log (no self-consistent batch header at any later
    // block) is a torn tail: nothing after it was written, so its write
    // never completed and none of its records was acknowledged.  Damage
    // followed by a later batch is corruption.
    void scan_batches(SegmentInfo& info, const char* buf, std::uint64_t size);

    // A self-consistent batch header at `off` where the next batch is due:
    // false (scan ends) if it does not continue the log and not resyncing.
    bool batch_continues(SegmentInfo& info, const char* buf, std::uint64_t size, std::uint64_t off,
                         const BatchHeader& h, Cursor& at);

    // Versions 3 and 4: the log does not go on cleanly at `off` (inside a batch,
    // or where the next batch is due).  A self-consistent batch header at a
    // later block means a later flush was written, so this one had
    // completed: corruption; with resync, returns that batch (offset,
    // header).  None: the damage lies in the final flush, a torn tail.
    std::optional<std::pair<std::uint64_t, BatchHeader>> judge_batch_damage(SegmentInfo& info,
                                                                            const char* buf,
                                                                            std::uint64_t size,
                                                                            std::uint64_t off,
                                                                            std::uint64_t expected);

    // Version 2: a flush ends with zeros up to the next multiple of
    // flush_align_bytes, where the next flush starts.  From `off` (past a
    // record), returns where the next record must be: the next block when
    // the rest of this one is zeros (padding), `off` otherwise (a record, or
    // damage for the caller to judge).  An all-zero block start is the end.
    static std::uint64_t skip_flush_padding(const SegmentInfo& info, const char* buf,
                                            std::uint64_t size, std::uint64_t off);

    // The record at `off` is missing or damaged.  Returns the next valid
    // record when scanning should go on (resync), nullopt when the segment ends.
    std::optional<FoundRecord> judge_tail(SegmentInfo& info, const char* buf, std::uint64_t size,
                                          std::uint64_t off, std::uint64_t expected);

    // A torn tail was followed by a valid record in a later segment: it was
    // not the end of the log after all.
    void promote_pending_torn(const SegmentInfo& info, std::uint64_t off, std::uint64_t index);

    // Counts a valid record and hands it to the on_record callback.
    void emit(const SegmentInfo& info, const char* buf, const FoundRecord& rec, bool chain_ok);

    // Records an issue with up to 256 bytes of the damaged region.
    void add_issue(IssueKind kind, const SegmentInfo& info, std::uint64_t off, std::uint64_t index,
                   std::uint64_t bad_bytes, std::string message, const char* buf,
                   std::uint64_t size);

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

}  // namespace keel::wal::detail
