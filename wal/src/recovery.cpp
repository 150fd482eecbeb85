// Recovery: Wal::open() turns whatever a crash left into a consistent log.
//
// Phase 1 (read only): read `meta`, scan every segment (reader.cpp), decide.
//   Corruption, a gap or a duplicate refuses the open here, before anything
//   is modified, unless Options::repair.
// Phase 2 (modify): delete temp files, fdatasync every kept segment and the
//   metadata file and fsync the directory (what was read may have been in
//   the page cache only), zero a torn tail (or the repaired suffix), finish
//   an interrupted truncation/reset (the fence), delete segments after the
//   cut or wholly below the compaction floor, clear the fence; create the
//   first segment of a new or emptied log.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include <fmt/format.h>

#include "format.hpp"
#include "keel/assert.hpp"
#include "keel/wal/reader.hpp"
#include "metadata_file.hpp"
#include "wal_impl.hpp"

namespace keel::wal {

namespace detail {

// What phase 1 decided; phase 2 carries it out.
struct RecoveryPlan {
    bool fresh = false;               // no WAL here yet
    std::vector<SegmentInfo> keep;    // in order
    std::vector<std::string> remove;  // segment files to delete
    EntryIndex entries;               // one per record of `keep`, in order
    // Per segment file: its groups and the last index of each (Segment::group_last).
    std::map<std::string, std::map<std::uint64_t, std::uint64_t>> group_last;
    std::uint64_t last = 0;  // last index kept (if keep is not empty)
    bool zero_tail = false;  // zero what follows the last valid record
    std::uint64_t next_sequence = 1;
};

}  // namespace detail

namespace {

// Phase 1, pure: which segments stay, where the log is cut, what the report says.
Status plan_recovery(const std::string& dir, const Options& options, std::uint64_t log_floor,
                     bool fence_set, ScanResult& result, detail::RecoveryPlan& plan,
                     OpenReport& report) {
    std::optional<std::size_t> cut;  // position in result.segments of the cut
    bool cut_removes_segment = false;
    if (!result.issues.empty()) {
        const ScanIssue& issue = result.issues.front();
        if (!result.torn_only() && !options.repair)
            return Status(ErrorCode::corruption,
                          fmt::format("{} (in {}; open refused, nothing was modified; "
                                      "Options::repair would truncate the log there)",
                                      issue.message, dir));
        for (std::size_t i = 0; i < result.segments.size(); ++i)
            if (result.segments[i].file_name == issue.file_name) cut = i;
        KEEL_ASSERT(cut.has_value(), "an issue names a scanned segment");
        cut_removes_segment = issue.offset == 0;
        if (result.torn_only()) {
            report.torn_tail = true;
            report.torn_file = issue.file_name;
            report.torn_offset = issue.offset;
        } else {
            report.repaired = true;
            report.repair_detail = issue.message;
        }
    }
    for (std::size_t i = 0; i < result.segments.size(); ++i) {
        const SegmentInfo& info = result.segments[i];
        plan.next_sequence = std::max(plan.next_sequence, info.sequence + 1);
        const bool after_cut = cut && (i > *cut || (i == *cut && cut_removes_segment));
        if (info.ignored || after_cut || !info.header_ok) {
            plan.remove.push_back(info.file_name);
        } else {
            plan.keep.push_back(info);
        }
    }
    // Segments holding only records below the floor: an unfinished compaction.
    std::size_t entries_begin = 0;
    while (plan.keep.size() > 1 && plan.keep[1].first_index <= log_floor) {
        plan.remove.push_back(plan.keep.front().file_name);
        entries_begin += plan.keep[1].first_index - plan.keep[0].first_index;
        plan.keep.erase(plan.keep.begin());
    }
    plan.entries.erase_front(entries_begin);
    if (!plan.keep.empty()) {
        plan.last = plan.keep.back().last_index;
        plan.entries.resize(plan.last + 1 - plan.keep.front().first_index);
    } else {
        plan.entries.clear();
    }
    plan.zero_tail = cut.has_value() || fence_set;
    return Status();
}

}  // namespace

Status Wal::Impl::lock_directory() {
    // Not through FileSystem: the lock is process state, not log data.
    const std::string lock_path = dir_ + "/" + detail::kLockName;
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0)
        return Status(ErrorCode::io_error,
                      fmt::format("cannot open {}: {}", lock_path, std::strerror(errno)));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
        return Status(ErrorCode::busy,
                      fmt::format("{} is already open (locked by {})", dir_, lock_path));
    return Status();
}

Status Wal::Impl::recover() {
    if (Status s = fs_->create_dir(dir_); !s.ok()) return s;
    if (Status s = lock_directory(); !s.ok()) return s;
    if (Status s = choose_write_path(); !s.ok()) return s;
    auto meta = detail::read_metadata_file(*fs_, dir_);
    if (!meta.ok()) return meta.status();
    meta_.metadata = meta->metadata;
    meta_.log_floor = meta->log_floor;
    meta_.fence_set = meta->fence.has_value();
    meta_.fence = meta->fence.value_or(0);
    meta_.releases = meta->releases;

    detail::RecoveryPlan plan;
    ScanOptions scan_options;
    // Not options_.max_record_bytes: a log written under a larger limit must
    // not have its big records mistaken for damage after the limit shrinks.
    scan_options.max_record_bytes = kFormatMaxPayloadBytes;
    scan_options.ignore_after_index = meta->fence.value_or(UINT64_MAX);
    scan_options.fs = fs_;
    const SegmentInfo* segment = nullptr;  // of the previous record
    std::map<std::uint64_t, std::uint64_t>* groups = nullptr;
    auto scan = scan_wal(dir_, scan_options, [&](const ScannedRecord& r) {
        plan.entries.push_back(detail::Entry{r.term, r.offset, r.payload_bytes, r.crc});
        if (r.segment != segment) {
            segment = r.segment;
            groups = &plan.group_last[r.segment->file_name];
        }
        (*groups)[r.group] = r.index;
    });
    plan.fresh = !scan.ok() && scan.status().code() == ErrorCode::not_found;
    if (!scan.ok() && !plan.fresh) return scan.status();
    ScanResult result = plan.fresh ? ScanResult{} : std::move(*scan);
    if (Status s =
            plan_recovery(dir_, options_, meta_.log_floor, meta_.fence_set, result, plan, report_);
        !s.ok())
        return s;
    return apply_recovery(plan);
}

