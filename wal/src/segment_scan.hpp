// segment_scan.hpp — low-level helpers of the recovery scanner: finding the
// next self-consistent record in a buffer, and locating non-zero data.
#pragma once

#include <cstdint>
#include <optional>

#include "format.hpp"

namespace keel::wal::detail {

// A record at `offset` whose own CRC verifies (the chain is not checked).
struct FoundRecord {
    std::uint64_t offset = 0;
    RecordHeader header;
    std::uint64_t bytes = 0;
};

// How records look in one segment: the record header size of its layout
// version, and the largest payload taken for valid.
struct RecordShape {
    std::uint64_t header_bytes = kRecordHeaderBytes;
    std::uint64_t max_record_bytes = 0;
};

// Checks the record at `offset` on its own: sane fields (a group id too,
// in version 4), fits in `size`, CRC over its bytes seeded with its stored
// prev_crc.
std::optional<FoundRecord> check_record_at(const char* buf, std::uint64_t size,
                                           std::uint64_t offset, const RecordShape& shape);

// The first offset >= from (8-aligned) holding a self-consistent record.
// Skips zero runs a word at a time, so a zeroed preallocated tail is cheap.
// *saw_data tells whether any non-zero word was seen on the way.
std::optional<FoundRecord> find_next_record(const char* buf, std::uint64_t size, std::uint64_t from,
                                            const RecordShape& shape, bool* saw_data);

// Offset just past the last non-zero byte in [from, size), or `from` if none.
std::uint64_t nonzero_end(const char* buf, std::uint64_t size, std::uint64_t from);

bool all_zero(const char* p, std::uint64_t n);

}  // namespace keel::wal::detail
