// published_log.hpp — the segments of the log and where each durable record
// lives: what readers see.  The writer publishes records here after their
// fdatasync, compaction and truncation remove them.
//
// Threads: every member of PublishedLog is under Wal::Impl::state_mu_
// (its methods REQUIRE it held).  A Segment's fields are described below.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "block_queue.hpp"
#include "format.hpp"
#include "keel/assert.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/record.hpp"

namespace keel::wal::detail {

// One segment file.  first_index, start_crc, flush_align_bytes and file
// never change; the writer alone advances end_offset/last_crc of the active
// segment and sets `direct`.  group_last is under Wal::Impl::state_mu_.
struct Segment {
    std::uint64_t sequence = 0;
    std::uint64_t first_index = 0;
    std::uint32_t start_crc = 0;
    std::uint32_t flush_align_bytes = 0;  // 0: layout version 1 (SegmentHeader)
    bool batch_headers = false;           // layout version 3: every flush starts with one
    bool groups = false;                  // layout version 4: records carry a group id
    std::uint64_t record_header_bytes = kRecordHeaderBytes;  // of its layout version
    std::string name;
    std::shared_ptr<File> file;    // buffered: reads, zeroing, and the buffered path's writes
    std::shared_ptr<File> direct;  // OpenMode::write_direct: the direct path's writes
    std::atomic<std::uint64_t> end_offset{kSegmentHeaderBytes};  // past the last record
    std::uint32_t last_crc = 0;                                  // chain value at end_offset
    // Every group with records in this segment, and the index of its last
    // one here (at least: a truncation leaves it as high as the cut).
    std::map<std::uint64_t, std::uint64_t> group_last;
};
using SegmentPtr = std::shared_ptr<Segment>;

// Where a durable record lives (its segment is found by index).
struct Entry {
    std::uint64_t term = 0;
    std::uint64_t offset = 0;
    std::uint32_t payload_bytes = 0;
    std::uint32_t crc = 0;
};
// One Entry per record, in blocks of 48 KiB (block_queue.hpp says why).
using EntryIndex = BlockQueue<Entry, 2048>;

// The durable log as published: segments oldest first (the last one is the
// active one), one Entry per record from phys_first to last, the newest
// records cached in memory, and the compaction floor.
struct PublishedLog {
    // The first index of the log: max(floor, phys_first), or last + 1 when empty.
    std::uint64_t first_index() const { return std::min(std::max(floor, phys_first), last + 1); }

    // The last segment whose first index is <= index.
    // REQUIRES: `index` is durable (some segment holds it).
    const SegmentPtr& segment_for(std::uint64_t index) const {
        auto it =
            std::upper_bound(segments.begin(), segments.end(), index,
                             [](std::uint64_t i, const auto& seg) { return i < seg->first_index; });
        KEEL_ASSERT(it != segments.begin(), "a durable index lies in some segment");
        return *(it - 1);
    }

    // The index of the first cached record (last + 1 when the cache is empty).
    std::uint64_t cache_first() const { return last + 1 - cache.size(); }

    void cache_push(Record r) {
        cache_bytes += r.payload.size() + sizeof(Record);
        cache.push_back(std::move(r));
    }
    // Drops the oldest cached records until the cache holds at most max_bytes.
    void trim_cache(std::uint64_t max_bytes) {
        while (!cache.empty() && cache_bytes > max_bytes) {
            cache_bytes -= cache.front().payload.size() + sizeof(Record);
            cache.pop_front();
        }
    }
    // Drops the cached records above `index` (a truncation).
    void uncache_after(std::uint64_t index) {
        while (!cache.empty() && cache.back().index > index) {
            cache_bytes -= cache.back().payload.size() + sizeof(Record);
            cache.pop_back();
        }
    }

    // Raises `floor` to `new_floor` and unlinks the segments wholly below it
    // (never the active one) with their entries; returns their file names.
    std::vector<std::string> drop_segments_below(std::uint64_t new_floor) {
        std::vector<std::string> names;
        floor = std::max(floor, new_floor);
        while (segments.size() > 1 && segments[1]->first_index <= floor) {
            const std::uint64_t drop = segments[1]->first_index - segments[0]->first_index;
            entries.erase_front(drop);
            phys_first += drop;
            names.push_back(segments.front()->name);
            segments.pop_front();
        }
        return names;
    }

    std::deque<SegmentPtr> segments;
    EntryIndex entries;  // entries[i] is index phys_first + i
    std::uint64_t phys_first = 1;
    std::uint64_t last = 0;    // last durable index
    std::uint64_t floor = 1;   // compaction point
    std::deque<Record> cache;  // the newest records, ending at last
    std::uint64_t cache_bytes = 0;
};

}  // namespace keel::wal::detail
