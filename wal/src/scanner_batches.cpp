// The segment scanner (scanner.hpp) for the batched layouts (versions 3
// and 4): every flush is a batch behind a batch header at a block boundary.
#include <algorithm>

#include <fmt/format.h>

#include "scanner.hpp"

namespace keel::wal::detail {

void Scanner::scan_batches(SegmentInfo& info, const char* buf, std::uint64_t size) {
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
            auto rec = off < batch_end ? find_next_record(buf, std::min(size, batch_end), off + 8,
                                                          shape_, &saw_data)
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

bool Scanner::batch_continues(SegmentInfo& info, const char* buf, std::uint64_t size,
                              std::uint64_t off, const BatchHeader& h, Cursor& at) {
    if (at.resynced || (h.first_index == at.expected && h.prev_crc == at.chain)) return true;
    if (h.first_index != at.expected) {
        const bool gap = h.first_index > at.expected;
        add_issue(
            gap ? IssueKind::gap : IssueKind::duplicate, info, off, h.first_index, 0,
            fmt::format("{}: batch at {} offset {} starts at index {} but index {} "
                        "was expected",
                        gap ? "gap" : "duplicate", info.file_name, off, h.first_index, at.expected),
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

std::optional<std::pair<std::uint64_t, BatchHeader>> Scanner::judge_batch_damage(
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

}  // namespace keel::wal::detail
