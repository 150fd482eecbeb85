// Suffix truncation and reset, executed by the flusher in queue order.
//
// Both are made atomic by a fence in the meta file (docs/wal.md, "Crash
// windows"): once the meta file says "records above k are void", recovery
// ignores them and finishes the physical work; until then the old log is
// intact.  After the physical work the fence is cleared, before any later
// append runs (the flusher executes them after this returns).  A metadata
// write or segment that finds the disk full is retried until space comes
// back (no_space() meanwhile): each step is safe to repeat.
#include <fmt/format.h>

#include "keel/assert.hpp"
#include "wal_impl.hpp"

namespace keel::wal {

Status Wal::Impl::do_truncate(std::uint64_t index) {
    {
        std::lock_guard lock(state_mu_);
        if (index >= log_.last) return Status();  // nothing durable above it
        if (index + 1 < log_.first_index())
            return Status(ErrorCode::invalid_argument,
                          fmt::format("truncate_after({}) would cut below the first index {} "
                                      "(compacted meanwhile)",
                                      index, log_.first_index()));
    }
    // The commit point.  Out of space: nothing has changed yet; wait and
    // write it again (write_meta_retrying).
    if (Status s = write_meta_retrying([index](detail::MetadataFile& m) {
            m.fence_set = true;
            m.fence = index;
        });
        !s.ok())
        return s;
    std::vector<std::string> dropped;
    std::uint64_t cut = 0;
    std::uint32_t crc = 0;
    {
        std::lock_guard lock(state_mu_);
        while (log_.segments.size() > 1 && log_.segments.back()->first_index > index + 1) {
            dropped.push_back(log_.segments.back()->name);
            log_.segments.pop_back();
        }
        writer_.active = log_.segments.back();
        if (index + 1 == writer_.active->first_index) {
            cut = detail::records_start(writer_.active->flush_align_bytes);
            crc = writer_.active->start_crc;
        } else {
            const detail::Entry& e = log_.entries[index - log_.phys_first];
            cut = e.offset +
                  detail::record_bytes(e.payload_bytes, writer_.active->record_header_bytes);
            crc = e.crc;
        }
        // Which groups had the removed records is not known without reading
        // them: the groups keep their claim, as high as the cut (which only
        // ever delays a deletion), unless no record of the segment is left.
        if (index + 1 == writer_.active->first_index) {
            writer_.active->group_last.clear();
        } else {
            for (auto& [group, last] : writer_.active->group_last) last = std::min(last, index);
        }
        log_.entries.resize(index + 1 - log_.phys_first);
        log_.last = index;
        log_.uncache_after(index);
    }
    if (Status s = remove_files(dropped); !s.ok()) return s;
    // Everything after end_offset is already zero (preallocated, or zeroed
    // by recovery), so only the truncated records need zeroing.
    if (Status s = zero_range(*writer_.active->file, cut, writer_.active->end_offset.load());
        !s.ok())
        return s;
    writer_.active->end_offset.store(cut);
    writer_.active->last_crc = crc;
    // Back in an older segment: the direct path may need its writer, or a
    // new segment if that one is of the buffered layout.  Still under the
    // fence, which voids nothing here (the new segment starts at index + 1).
    if (Status s = ready_active_segment(index + 1); !s.ok()) return s;
    // Out of space here: the truncation is durable (the fence), and no later
    // append may be written until the fence is cleared; wait and retry.
    return write_meta_retrying([](detail::MetadataFile& m) { m.fence_set = false; });
}

Status Wal::Impl::do_reset(std::uint64_t next_index) {
    if (Status s = write_meta_retrying([next_index](detail::MetadataFile& m) {
            m.log_floor = next_index;
            m.fence_set = true;
            m.fence = next_index - 1;
            m.releases.clear();  // every record goes
        });
        !s.ok())
        return s;
    std::vector<std::string> dropped;
    {
        std::lock_guard lock(state_mu_);
        for (const auto& seg : log_.segments) dropped.push_back(seg->name);
        log_.segments.clear();
        log_.entries.clear();
        log_.phys_first = next_index;
        log_.last = next_index - 1;
        log_.floor = next_index;
        log_.cache.clear();
        log_.cache_bytes = 0;
    }
    writer_.active.reset();
    if (Status s = remove_files(dropped); !s.ok()) return s;
    // Waits for space if the disk is full (take_prepared_file).
    if (Status s = install_segment(next_index, 0); !s.ok()) return s;
    return write_meta_retrying([](detail::MetadataFile& m) { m.fence_set = false; });
}

}  // namespace keel::wal
