// Recovery: Wal::open() turns whatever a crash left into a consistent log.
//
// Phase 1 (read only): read `meta`, scan every segment (reader.cpp), decide.
//   Corruption, a gap or a duplicate refuses the open here, before anything
//   is modified, unless Options::repair.
// Phase 2 (modify): delete temp files, zero a torn tail (or the repaired
//   suffix), finish an interrupted truncation/reset (the fence), delete
//   segments after the cut or wholly below the compaction floor, clear the
//   fence; create the first segment of a new or emptied log.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "format.hpp"
#include "keel/assert.hpp"
#include "keel/wal/reader.hpp"
#include "metadata_file.hpp"
#include "wal_impl.hpp"

namespace keel::wal {

Status Wal::Impl::recover() {
    if (Status s = fs_->create_dir(dir_); !s.ok()) return s;
    // Not through FileSystem: the lock is process state, not log data.
    const std::string lock_path = dir_ + "/" + detail::k_lock_name;
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0)
        return Status(ErrorCode::io_error,
                      fmt::format("cannot open {}: {}", lock_path, std::strerror(errno)));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
        return Status(ErrorCode::busy,
                      fmt::format("{} is already open (locked by {})", dir_, lock_path));
    auto meta = detail::read_metadata_file(*fs_, dir_);
    if (!meta.ok()) return meta.status();
    meta_.metadata = meta->metadata;
    meta_.log_floor = meta->log_floor;
    meta_.fence_set = meta->fence.has_value();
    meta_.fence = meta->fence.value_or(0);

    ScanOptions scan_options;
    scan_options.max_record_bytes = options_.max_record_bytes;
    scan_options.ignore_after_index = meta->fence.value_or(UINT64_MAX);
    scan_options.fs = fs_;
    std::deque<detail::Entry> entries;
    auto scan = scan_wal(dir_, scan_options, [&](const ScannedRecord& r) {
        entries.push_back(detail::Entry{r.term, r.offset, r.payload_bytes, r.crc});
    });
    const bool fresh = !scan.ok() && scan.status().code() == ErrorCode::not_found;
    if (!scan.ok() && !fresh) return scan.status();
    ScanResult result = fresh ? ScanResult{} : std::move(*scan);

    // ---- phase 1: decide ----
    std::optional<std::size_t> cut;  // position in result.segments of the last segment kept
    bool cut_removes_segment = false;
    if (!result.issues.empty()) {
        const ScanIssue& issue = result.issues.front();
        if (!result.torn_only() && !options_.repair)
            return Status(ErrorCode::corruption,
                          fmt::format("{} (in {}; open refused, nothing was modified; "
                                      "Options::repair would truncate the log there)",
                                      issue.message, dir_));
        for (std::size_t i = 0; i < result.segments.size(); ++i)
            if (result.segments[i].file_name == issue.file_name) cut = i;
        KEEL_ASSERT(cut.has_value(), "an issue names a scanned segment");
        cut_removes_segment = issue.offset == 0;
        if (result.torn_only()) {
            report_.torn_tail = true;
            report_.torn_file = issue.file_name;
            report_.torn_offset = issue.offset;
        } else {
            report_.repaired = true;
            report_.repair_detail = issue.message;
        }
    }
    std::vector<std::string> remove;
    std::vector<SegmentInfo> keep;
    for (std::size_t i = 0; i < result.segments.size(); ++i) {
        const SegmentInfo& info = result.segments[i];
        next_sequence_ = std::max(next_sequence_, info.sequence + 1);
        const bool after_cut = cut && (i > *cut || (i == *cut && cut_removes_segment));
        if (info.ignored || after_cut || !info.header_ok) {
            remove.push_back(info.file_name);
        } else {
            keep.push_back(info);
        }
    }
    std::uint64_t first = keep.empty() ? 0 : keep.front().first_index;
    std::size_t entries_begin = 0;
    while (keep.size() > 1 && keep[1].first_index <= meta_.log_floor) {
        remove.push_back(keep.front().file_name);
        entries_begin += keep[1].first_index - keep[0].first_index;
        keep.erase(keep.begin());
        first = keep.front().first_index;
    }
    const std::uint64_t last = keep.empty() ? 0 : keep.back().last_index;

    // ---- phase 2: modify ----
    for (const char* tmp : {detail::k_prealloc_name, detail::k_metadata_tmp_name}) {
        auto exists = fs_->exists(dir_ + "/" + tmp);
        if (!exists.ok()) return exists.status();
        if (*exists) {
            if (Status s = fs_->remove(dir_ + "/" + tmp); !s.ok()) return s;
        }
    }
    for (const SegmentInfo& info : keep) {
        auto file = fs_->open(dir_ + "/" + info.file_name, OpenMode::read_write);
        if (!file.ok()) return file.status();
        auto seg = std::make_shared<Segment>();
        seg->sequence = info.sequence;
        seg->first_index = info.first_index;
        seg->start_crc = info.start_crc;
        seg->name = info.file_name;
        seg->file = std::move(*file);
        seg->end_offset.store(info.end_offset);
        seg->last_crc = info.last_crc;
        segments_.push_back(std::move(seg));
    }
    if (!segments_.empty() && (cut || meta_.fence_set)) {
        // Zero whatever follows the last valid record: the torn write, the
        // repaired suffix or the rest of an interrupted truncation.
        std::uint64_t zeroed = 0;
        if (Status s =
                zero_tail(*segments_.back()->file, segments_.back()->end_offset.load(), &zeroed);
            !s.ok())
            return s;
        if (report_.torn_tail) report_.torn_bytes = zeroed;
    }
    if (Status s = remove_files(remove); !s.ok()) return s;
    report_.removed_segments = remove.size();
    if (meta_.fence_set) {
        meta_.fence_set = false;
        if (Status s = write_meta_locked(meta_); !s.ok()) return s;
        report_.redid_truncation = true;
    }

    entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(entries_begin));
    entries.resize(keep.empty() ? 0 : last + 1 - first);
    entries_ = std::move(entries);
    floor_ = meta_.log_floor;
    if (fresh) {
        report_.created = true;
        meta_.log_floor = std::max<std::uint64_t>(options_.initial_index, 1);
        if (Status s = write_meta_locked(meta_); !s.ok()) return s;
        floor_ = meta_.log_floor;
    }
    if (segments_.empty() || floor_ > last + 1) {
        // A new log, or one whose records all lie below the floor (a reset
        // that crashed before creating its segment): start empty at the floor.
        std::vector<std::string> old;
        for (const auto& seg : segments_) old.push_back(seg->name);
        if (Status s = remove_files(old); !s.ok()) return s;
        report_.removed_segments += old.size();
        segments_.clear();
        entries_.clear();
        const std::uint64_t start = std::max<std::uint64_t>(floor_, 1);
        if (Status s = install_segment(start, 0); !s.ok()) return s;
        phys_first_ = start;
        last_ = start - 1;
    } else {
        active_ = segments_.back();
        phys_first_ = segments_.front()->first_index;
        last_ = last;
        KEEL_ASSERT(entries_.size() == last_ + 1 - phys_first_, "one entry per record");
    }
    if (floor_ < phys_first_) floor_ = phys_first_;
    submit_next_ = last_ + 1;
    report_.segments = segments_.size();
    report_.records = entries_.size();
    return Status();
}

Status Wal::Impl::write_meta_locked(const detail::MetadataFile& m) {
    Status s = detail::write_metadata_file(*fs_, dir_, m);
    if (s.ok()) meta_ = m;
    return s;
}

}  // namespace keel::wal
