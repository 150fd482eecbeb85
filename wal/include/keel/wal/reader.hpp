// keel/wal/reader.hpp — read-only inspection of a WAL directory.
//
// scan_wal() walks every segment and record, verifies CRCs, the CRC chain and
// index continuity, and classifies what it finds (torn tail, corruption, gap,
// duplicate) without modifying anything, so it is safe on the directory of a
// crashed or running node.  waldump is built on it; Wal::open() uses the same
// scanner for recovery, so both always agree on what is valid.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/metadata.hpp"
#include "keel/wal/record.hpp"

namespace keel::wal {

// One segment file as found on disk.
struct SegmentInfo {
    std::string file_name;         // e.g. "0000000000000001-0000000000000001.wal"
    std::uint64_t file_bytes = 0;  // size of the file (includes zeroed preallocation)
    bool header_ok = false;        // magic, version and header CRC verified
    std::uint32_t version = 0;
    std::uint64_t sequence = 0;     // from the header (the file name repeats it)
    std::uint64_t first_index = 0;  // index of its first record
    std::uint32_t start_crc = 0;    // chain value its first record continues from
    // Version 2, 3 and aligned version-4 segments: every flush starts at a
    // multiple of this many bytes (in versions 3 and 4 with a batch header),
    // the rest of its last block is zeros (docs/wal.md).  0: versions 1 and
    // 4, flushes packed back to back.  Version 4 records carry a group id.
    std::uint32_t flush_align_bytes = 0;
    // Filled in by the scan:
    std::uint64_t records = 0;     // valid records found
    std::uint64_t last_index = 0;  // of the last valid record (first_index - 1 if none)
    std::uint32_t last_crc = 0;    // CRC of the last valid record (start_crc if none)
    std::uint64_t end_offset = 0;  // byte offset just past the last valid record
    bool ignored = false;          // wholly after ScanOptions::ignore_after_index
};

// A record as found on disk.  `payload` points into the scanner's buffer and
// is valid only during the callback.
struct ScannedRecord {
    const SegmentInfo* segment = nullptr;
    std::uint64_t offset = 0;  // byte offset of the record header in the file
    std::uint64_t index = 0;
    std::uint64_t term = 0;
    std::uint16_t type = 0;
    std::uint64_t group = 0;  // layout version 4; 0 in older segments
    std::uint32_t payload_bytes = 0;
    std::uint64_t record_bytes = 0;  // header + payload + padding
    std::uint32_t crc = 0;           // stored CRC
    bool crc_ok = true;              // always true: records failing their CRC are issues
    bool chain_ok = true;            // prev_crc matched the chain (false only when resyncing)
    std::string_view payload;
};

enum class IssueKind {
    torn_tail,   // an incomplete last write: nothing valid follows it
    corruption,  // a bad record or header followed by valid data, or a broken CRC chain
    gap,         // an index (or a whole segment) is missing
    duplicate,   // an index appears twice or goes backwards
};
const char* issue_kind_name(IssueKind kind) noexcept;

struct ScanIssue {
    IssueKind kind = IssueKind::corruption;
    std::string file_name;     // segment file
    std::uint64_t offset = 0;  // byte offset in it where the problem starts
    std::uint64_t index = 0;   // the index expected there (or found, for gap/duplicate)
    std::uint64_t bad_bytes =
        0;                // length of the damaged region (torn: up to the last non-zero byte)
    std::string message;  // one line, human readable
    std::string region;   // up to 256 raw bytes from `offset`, for a hex dump
};

struct ScanOptions {
    // A record header claiming a longer payload is treated as damage.
    // Recovery uses the format's maximum, whatever Options::max_record_bytes.
    std::uint64_t max_record_bytes = kFormatMaxPayloadBytes;
    // Keep scanning past corruption, resynchronising at the next record
    // whose own CRC is valid (waldump --continue).  Records found that way
    // have chain_ok == false when they do not continue the chain.
    bool resync = false;
    // Records with a greater index are treated as absent (recovery passes the
    // truncation fence from the metadata file; tools leave it).
    std::uint64_t ignore_after_index = UINT64_MAX;
    FileSystem* fs = nullptr;  // null = default_file_system()
};

// The metadata side file as found on disk.
struct MetadataInfo {
    bool present = false;
    Metadata metadata;
    std::uint64_t log_floor = 0;         // compaction point: records below are not part of the log
    std::optional<std::uint64_t> fence;  // an unfinished truncation: records above are void
    // Per group: its records below this index are released (Wal::release).
    std::map<std::uint64_t, std::uint64_t> releases;
};

struct ScanResult {
    MetadataInfo meta;
    std::vector<SegmentInfo> segments;  // in sequence order
    std::vector<ScanIssue> issues;      // in file order; without resync, at most one
                                        // problem stops the scan (a torn tail ends it)
    std::uint64_t records = 0;
    std::uint64_t first_index = 0;  // of the first valid record (0 if none)
    std::uint64_t last_index = 0;   // of the last valid record (0 if none)
    bool clean() const { return issues.empty(); }
    bool torn_only() const;  // exactly one issue and it is a torn tail
};

// Scans `dir` read-only, calling on_record (may be empty) for each valid
// record in order.  Fails (not_found / unsupported / corruption / io_error)
// only when the directory cannot be read as a WAL at all: it is missing, it
// holds no segment and no metadata file, or the metadata file is damaged.
// Problems inside the log are returned as ScanResult::issues.
Result<ScanResult> scan_wal(const std::string& dir, const ScanOptions& options,
                            const std::function<void(const ScannedRecord&)>& on_record);

// Only the metadata file and the segment headers (ScanResult::segments with
// just the header fields set; nothing scanned, issues empty).  Cheap: reads
// 64 bytes per segment.  Same errors as scan_wal.
Result<ScanResult> read_wal_layout(const std::string& dir, FileSystem* fs = nullptr);

// File names used in a WAL directory (for tools and tests).
bool is_segment_file_name(std::string_view name);
inline constexpr const char* kMetadataFileName = "meta";

}  // namespace keel::wal
