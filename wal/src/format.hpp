// format.hpp — the on-disk layout of segments, records and the metadata file.
//
// docs/wal.md is the byte-by-byte specification; this file is its code.  All
// integers are little-endian (the build refuses big-endian hosts).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "keel/wal/metadata.hpp"

namespace keel::wal::detail {

static_assert(std::endian::native == std::endian::little, "the WAL format is little-endian");

// The metadata file's version.
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr char kSegmentMagic[8] = {'K', 'E', 'E', 'L', 'W', 'A', 'L', '\0'};
// Segment versions (docs/wal.md, "Segment file"): 1 packs each flush right
// after the previous one; 2 starts every flush on a fresh block of
// `flush_align_bytes`, so that a write never touches a block that holds
// records of an earlier flush (the direct-I/O path needs that); 3 is 2 with
// a batch header at the start of every flush, giving the flush's extent, so
// that recovery can tell a torn final flush from corruption.
inline constexpr std::uint32_t kSegmentVersionPacked = 1;
inline constexpr std::uint32_t kSegmentVersionAligned = 2;
inline constexpr std::uint32_t kSegmentVersionBatched = 3;
inline constexpr std::uint64_t kSegmentHeaderBytes = 64;
// The flush alignment the WAL writes into version-3 segments (a reader
// accepts any power of two in [kMinFlushAlignBytes, kMaxFlushAlignBytes]).
inline constexpr std::uint32_t kFlushAlignBytes = 4096;
inline constexpr std::uint32_t kMinFlushAlignBytes = 512;
inline constexpr std::uint32_t kMaxFlushAlignBytes = 1u << 20;
inline constexpr std::uint64_t kRecordHeaderBytes = 32;
inline constexpr std::uint64_t kRecordAlignment = 8;
inline constexpr std::uint64_t kBatchHeaderBytes = 32;
inline constexpr char kBatchMagic[4] = {'K', 'B', 'A', 'T'};

inline constexpr char kMetadataMagic[8] = {'K', 'E', 'E', 'L', 'M', 'E', 'T', 'A'};
inline constexpr std::uint64_t kMetadataFixedBytes = 24 + 8 * 8 + 4;
inline constexpr const char* kMetadataTmpName = "meta.tmp";
inline constexpr const char* kPreallocName = "next-segment.tmp";
inline constexpr const char* kLockName = "LOCK";

inline std::uint64_t padded(std::uint64_t n) {
    return (n + 7) & ~std::uint64_t{7};
}
inline std::uint64_t record_bytes(std::uint64_t payload_bytes) {
    return kRecordHeaderBytes + padded(payload_bytes);
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
    // Version 3: every flush starts with a batch header.  Requires
    // flush_align_bytes != 0.
    bool batch_headers = false;
};
inline std::uint32_t segment_version(const SegmentHeader& h) {
    return h.flush_align_bytes == 0 ? kSegmentVersionPacked
           : h.batch_headers        ? kSegmentVersionBatched
                                    : kSegmentVersionAligned;
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
};
RecordHeader decode_record_header(const char* in);
// Writes header + payload + zero padding into out (record_bytes(len) bytes)
// and returns the record's CRC (chained from prev_crc).
std::uint32_t encode_record(std::uint64_t index, std::uint64_t term, std::uint16_t type,
                            std::string_view payload, std::uint32_t prev_crc, char* out);
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
};
std::string encode_metadata(const MetadataFile& m);
// nullopt on bad magic, size or CRC.
std::optional<MetadataFile> decode_metadata(std::string_view bytes);

}  // namespace keel::wal::detail
