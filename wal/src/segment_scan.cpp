// Low-level scanning helpers.  See segment_scan.hpp.
#include "segment_scan.hpp"

#include "keel/crc32c.hpp"
#include "keel/wal/record.hpp"

namespace keel::wal::detail {

bool all_zero(const char* p, std::uint64_t n) {
    std::uint64_t i = 0;
    for (; i + 8 <= n; i += 8)
        if (load<std::uint64_t>(p + i) != 0) return false;
    for (; i < n; ++i)
        if (p[i] != 0) return false;
    return true;
}

std::optional<FoundRecord> check_record_at(const char* buf, std::uint64_t size,
                                           std::uint64_t offset, const RecordShape& shape) {
    if (offset + shape.header_bytes > size) return std::nullopt;
    RecordHeader h = decode_record_header(buf + offset, shape.header_bytes);
    // Indexes and groups above 2^62 are refused on append; this keeps a
    // resync over random bytes from CRC-ing huge bogus lengths.
    if (h.flags != 0 || h.index == 0 || h.index > kMaxIndex || h.group > kMaxGroup ||
        h.length > shape.max_record_bytes)
        return std::nullopt;
    const std::uint64_t bytes = record_bytes(h.length, shape.header_bytes);
    if (offset + bytes > size) return std::nullopt;
    if (record_crc(buf + offset, bytes, h.prev_crc) != h.crc) return std::nullopt;
    return FoundRecord{offset, h, bytes};
}

std::optional<FoundRecord> find_next_record(const char* buf, std::uint64_t size, std::uint64_t from,
                                            const RecordShape& shape, bool* saw_data) {
    *saw_data = false;
    std::uint64_t y = padded(from);
    std::uint64_t w = y;
    // A header is 4 (version 4: 5) words, so only headers starting at most
    // 3 (4) words before a non-zero word can contain it.
    const std::uint64_t reach = shape.header_bytes - 8;
    while (y + shape.header_bytes <= size) {
        w = y;
        while (w + 8 <= size && load<std::uint64_t>(buf + w) == 0) w += 8;
        if (w + 8 > size) break;
        *saw_data = true;
        const std::uint64_t first = w >= y + reach ? w - reach : y;
        for (std::uint64_t c = first; c <= w; c += 8) {
            if (auto r = check_record_at(buf, size, c, shape)) return r;
        }
        y = w + 8;
        w = y;
    }
    // Bytes too few for a header (or a trailing partial word) still count as data.
    if (w < size && !all_zero(buf + w, size - w)) *saw_data = true;
    return std::nullopt;
}

std::uint64_t nonzero_end(const char* buf, std::uint64_t size, std::uint64_t from) {
    std::uint64_t end = size;
    while (end > from && (end % 8) != 0) {
        if (buf[end - 1] != 0) return end;
        --end;
    }
    while (end >= from + 8 && load<std::uint64_t>(buf + end - 8) == 0) end -= 8;
    while (end > from && buf[end - 1] == 0) --end;
    return end;
}

}  // namespace keel::wal::detail