// Phase 2: from here on the directory is modified.
Status Wal::Impl::apply_recovery(detail::RecoveryPlan& plan) {
    writer_.next_sequence = plan.next_sequence;
    std::vector<std::string> temps;
    for (const char* tmp :
         {detail::kPreallocName, detail::kMetadataTmpName, detail::kDeletingName}) {
        auto exists = fs_->exists(dir_ + "/" + tmp);
        if (!exists.ok()) return exists.status();
        if (*exists) temps.emplace_back(tmp);
    }
    if (Status s = remove_files(temps); !s.ok()) return s;  // fsyncs the directory
    for (const SegmentInfo& info : plan.keep) {
        auto file = fs_->open(dir_ + "/" + info.file_name, OpenMode::read_write);
        if (!file.ok()) return file.status();
        auto seg = std::make_shared<Segment>();
        seg->sequence = info.sequence;
        seg->first_index = info.first_index;
        seg->start_crc = info.start_crc;
        seg->flush_align_bytes = info.flush_align_bytes;
        seg->batch_headers = detail::has_batch_headers(info.version, info.flush_align_bytes);
        seg->groups = info.version == detail::kSegmentVersionGroups;
        seg->record_header_bytes = detail::record_header_bytes(info.version);
        seg->group_last = std::move(plan.group_last[info.file_name]);
        seg->name = info.file_name;
        seg->file = std::move(*file);
        seg->end_offset.store(info.end_offset);
        seg->last_crc = info.last_crc;
        log_.segments.push_back(std::move(seg));
    }
    // What recovery read may still be only in the page cache (a process
    // killed before its fdatasync leaves its writes there, and a later
    // power loss drops them): make it durable before any record counts.
    if (Status s = sync_recovered(); !s.ok()) return s;
    if (!log_.segments.empty() && plan.zero_tail) {
        // Zero whatever follows the last valid record: the torn write, the
        // repaired suffix or the rest of an interrupted truncation.
        std::uint64_t zeroed = 0;
        const Segment& last = *log_.segments.back();
        if (Status s = zero_tail(*last.file, last.end_offset.load(), &zeroed); !s.ok()) return s;
        if (report_.torn_tail) report_.torn_bytes = zeroed;
    }
    if (Status s = remove_files(plan.remove); !s.ok()) return s;
    report_.removed_segments = plan.remove.size();
    if (meta_.fence_set) {
        detail::MetadataFile m = meta_;
        m.fence_set = false;
        if (Status s = write_meta_locked(m); !s.ok()) return s;
        report_.redid_truncation = true;
    }
    log_.entries = std::move(plan.entries);
    if (plan.fresh) {
        report_.created = true;
        detail::MetadataFile m = meta_;
        m.log_floor = std::max<std::uint64_t>(options_.initial_index, 1);
        if (Status s = write_meta_locked(m); !s.ok()) return s;
    }
    log_.floor = meta_.log_floor;
    if (log_.segments.empty() || log_.floor > plan.last + 1) {
        // A new log, or one whose records all lie below the floor (a reset
        // that crashed before creating its segment): start empty at the floor.
        std::vector<std::string> old;
        for (const auto& seg : log_.segments) old.push_back(seg->name);
        if (Status s = remove_files(old); !s.ok()) return s;
        report_.removed_segments += old.size();
        log_.segments.clear();
        log_.entries.clear();
        const std::uint64_t start = std::max<std::uint64_t>(log_.floor, 1);
        if (Status s = install_segment(start, 0); !s.ok()) return s;
        log_.phys_first = start;
        log_.last = start - 1;
    } else {
        writer_.active = log_.segments.back();
        log_.phys_first = log_.segments.front()->first_index;
        log_.last = plan.last;
        KEEL_ASSERT(log_.entries.size() == log_.last + 1 - log_.phys_first, "one entry per record");
        // The direct path continues a segment of its own layout; one the
        // buffered path wrote is closed and the log goes on in a new one.
        if (Status s = ready_active_segment(log_.last + 1); !s.ok()) return s;
    }
    log_.floor = std::max(log_.floor, log_.phys_first);
    queue_.submit_next = log_.last + 1;
    report_.segments = log_.segments.size();
    report_.records = log_.entries.size();
    return Status();
}

Status Wal::Impl::sync_recovered() {
    for (const auto& seg : log_.segments) {
        if (Status s = seg->file->datasync(); !s.ok()) return s;
    }
    const std::string meta_path = dir_ + "/" + kMetadataFileName;
    auto exists = fs_->exists(meta_path);
    if (!exists.ok()) return exists.status();
    if (*exists) {
        auto meta = fs_->open(meta_path, OpenMode::read_only);
        if (!meta.ok()) return meta.status();
        if (Status s = (*meta)->datasync(); !s.ok()) return s;
    }
    return fs_->sync_dir(dir_);
}

Status Wal::Impl::write_meta_locked(const detail::MetadataFile& m) {
    Status s = detail::write_metadata_file(*fs_, dir_, m);
    if (s.ok()) meta_ = m;
    return s;
}

}  // namespace keel::wal
