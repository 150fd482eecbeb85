// Rewrites a WAL directory the way keel wrote it before records carried a
// group id: every layout-version-4 segment becomes version 1 (packed) or 3
// (batched), record headers of 32 bytes, the CRC chain recomputed across
// the files.  The tests of older layouts start from there.  Needs the WAL's
// private headers (keel_wal_private_inc).
#pragma once

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "format.hpp"
#include "keel/wal/reader.hpp"

namespace keel::wal::test {

inline std::string read_file_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline void write_file_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// REQUIRES: every record is of group 0 (an older layout has no room for another).
inline void to_layout_before_groups(const std::string& dir) {
    struct Rec {
        std::uint64_t offset, index, term;
        std::uint16_t type;
        std::string payload;
    };
    std::map<std::string, std::vector<Rec>> by_file;
    auto scan = scan_wal(dir, ScanOptions{}, [&](const ScannedRecord& r) {
        REQUIRE(r.group == 0);
        by_file[r.segment->file_name].push_back(
            {r.offset, r.index, r.term, r.type, std::string(r.payload)});
    });
    REQUIRE(scan.ok());
    REQUIRE(scan->clean());
    std::uint32_t chain = scan->segments.empty() ? 0 : scan->segments.front().start_crc;
    for (const SegmentInfo& s : scan->segments) {
        REQUIRE(s.version == detail::kSegmentVersionGroups);
        const std::string path = dir + "/" + s.file_name;
        const std::string old = read_file_bytes(path);
        std::string bytes(old.size(), '\0');
        const std::uint32_t align = s.flush_align_bytes;
        detail::SegmentHeader h{s.sequence, s.first_index, chain, align, align != 0, false};
        detail::encode_segment_header(h, bytes.data());
        std::uint64_t at = detail::records_start(align);
        // Batched: each old batch becomes a batch of the same block.
        std::uint64_t batch_at = 0, batch_first = 0;
        std::uint32_t batch_prev = 0;
        auto close_batch = [&] {
            if (batch_first == 0) return;
            detail::encode_batch_header(
                {batch_first, at - batch_at - detail::kBatchHeaderBytes, batch_prev},
                bytes.data() + batch_at);
            batch_first = 0;
        };
        for (const Rec& r : by_file[s.file_name]) {
            if (align != 0 && r.offset % align == detail::kBatchHeaderBytes &&
                detail::check_batch_header_at(old.data(), old.size(),
                                              r.offset - detail::kBatchHeaderBytes)) {
                close_batch();
                batch_at = r.offset - detail::kBatchHeaderBytes;
                batch_first = r.index;
                batch_prev = chain;
                at = batch_at + detail::kBatchHeaderBytes;
            }
            chain = detail::encode_record({r.index, r.term, r.type, 0}, r.payload, chain,
                                          detail::kRecordHeaderBytes, bytes.data() + at);
            at += detail::record_bytes(r.payload.size());
        }
        close_batch();
        write_file_bytes(path, bytes);
    }
}

}  // namespace keel::wal::test
