// format.hpp — the on-disk layout of segments, records and the metadata file.
//
// docs/wal.md is the byte-by-byte specification; this file is its code.  All
// integers are little-endian (the build refuses big-endian hosts).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "keel/wal/metadata.hpp"

namespace keel::wal::detail {

static_assert(std::endian::native == std::endian::little, "the WAL format is little-endian");

// The metadata file's versions: 1 without, 2 with the release table (the
// WAL writes 2).
inline constexpr std::uint32_t kMetadataVersionPlain = 1;
inline constexpr std::uint32_t kMetadataVersionReleases = 2;
inline constexpr char kSegmentMagic[8] = {'K', 'E', 'E', 'L', 'W', 'A', 'L', '\0'};
// Segment versions (docs/wal.md, "Segment file"): 1 packs each flush right
// after the previous one; 2 starts every flush on a fresh block of
// `flush_align_bytes`, so that a write never touches a block that holds
// records of an earlier flush (the direct-I/O path needs that); 3 is 2 with
// a batch header at the start of every flush, giving the flush's extent, so
// that recovery can tell a torn final flush from corruption; 4 is 1 (flush
// alignment 0) or 3 (flush alignment set) with a group id in every record
// header (kGroupRecordHeaderBytes), the layout the WAL writes.
inline constexpr std::uint32_t kSegmentVersionPacked = 1;
inline constexpr std::uint32_t kSegmentVersionAligned = 2;
inline constexpr std::uint32_t kSegmentVersionBatched = 3;
inline constexpr std::uint32_t kSegmentVersionGroups = 4;
inline constexpr std::uint64_t kSegmentHeaderBytes = 64;
// The flush alignment the WAL writes into version-3 segments (a reader
// accepts any power of two in [kMinFlushAlignBytes, kMaxFlushAlignBytes]).
inline constexpr std::uint32_t kFlushAlignBytes = 4096;
inline constexpr std::uint32_t kMinFlushAlignBytes = 512;
inline constexpr std::uint32_t kMaxFlushAlignBytes = 1u << 20;
// Record headers: 32 bytes in layout versions 1 to 3, 40 (with the group
// id) in version 4.
inline constexpr std::uint64_t kRecordHeaderBytes = 32;
inline constexpr std::uint64_t kGroupRecordHeaderBytes = 40;
// The scanner's sanity bound for an index, and for a group id (the same:
// a resync over random bytes must not take garbage for a record).
inline constexpr std::uint64_t kMaxIndex = 1ull << 62;
inline constexpr std::uint64_t kRecordAlignment = 8;
inline constexpr std::uint64_t kBatchHeaderBytes = 32;
inline constexpr char kBatchMagic[4] = {'K', 'B', 'A', 'T'};

inline constexpr char kMetadataMagic[8] = {'K', 'E', 'E', 'L', 'M', 'E', 'T', 'A'};
inline constexpr std::uint64_t kMetadataFixedBytes = 24 + 8 * 8 + 4;
// Version 2: the release table after the opaque bytes, a count and then
// (group, released_below) pairs in ascending group order.
inline constexpr std::uint64_t kReleaseCountBytes = 4;
inline constexpr std::uint64_t kReleaseEntryBytes = 16;
inline constexpr const char* kMetadataTmpName = "meta.tmp";
inline constexpr const char* kPreallocName = "next-segment.tmp";
// A compacted segment being deleted (Wal::Impl::remove_segment_gradually):
// recovery deletes it, whatever is left of it.
inline constexpr const char* kDeletingName = "deleting-segment.tmp";
inline constexpr const char* kLockName = "LOCK";

inline std::uint64_t padded(std::uint64_t n) {
    return (n + 7) & ~std::uint64_t{7};
}
inline std::uint64_t record_bytes(std::uint64_t payload_bytes,
                                  std::uint64_t header_bytes = kRecordHeaderBytes) {
    return header_bytes + padded(payload_bytes);
}
// n rounded up to a multiple of `align` (a power of two; 0 or 1: n).
inline std::uint64_t align_up(std::uint64_t n, std::uint64_t align) {
    return align <= 1 ? n : (n + align - 1) & ~(align - 1);
}

template <typename T>
inline T load(const char* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
template <typename T>
inline void store(char* p, T v) {
    std::memcpy(p, &v, sizeof v);
}

struct SegmentHeader {
    std::uint64_t sequence = 0;
    std::uint64_t first_index = 0;
    std::uint32_t start_crc = 0;
    // 0: version 1 (packed flushes); otherwise version 2 or 3, every flush
    // starts at a multiple of this many bytes.
    std::uint32_t flush_align_bytes = 0;
    // Versions 3 and 4 (aligned): every flush starts with a batch header.
    // Requires flush_align_bytes != 0.
    bool batch_headers = false;
    // Version 4: every record header carries a group id.  With aligned
    // flushes, requires batch_headers.
    bool groups = false;
};
inline std::uint32_t segment_version(const SegmentHeader& h) {
    return h.groups                   ? kSegmentVersionGroups
           : h.flush_align_bytes == 0 ? kSegmentVersionPacked
           : h.batch_headers          ? kSegmentVersionBatched
                                      : kSegmentVersionAligned;
}
// The record header size of a segment of this version (a known one).
inline std::uint64_t record_header_bytes(std::uint32_t version) {
    return version == kSegmentVersionGroups ? kGroupRecordHeaderBytes : kRecordHeaderBytes;
}
// Whether a segment of this version starts every flush with a batch header.
inline bool has_batch_headers(std::uint32_t version, std::uint32_t flush_align_bytes) {
    return version == kSegmentVersionBatched ||
           (version == kSegmentVersionGroups && flush_align_bytes != 0);
}
// Offset of the first record: right after the header (version 1), or the
// first aligned block after it (versions 2 and 3).
inline std::uint64_t records_start(std::uint32_t flush_align_bytes) {
    return flush_align_bytes == 0 ? kSegmentHeaderBytes
                                  : align_up(kSegmentHeaderBytes, flush_align_bytes);
}
void encode_segment_header(const SegmentHeader& h, char out[kSegmentHeaderBytes]);
// nullopt if the magic, version, header CRC or (versions 2, 3) the flush
// alignment is wrong; *version gets the stored version when the magic
// matched (to tell "unsupported" apart).
std::optional<SegmentHeader> decode_segment_header(const char* in, std::size_t size,
                                                   std::uint32_t* version);

// Record header fields (offsets in docs/wal.md).
struct RecordHeader {
    std::uint32_t crc = 0;
    std::uint32_t length = 0;  // payload bytes
    std::uint64_t index = 0;
    std::uint64_t term = 0;
    std::uint16_t type = 0;
    std::uint16_t flags = 0;
    std::uint32_t prev_crc = 0;
    std::uint64_t group = 0;  // version 4; 0 in versions 1 to 3
};
// header_bytes: kRecordHeaderBytes or kGroupRecordHeaderBytes (the segment's).
RecordHeader decode_record_header(const char* in, std::uint64_t header_bytes = kRecordHeaderBytes);
// Writes header + payload + zero padding into out (record_bytes(len,
// header_bytes) bytes) and returns the record's CRC (chained from
// prev_crc).  The group goes into a version-4 header (header_bytes
// kGroupRecordHeaderBytes); a shorter header has no room for it, so it
// must be 0 there.
struct RecordFields {
    std::uint64_t index = 0;
    std::uint64_t term = 0;
    std::uint16_t type = 0;
    std::uint64_t group = 0;
};
std::uint32_t encode_record(const RecordFields& fields, std::string_view payload,
                            std::uint32_t prev_crc, std::uint64_t header_bytes, char* out);
// CRC a stored record must carry: over bytes [4, record_bytes) seeded with prev_crc.
std::uint32_t record_crc(const char* record, std::uint64_t record_bytes_total,
                         std::uint32_t prev_crc);

// The header at the start of every flush of a version-3 segment: the
// flush's first index, the chain value its first record continues from, and
// the bytes of records that follow the header (its extent).
struct BatchHeader {
    std::uint64_t first_index = 0;
    std::uint64_t length_bytes = 0;  // records after the header, a multiple of 8, > 0
    std::uint32_t prev_crc = 0;
};
void encode_batch_header(const BatchHeader& h, char out[kBatchHeaderBytes]);
// The batch header at `offset` if it is self-consistent (magic, CRC, sane
// fields, within `size`); says nothing about whether it continues the log.
std::optional<BatchHeader> check_batch_header_at(const char* buf, std::uint64_t size,
                                                 std::uint64_t offset);

// "<sequence:016x>-<first_index:016x>.wal"
std::string segment_file_name(std::uint64_t sequence, std::uint64_t first_index);
bool parse_segment_file_name(std::string_view name, std::uint64_t* sequence,
                             std::uint64_t* first_index);

// The metadata side file.
struct MetadataFile {
    Metadata metadata;
    std::uint64_t log_floor = 0;
    bool fence_set = false;
    std::uint64_t fence = 0;
    // Per group: its records below this index are no longer needed
    // (Wal::release).  Only entries above log_floor are kept; at most
    // kMaxReleasedGroups.
    std::map<std::uint64_t, std::uint64_t> releases;
};
// Encodes version 2.  REQUIRES: releases.size() <= kMaxReleasedGroups.
std::string encode_metadata(const MetadataFile& m);
// The largest metadata file a reader accepts.
inline constexpr std::uint64_t kMaxMetadataFileBytes =
    kMetadataFixedBytes + kMaxMetadataOpaqueBytes + kReleaseCountBytes +
    kReleaseEntryBytes * kMaxReleasedGroups;
// Versions 1 and 2.  nullopt on bad magic, version, size or CRC, or a
// release table that is out of order, over its limit, or holds a group or
// index over kMaxIndex.
std::optional<MetadataFile> decode_metadata(std::string_view bytes);

}  // namespace keel::wal::detail
