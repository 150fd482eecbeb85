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
        if (index >= last_) return Status();  // nothing durable above it
        if (index + 1 < first_index_locked())
            return Status(ErrorCode::invalid_argument,
                          fmt::format("truncate_after({}) would cut below the first index {} "
                                      "(compacted meanwhile)",
                                      index, first_index_locked()));
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
        while (segments_.size() > 1 && segments_.back()->first_index > index + 1) {
            dropped.push_back(segments_.back()->name);
            segments_.pop_back();
        }
        active_ = segments_.back();
        if (index + 1 == active_->first_index) {
            cut = detail::records_start(active_->flush_align_bytes);
            crc = active_->start_crc;
        } else {
            const detail::Entry& e = entries_[index - phys_first_];
            cut = e.offset + detail::record_bytes(e.payload_bytes, active_->record_header_bytes);
            crc = e.crc;
        }
        // Which groups had the removed records is not known without reading
        // them: the groups keep their claim, as high as the cut (which only
        // ever delays a deletion), unless no record of the segment is left.
        if (index + 1 == active_->first_index) {
            active_->group_last.clear();
        } else {
            for (auto& [group, last] : active_->group_last) last = std::min(last, index);
        }
        entries_.resize(index + 1 - phys_first_);
        last_ = index;
        while (!cache_.empty() && cache_.back().index > index) {
            cache_bytes_ -= cache_.back().payload.size() + sizeof(Record);
            cache_.pop_back();
        }
    }
    if (Status s = remove_files(dropped); !s.ok()) return s;
    // Everything after end_offset is already zero (preallocated, or zeroed
    // by recovery), so only the truncated records need zeroing.
    if (Status s = zero_range(*active_->file, cut, active_->end_offset.load()); !s.ok()) return s;
    active_->end_offset.store(cut);
    active_->last_crc = crc;
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
        for (const auto& seg : segments_) dropped.push_back(seg->name);
        segments_.clear();
        entries_.clear();
        phys_first_ = next_index;
        last_ = next_index - 1;
        floor_ = next_index;
        cache_.clear();
        cache_bytes_ = 0;
    }
    active_.reset();
    if (Status s = remove_files(dropped); !s.ok()) return s;
    // Waits for space if the disk is full (take_prepared_file).
    if (Status s = install_segment(next_index, 0); !s.ok()) return s;
    return write_meta_retrying([](detail::MetadataFile& m) { m.fence_set = false; });
}

}  // namespace keel::wal
