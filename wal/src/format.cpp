// Encoding and decoding of the on-disk structures.  See format.hpp, docs/wal.md.
#include "format.hpp"

#include <fmt/format.h>

#include "keel/assert.hpp"
#include "keel/crc32c.hpp"
#include "keel/wal/record.hpp"

namespace keel::wal::detail {

void encode_segment_header(const SegmentHeader& h, char out[kSegmentHeaderBytes]) {
    std::memset(out, 0, kSegmentHeaderBytes);
    std::memcpy(out, kSegmentMagic, 8);
    KEEL_ASSERT(!h.batch_headers || h.flush_align_bytes != 0, "batch headers need aligned flushes");
    KEEL_ASSERT(!h.groups || h.batch_headers == (h.flush_align_bytes != 0),
                "version 4 is packed, or aligned with batch headers");
    store<std::uint32_t>(out + 8, segment_version(h));
    store<std::uint32_t>(out + 12, static_cast<std::uint32_t>(kSegmentHeaderBytes));
    store<std::uint64_t>(out + 16, h.sequence);
    store<std::uint64_t>(out + 24, h.first_index);
    store<std::uint32_t>(out + 32, h.start_crc);
    store<std::uint32_t>(out + 36, h.flush_align_bytes);
    store<std::uint32_t>(out + 60, crc32c(out, 60));
}

std::optional<SegmentHeader> decode_segment_header(const char* in, std::size_t size,
                                                   std::uint32_t* version) {
    *version = 0;
    if (size < kSegmentHeaderBytes) return std::nullopt;
    if (std::memcmp(in, kSegmentMagic, 8) != 0) return std::nullopt;
    *version = load<std::uint32_t>(in + 8);
    if (*version != kSegmentVersionPacked && *version != kSegmentVersionAligned &&
        *version != kSegmentVersionBatched && *version != kSegmentVersionGroups)
        return std::nullopt;
    if (load<std::uint32_t>(in + 12) != kSegmentHeaderBytes) return std::nullopt;
    if (load<std::uint32_t>(in + 60) != crc32c(in, 60)) return std::nullopt;
    SegmentHeader h;
    h.sequence = load<std::uint64_t>(in + 16);
    h.first_index = load<std::uint64_t>(in + 24);
    h.start_crc = load<std::uint32_t>(in + 32);
    h.groups = *version == kSegmentVersionGroups;
    const std::uint32_t align = load<std::uint32_t>(in + 36);
    // Version 1 keeps these bytes reserved (zero, unchecked); in version 4,
    // 0 means packed flushes.
    if (*version == kSegmentVersionPacked || (h.groups && align == 0)) return h;
    if (align < kMinFlushAlignBytes || align > kMaxFlushAlignBytes || !std::has_single_bit(align))
        return std::nullopt;
    h.flush_align_bytes = align;
    h.batch_headers = *version == kSegmentVersionBatched || h.groups;
    return h;
}

void encode_batch_header(const BatchHeader& h, char out[kBatchHeaderBytes]) {
    std::memset(out, 0, kBatchHeaderBytes);
    std::memcpy(out + 4, kBatchMagic, 4);
    store<std::uint64_t>(out + 8, h.first_index);
    store<std::uint64_t>(out + 16, h.length_bytes);
    store<std::uint32_t>(out + 24, h.prev_crc);
    store<std::uint32_t>(out, crc32c(out + 4, kBatchHeaderBytes - 4));
}

std::optional<BatchHeader> check_batch_header_at(const char* buf, std::uint64_t size,
                                                 std::uint64_t offset) {
    if (offset > size || size - offset < kBatchHeaderBytes) return std::nullopt;
    const char* p = buf + offset;
    if (std::memcmp(p + 4, kBatchMagic, 4) != 0) return std::nullopt;
    if (load<std::uint32_t>(p) != crc32c(p + 4, kBatchHeaderBytes - 4)) return std::nullopt;
    BatchHeader h;
    h.first_index = load<std::uint64_t>(p + 8);
    h.length_bytes = load<std::uint64_t>(p + 16);
    h.prev_crc = load<std::uint32_t>(p + 24);
    if (load<std::uint32_t>(p + 28) != 0) return std::nullopt;
    // A batch holds at least one record; the same index bound as records.
    if (h.first_index == 0 || h.first_index > (1ull << 62) || h.length_bytes < kRecordHeaderBytes ||
        h.length_bytes % kRecordAlignment != 0 || h.length_bytes > (1ull << 62))
        return std::nullopt;
    return h;
}

RecordHeader decode_record_header(const char* in, std::uint64_t header_bytes) {
    RecordHeader h;
    h.crc = load<std::uint32_t>(in + 0);
    h.length = load<std::uint32_t>(in + 4);
    h.index = load<std::uint64_t>(in + 8);
    h.term = load<std::uint64_t>(in + 16);
    h.type = load<std::uint16_t>(in + 24);
    h.flags = load<std::uint16_t>(in + 26);
    h.prev_crc = load<std::uint32_t>(in + 28);
    if (header_bytes == kGroupRecordHeaderBytes) h.group = load<std::uint64_t>(in + 32);
    return h;
}

std::uint32_t record_crc(const char* record, std::uint64_t record_bytes_total,
                         std::uint32_t prev_crc) {
    return crc32c_extend(prev_crc, record + 4, record_bytes_total - 4);
}

std::uint32_t encode_record(const RecordFields& fields, std::string_view payload,
                            std::uint32_t prev_crc, std::uint64_t header_bytes, char* out) {
    KEEL_ASSERT(payload.size() <= UINT32_MAX, "payload length must fit the u32 length field");
    KEEL_ASSERT(header_bytes == kGroupRecordHeaderBytes || fields.group == 0,
                "only a version-4 record header has room for a group");
    const std::uint64_t total = record_bytes(payload.size(), header_bytes);
    store<std::uint32_t>(out + 4, static_cast<std::uint32_t>(payload.size()));
    store<std::uint64_t>(out + 8, fields.index);
    store<std::uint64_t>(out + 16, fields.term);
    store<std::uint16_t>(out + 24, fields.type);
    store<std::uint16_t>(out + 26, 0);
    store<std::uint32_t>(out + 28, prev_crc);
    if (header_bytes == kGroupRecordHeaderBytes) store<std::uint64_t>(out + 32, fields.group);
    if (!payload.empty()) std::memcpy(out + header_bytes, payload.data(), payload.size());
    std::memset(out + header_bytes + payload.size(), 0, total - header_bytes - payload.size());
    const std::uint32_t crc = record_crc(out, total, prev_crc);
    store<std::uint32_t>(out, crc);
    return crc;
}

std::string segment_file_name(std::uint64_t sequence, std::uint64_t first_index) {
    return fmt::format("{:016x}-{:016x}.wal", sequence, first_index);
}

bool parse_segment_file_name(std::string_view name, std::uint64_t* sequence,
                             std::uint64_t* first_index) {
    if (name.size() != 37 || name[16] != '-' || name.substr(33) != ".wal") return false;
    auto hex = [](std::string_view s, std::uint64_t* out) {
        std::uint64_t v = 0;
        for (char c : s) {
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else
                return false;
            v = (v << 4) | static_cast<std::uint64_t>(d);
        }
        *out = v;
        return true;
    };
    return hex(name.substr(0, 16), sequence) && hex(name.substr(17, 16), first_index);
}

std::string encode_metadata(const MetadataFile& m) {
    KEEL_ASSERT(m.metadata.opaque.size() <= kMaxMetadataOpaqueBytes, "opaque over its limit");
    KEEL_ASSERT(m.releases.size() <= kMaxReleasedGroups, "release table over its limit");
    const std::uint64_t table_at = kMetadataFixedBytes + m.metadata.opaque.size();
    std::string out(table_at + kReleaseCountBytes + kReleaseEntryBytes * m.releases.size(), '\0');
    char* p = out.data();
    std::memcpy(p, kMetadataMagic, 8);
    store<std::uint32_t>(p + 8, kMetadataVersionReleases);
    store<std::uint32_t>(p + 12, static_cast<std::uint32_t>(out.size()));
    // p + 16: CRC, filled last; p + 20: reserved (0).
    char* b = p + 24;
    const std::uint64_t fields[8] = {
        m.metadata.term,          m.metadata.vote, m.metadata.commit,     m.metadata.snapshot_index,
        m.metadata.snapshot_term, m.log_floor,     m.fence_set ? 1u : 0u, m.fence};
    for (int i = 0; i < 8; ++i) store<std::uint64_t>(b + 8 * i, fields[i]);
    store<std::uint32_t>(b + 64, static_cast<std::uint32_t>(m.metadata.opaque.size()));
    if (!m.metadata.opaque.empty())
        std::memcpy(b + 68, m.metadata.opaque.data(), m.metadata.opaque.size());
    char* t = p + table_at;
    store<std::uint32_t>(t, static_cast<std::uint32_t>(m.releases.size()));
    t += kReleaseCountBytes;
    for (const auto& [group, below] : m.releases) {
        store<std::uint64_t>(t, group);
        store<std::uint64_t>(t + 8, below);
        t += kReleaseEntryBytes;
    }
    store<std::uint32_t>(p + 16, crc32c(p + 20, out.size() - 20));
    return out;
}

namespace {

// The version-2 release table at `at`, which must end the file exactly.
bool decode_releases(std::string_view bytes, std::uint64_t at,
                     std::map<std::uint64_t, std::uint64_t>& out) {
    if (at > bytes.size() || bytes.size() - at < kReleaseCountBytes) return false;
    const std::uint64_t count = load<std::uint32_t>(bytes.data() + at);
    if (count > kMaxReleasedGroups) return false;
    at += kReleaseCountBytes;
    if (bytes.size() - at != count * kReleaseEntryBytes) return false;
    for (std::uint64_t i = 0; i < count; ++i, at += kReleaseEntryBytes) {
        const std::uint64_t group = load<std::uint64_t>(bytes.data() + at);
        const std::uint64_t below = load<std::uint64_t>(bytes.data() + at + 8);
        // Ascending, unique groups; a release point is at most one past the
        // largest index.
        if (group > kMaxGroup || below > kMaxIndex + 1 || below == 0) return false;
        if (!out.empty() && group <= out.rbegin()->first) return false;
        out.emplace_hint(out.end(), group, below);
    }
    return true;
}

}  // namespace

std::optional<MetadataFile> decode_metadata(std::string_view bytes) {
    const char* p = bytes.data();
    if (bytes.size() < kMetadataFixedBytes) return std::nullopt;
    if (std::memcmp(p, kMetadataMagic, 8) != 0) return std::nullopt;
    const std::uint32_t version = load<std::uint32_t>(p + 8);
    if (version != kMetadataVersionPlain && version != kMetadataVersionReleases)
        return std::nullopt;
    if (load<std::uint32_t>(p + 12) != bytes.size()) return std::nullopt;
    if (load<std::uint32_t>(p + 16) != crc32c(p + 20, bytes.size() - 20)) return std::nullopt;
    const char* b = p + 24;
    MetadataFile m;
    m.metadata.term = load<std::uint64_t>(b + 0);
    m.metadata.vote = load<std::uint64_t>(b + 8);
    m.metadata.commit = load<std::uint64_t>(b + 16);
    m.metadata.snapshot_index = load<std::uint64_t>(b + 24);
    m.metadata.snapshot_term = load<std::uint64_t>(b + 32);
    m.log_floor = load<std::uint64_t>(b + 40);
    m.fence_set = load<std::uint64_t>(b + 48) != 0;
    m.fence = load<std::uint64_t>(b + 56);
    const std::uint64_t opaque_bytes = load<std::uint32_t>(b + 64);
    if (opaque_bytes > kMaxMetadataOpaqueBytes) return std::nullopt;
    const std::uint64_t table_at = kMetadataFixedBytes + opaque_bytes;
    if (version == kMetadataVersionPlain) {
        if (table_at != bytes.size()) return std::nullopt;
    } else if (!decode_releases(bytes, table_at, m.releases)) {
        return std::nullopt;
    }
    m.metadata.opaque.assign(b + 68, opaque_bytes);
    return m;
}

}  // namespace keel::wal::detail
