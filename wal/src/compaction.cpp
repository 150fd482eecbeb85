// Compaction of a log shared by many groups: compact_before (every group
// releases a prefix), release (one group does), and which groups pin the
// oldest segment.
//
// The log floor in `meta` is the one durable compaction point: records
// below it are not part of the log, and recovery deletes the segments
// wholly below it.  A release is recorded in `meta` too (the release
// table), in the same atomic write as the floor it allows, so a crash
// leaves either the old floor and releases or the new ones (docs/wal.md,
// "Crash windows").  Segments are deleted oldest first only: the log stays
// one contiguous run of indexes, which recovery checks for gaps.
#include <fmt/format.h>

#include "keel/assert.hpp"
#include "wal_impl.hpp"

namespace keel::wal {

namespace {

// What `group` has released in `m`: its table entry or the log floor.
std::uint64_t released_below(const detail::MetadataFile& m, std::uint64_t group) {
    auto it = m.releases.find(group);
    return std::max(m.log_floor, it == m.releases.end() ? 0 : it->second);
}

}  // namespace

bool Wal::Impl::segment_released_locked(const Segment& seg, const detail::MetadataFile& m) const {
    for (const auto& [group, last] : seg.group_last)
        if (released_below(m, group) <= last) return false;
    return true;
}

std::uint64_t Wal::Impl::released_floor_locked(const detail::MetadataFile& m) const {
    std::uint64_t floor = m.log_floor;
    // Never the active (last) segment, nor past the durable records: a
    // segment the writer has rolled from may hold records of the batch it
    // is writing, not yet in group_last.
    for (std::size_t i = 0; i + 1 < log_.segments.size(); ++i) {
        if (log_.segments[i + 1]->first_index > log_.last + 1) break;
        if (!segment_released_locked(*log_.segments[i], m)) break;
        floor = std::max(floor, log_.segments[i + 1]->first_index);
    }
    return floor;
}

void Wal::Impl::prune_releases_locked(detail::MetadataFile& m) const {
    for (auto it = m.releases.begin(); it != m.releases.end();) {
        bool has_records = false;
        for (const SegmentPtr& seg : log_.segments) {
            auto last = seg->group_last.find(it->first);
            if (last != seg->group_last.end() && last->second >= m.log_floor) {
                has_records = true;
                break;
            }
        }
        it = it->second <= m.log_floor || !has_records ? m.releases.erase(it) : std::next(it);
    }
}

Status Wal::Impl::commit_floor_locked(const detail::MetadataFile& m) {
    // The commit point: once this is durable, recovery deletes what the
    // floor leaves behind even if the deletions below never happen.
    if (Status s = write_meta_locked(m); !s.ok()) {
        if (s.code() != ErrorCode::no_space) enter_failed(s);
        return s;
    }
    std::vector<std::string> names;
    {
        std::lock_guard lock(state_mu_);
        names = log_.drop_segments_below(m.log_floor);
    }
    delete_in_background(std::move(names));
    return Status();
}

Status Wal::Impl::compact_before(std::uint64_t index) {
    if (failed()) return health_.failure();
    std::lock_guard meta_lock(meta_mu_);
    detail::MetadataFile m = meta_;
    {
        std::lock_guard lock(state_mu_);
        if (index <= log_.first_index()) return Status();  // already there
        if (index > log_.last + 1)
            return Status(
                ErrorCode::invalid_argument,
                fmt::format("compact_before({}) is past the last index {} + 1", index, log_.last));
        m.log_floor = index;
        // Releases of other groups may now free whole segments beyond it.
        m.log_floor = released_floor_locked(m);
        prune_releases_locked(m);
    }
    return commit_floor_locked(m);
}

Status Wal::Impl::release(std::span<const Release> releases, const Metadata* metadata) {
    if (metadata != nullptr && metadata->opaque.size() > kMaxMetadataOpaqueBytes)
        return Status(ErrorCode::too_large,
                      fmt::format("metadata opaque blob of {} bytes is over the {}-byte limit",
                                  metadata->opaque.size(), kMaxMetadataOpaqueBytes));
    for (const Release& r : releases)
        if (r.group > kMaxGroup)
            return Status(ErrorCode::invalid_argument,
                          fmt::format("release of group {}, over the limit of 2^62", r.group));
    if (failed()) return health_.failure();
    std::lock_guard meta_lock(meta_mu_);
    detail::MetadataFile m = meta_;
    {
        std::lock_guard lock(state_mu_);
        bool changed = false;
        if (metadata != nullptr && !(*metadata == m.metadata)) {
            m.metadata = *metadata;
            changed = true;
        }
        for (const Release& r : releases) {
            if (r.index > log_.last + 1)
                return Status(ErrorCode::invalid_argument,
                              fmt::format("release({}, {}) is past the last index {} + 1", r.group,
                                          r.index, log_.last));
            if (r.index <= released_below(m, r.group)) continue;  // released already
            bool below = false;  // the group has records below the index in some segment
            for (const SegmentPtr& seg : log_.segments) {
                if (seg->first_index >= r.index) break;
                below = below || seg->group_last.count(r.group) != 0;
            }
            if (!below) continue;  // nothing to release
            m.releases[r.group] = r.index;
            changed = true;
        }
        if (!changed) return Status();
        m.log_floor = released_floor_locked(m);
        prune_releases_locked(m);
        if (m.releases.size() > kMaxReleasedGroups)
            return Status(ErrorCode::too_large,
                          fmt::format("{} groups hold releases of records still on disk, the "
                                      "limit (kMaxReleasedGroups)",
                                      kMaxReleasedGroups));
    }
    return commit_floor_locked(m);
}

std::vector<SegmentPin> Wal::Impl::oldest_segment_pins() const {
    detail::MetadataFile m;
    {
        std::lock_guard meta_lock(meta_mu_);
        m = meta_;
    }
    std::vector<SegmentPin> pins;
    std::lock_guard lock(state_mu_);
    if (log_.segments.size() < 2) return pins;
    const Segment& oldest = *log_.segments.front();
    for (const auto& [group, last] : oldest.group_last) {
        const std::uint64_t released = released_below(m, group);
        if (released <= last) pins.push_back({group, oldest.first_index, last, released});
    }
    return pins;
}

}  // namespace keel::wal
