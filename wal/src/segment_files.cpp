// Segment files: preparing the next one (zero-filled, ahead of time, on the
// background thread), installing it, zeroing tails, deleting files.
//
// Out of space: preparing a segment writes only a temporary file that
// nothing refers to, so ENOSPC there is a state, not a failure: the file
// is deleted, no_space() turns true, and the background thread tries again
// every kNoSpaceRetryMs; a roll that needs the segment meanwhile waits.
//
// Crash windows of a roll (install_segment):
//  1. next-segment.tmp exists (zero-filled or not): ignored and deleted by
//     recovery, it holds no records.
//  2. the header is written and fdatasynced, the file renamed, the directory
//     fsynced: only then does the flusher write records into it.  A crash
//     between rename and directory fsync leaves either name; both are fine.
#include <algorithm>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "aligned_buffer.hpp"
#include "keel/assert.hpp"
#include "keel/wal/file_removal.hpp"
#include "keel/wal/write_back_pacer.hpp"
#include "wal_impl.hpp"

namespace keel::wal {

namespace {
const char* zero_chunk() {
    static const std::vector<char> zeros(detail::kZeroFillChunkBytes, 0);
    return zeros.data();
}
// The same for O_DIRECT, whose buffers must be aligned (kDirectIoAlignBytes).
const char* aligned_zero_chunk() {
    // Written once (thread-safe static initialisation), only read after.
    static detail::AlignedBuffer zeros = [] {
        detail::AlignedBuffer b;
        b.reserve(detail::kZeroFillChunkBytes, 0);
        std::memset(b.data(), 0, detail::kZeroFillChunkBytes);
        return b;
    }();
    return zeros.data();
}
}  // namespace

Result<std::shared_ptr<File>> Wal::Impl::prepare_segment_file() {
    const std::string path = dir_ + "/" + detail::kPreallocName;
    auto exists = fs_->exists(path);
    if (!exists.ok()) return exists.status();
    if (*exists) {
        if (Status s = fs_->remove(path); !s.ok()) return s;
    }
    auto file = fs_->open(path, OpenMode::create_new);
    if (!file.ok()) return file.status();
    Status s = fill_segment_file(**file);
    if (!s.ok()) {
        // Nothing refers to the file yet: give its space back (recovery
        // deletes it too, should this fail).
        file->reset();
        (void)fs_->remove(path);
        return s;
    }
    return std::shared_ptr<File>(std::move(*file));
}

Status Wal::Impl::fill_segment_file(File& file) {
    if (options_.preallocate) {
        // Reserve the whole segment first, so that a full disk shows at
        // once instead of after writing most of it (and a retry costs no
        // writing).  Where the file system cannot, the zeros below find out.
        Status reserved = file.allocate(0, options_.segment_bytes);
        if (reserved.code() == ErrorCode::no_space) return reserved;
        // Real zeros, not only fallocate: on ext4 fallocated extents are
        // "unwritten", so every first write into them also commits metadata.
        std::uint64_t buffered_from = 0;
        if (write_path_ == WritePath::direct) {
            auto filled = zero_fill_direct();
            if (!filled.ok()) return filled.status();
            buffered_from = *filled;
        }
        if (buffered_from < options_.segment_bytes) {
            if (Status s = zero_fill_buffered(file, buffered_from); !s.ok()) return s;
            // A failed fdatasync is never taken for "no space, retry" (docs/wal.md).
            if (Status s = file.datasync(); !s.ok())
                return Status(ErrorCode::io_error, s.message());
        }
    }
    return fs_->sync_dir(dir_);
}

// The direct path never reads a segment through the page cache, so its
// zeros need not pass through it either: written with O_DIRECT they cost no
// copy and no dirty pages (docs/decisions/0022-cluster3-cpu-per-write.md).
// Each write returns once the device has the chunk, so one chunk at a time
// is in flight, as the buffered fill's pacing arranges.  Returns how far
// it filled (the segment's whole blocks; 0 where the descriptor could not
// be opened).
Result<std::uint64_t> Wal::Impl::zero_fill_direct() {
    const std::string path = dir_ + "/" + detail::kPreallocName;
    // Any refusal (ErrorCode::unsupported, or a FileSystem that does not
    // know this mode) leaves the whole fill to the buffered way, which
    // needs nothing from this descriptor.
    auto direct = fs_->open(path, OpenMode::fill_direct);
    if (!direct.ok()) return std::uint64_t{0};
    const std::uint64_t end = options_.segment_bytes & ~(kDirectIoAlignBytes - 1);
    constexpr std::uint64_t chunk = detail::kZeroFillChunkBytes;
    for (std::uint64_t at = 0; at < end; at += chunk) {
        struct iovec iov {
            const_cast<char*>(aligned_zero_chunk()), std::min(chunk, end - at)
        };
        if (Status s = (*direct)->pwritev(&iov, 1, at); !s.ok()) return s;
    }
    if (Status s = (*direct)->datasync(); !s.ok()) return Status(ErrorCode::io_error, s.message());
    return end;
}

// Paced in kZeroFillChunkBytes (keel/wal/write_back_pacer.hpp): at most two
// chunks in flight.  Pacing is a hint: where the file system refuses it,
// the zeros go out unpaced, and the caller's fdatasync still makes them
// durable.
Status Wal::Impl::zero_fill_buffered(File& file, std::uint64_t from) {
    constexpr std::uint64_t chunk = detail::kZeroFillChunkBytes;
    WriteBackPacer pacer(chunk, from);
    for (std::uint64_t at = from; at < options_.segment_bytes; at += chunk) {
        struct iovec iov {
            const_cast<char*>(zero_chunk()), std::min(chunk, options_.segment_bytes - at)
        };
        if (Status s = file.pwritev(&iov, 1, at); !s.ok()) return s;
        pacer.wrote(file, at + iov.iov_len);
    }
    pacer.finish(file, options_.segment_bytes);
    return Status();
}

// The active segment is half full: zero-fill the next one in the background
// now, so the roll finds it ready.  Not earlier: a fresh or reopened WAL
// would compete with its own first writes for the disk to prepare a segment
// it may need much later or never.  Flusher only.
void Wal::Impl::request_next_segment() {
    if (writer_.next_requested || !options_.preallocate || !background_.joinable()) return;
    writer_.next_requested = true;
    std::lock_guard lock(bg_.mu);
    bg_.want_prepared = true;
    bg_.cv.notify_all();
}

Result<std::shared_ptr<File>> Wal::Impl::take_prepared_file() {
    if (!started_) return prepare_segment_file();  // recovery: no waiting for space
    if (!options_.preallocate) {
        for (;;) {
            auto file = prepare_segment_file();
            if (file.ok() || file.status().code() != ErrorCode::no_space) {
                set_no_space(NoSpaceSource::flusher, false);
                return file;
            }
            set_no_space(NoSpaceSource::flusher, true);
            if (!wait_for_space_retry()) return closing_while_waiting();
        }
    }
    std::unique_lock lock(bg_.mu);
    bg_.want_prepared = true;
    bg_.cv.notify_all();
    // Without space the background thread retries (background_main); the
    // flusher waits for it, holding up this batch and the ones queued after.
    bg_.cv.wait(lock, [&] {
        return bg_.prepared != nullptr || !bg_.prepared_error.ok() || bg_.closing.load();
    });
    if (bg_.prepared == nullptr && bg_.prepared_error.ok()) return closing_while_waiting();
    if (!bg_.prepared_error.ok()) return bg_.prepared_error;
    std::shared_ptr<File> file = std::move(bg_.prepared);
    bg_.prepared.reset();
    // Not the next one yet: it would reuse the temp name we are about to rename.
    bg_.want_prepared = false;
    return file;
}

Status Wal::Impl::closing_while_waiting() const {
    return Status(ErrorCode::aborted,
                  fmt::format("WAL {} closed while waiting for disk space", dir_));
}

bool Wal::Impl::wait_for_space_retry() {
    std::unique_lock lock(bg_.mu);
    return !bg_.cv.wait_for(lock, std::chrono::milliseconds(kNoSpaceRetryMs),
                            [&] { return bg_.closing.load(); });
}

Status Wal::Impl::install_segment(std::uint64_t first_index, std::uint32_t start_crc) {
    auto file = take_prepared_file();
    if (!file.ok()) return file.status();
    // The direct path writes every flush on a fresh block, behind a batch
    // header; the buffered path packs them.
    const bool direct = write_path_ == WritePath::direct;
    const std::uint32_t align = direct ? detail::kFlushAlignBytes : 0;
    // Layout version 4: records carry their group.
    detail::SegmentHeader h{writer_.next_sequence, first_index, start_crc, align, direct, true};
    char header[detail::kSegmentHeaderBytes];
    detail::encode_segment_header(h, header);
    struct iovec iov {
        header, sizeof header
    };
    if (Status s = (*file)->pwritev(&iov, 1, 0); !s.ok()) return s;
    if (Status s = (*file)->datasync(); !s.ok()) return s;
    const std::string name = detail::segment_file_name(writer_.next_sequence, first_index);
    if (Status s = fs_->rename(dir_ + "/" + detail::kPreallocName, dir_ + "/" + name); !s.ok())
        return s;
    if (Status s = fs_->sync_dir(dir_); !s.ok()) return s;
    // Opened again under its final name, so that an error writing or
    // syncing it names the segment, not the temporary file it was.
    auto named = fs_->open(dir_ + "/" + name, OpenMode::read_write);
    if (!named.ok()) return named.status();
    file = std::shared_ptr<File>(std::move(*named));
    writer_.next_requested = false;  // the one after: once this one is half full
    auto seg = std::make_shared<Segment>();
    seg->sequence = writer_.next_sequence;
    seg->first_index = first_index;
    seg->start_crc = start_crc;
    seg->flush_align_bytes = align;
    seg->batch_headers = direct;
    seg->groups = true;
    seg->record_header_bytes = detail::kGroupRecordHeaderBytes;
    seg->name = name;
    seg->file = std::move(*file);
    seg->end_offset.store(detail::records_start(align));
    seg->last_crc = start_crc;
    if (Status s = attach_writer(*seg); !s.ok()) return s;
    ++writer_.next_sequence;
    {
        std::lock_guard lock(state_mu_);
        log_.segments.push_back(seg);
    }
    writer_.active = std::move(seg);
    return Status();
}

Status Wal::Impl::zero_tail(File& file, std::uint64_t from, std::uint64_t* zeroed) {
    *zeroed = 0;
    auto size = file.size();
    if (!size.ok()) return size.status();
    std::vector<char> chunk(detail::kZeroFillChunkBytes);
    std::uint64_t end = from;  // past the last non-zero byte
    for (std::uint64_t at = from; at < *size; at += detail::kZeroFillChunkBytes) {
        const std::uint64_t n = std::min<std::uint64_t>(detail::kZeroFillChunkBytes, *size - at);
        auto got = file.pread(chunk.data(), n, at);
        if (!got.ok()) return got.status();
        for (std::uint64_t i = *got; i > 0; --i) {
            if (chunk[i - 1] != 0) {
                end = at + i;
                break;
            }
        }
    }
    if (end == from) return Status();
    if (Status s = zero_range(file, from, end); !s.ok()) return s;
    *zeroed = end - from;
    return Status();
}

Status Wal::Impl::zero_range(File& file, std::uint64_t from, std::uint64_t to) {
    if (to <= from) return Status();
    for (std::uint64_t at = from; at < to; at += detail::kZeroFillChunkBytes) {
        struct iovec iov {
            const_cast<char*>(zero_chunk()), std::min(detail::kZeroFillChunkBytes, to - at)
        };
        if (Status s = file.pwritev(&iov, 1, at); !s.ok()) return s;
    }
    return file.datasync();
}

Status Wal::Impl::remove_files(const std::vector<std::string>& names) {
    if (names.empty()) return Status();
    for (const auto& name : names) {
        Status s = fs_->remove(dir_ + "/" + name);
        if (!s.ok() && s.code() != ErrorCode::not_found) return s;
    }
    return fs_->sync_dir(dir_);
}

// Unlinking a whole segment stalls the log's next writes where the file
// system discards freed blocks online: the whole file's discard reaches the
// disk in one piece.  Shortened a chunk at a time, each step synced (the
// step's journal commit issues its discard), the log's writes wait behind
// one chunk's discard at most (docs/decisions/0051-disk-stalls.md).
//
// Crash windows: the segment is renamed out of the log's names, and the
// rename made durable, before any byte of it goes: recovery then finds
// either the whole segment under its own name (below the floor: deleted, as
// before) or kDeletingName (deleted, whatever is left of it).  Never a
// shortened file under a segment's name, which recovery would scan and
// refuse as corrupt.  A read racing the deletion finds a short record and
// says not_found, as for any compacted index (Wal::Impl::read).
void Wal::Impl::remove_compacted_segment(const std::string& name) {
    if (remove_segment_gradually(name).ok()) return;
    // Whatever failed: the plain way, for this file and any half-deleted one.
    // A failure here too leaves a file below the durable floor (or
    // kDeletingName), which the next open deletes.
    for (const std::string& path : {dir_ + "/" + name, dir_ + "/" + detail::kDeletingName})
        (void)fs_->remove(path);
    (void)fs_->sync_dir(dir_);
}

Status Wal::Impl::remove_segment_gradually(const std::string& name) {
    const std::string deleting = dir_ + "/" + detail::kDeletingName;
    if (Status s = fs_->rename(dir_ + "/" + name, deleting); !s.ok())
        return s.code() == ErrorCode::not_found ? Status() : s;
    if (Status s = fs_->sync_dir(dir_); !s.ok()) return s;
    if (Status s = remove_in_steps(*fs_, deleting); !s.ok()) return s;
    return fs_->sync_dir(dir_);
}

void Wal::Impl::delete_in_background(std::vector<std::string> names) {
    if (names.empty()) return;
    if (!background_.joinable()) {
        (void)remove_files(names);  // recovery redoes it on the next open if this fails
        return;
    }
    std::lock_guard lock(bg_.mu);
    bg_.to_delete.insert(bg_.to_delete.end(), names.begin(), names.end());
    bg_.cv.notify_all();
}

void Wal::Impl::background_main() {
    using Clock = std::chrono::steady_clock;
    std::unique_lock lock(bg_.mu);
    Clock::time_point retry_at{};  // after a no_space: when to try again
    for (;;) {
        auto preparation_due = [&] {
            return bg_.want_prepared && bg_.prepared == nullptr && bg_.prepared_error.ok() &&
                   Clock::now() >= retry_at;
        };
        auto ready = [&] { return bg_.stop || !bg_.to_delete.empty() || preparation_due(); };
        if (bg_.want_prepared && bg_.prepared == nullptr && bg_.prepared_error.ok() &&
            Clock::now() < retry_at) {
            bg_.cv.wait_until(lock, retry_at, ready);
        } else {
            bg_.cv.wait(lock, ready);
        }
        // One segment at a time, and a due preparation first: a roll that
        // waits for its next segment is not held up behind a queue of
        // deletions (each takes a while: remove_compacted_segment).  When
        // closing, the queue is still emptied.
        if (!bg_.to_delete.empty() && (bg_.stop || !preparation_due())) {
            const std::string name = std::move(bg_.to_delete.front());
            bg_.to_delete.erase(bg_.to_delete.begin());
            lock.unlock();
            remove_compacted_segment(name);
            lock.lock();
            continue;
        }
        if (bg_.stop) return;
        if (!preparation_due()) continue;  // woken early, the retry is not due
        lock.unlock();
        auto file = prepare_segment_file();
        // Out of space: try again in a while; meanwhile no_space() says so,
        // and the flusher, if it needs the segment now, waits.  Other
        // errors fail the WAL when a roll needs the segment.
        set_no_space(NoSpaceSource::preparation,
                     !file.ok() && file.status().code() == ErrorCode::no_space);
        lock.lock();
        if (file.ok()) {
            bg_.prepared = std::move(*file);
        } else if (file.status().code() == ErrorCode::no_space) {
            retry_at = Clock::now() + std::chrono::milliseconds(kNoSpaceRetryMs);
        } else {
            bg_.prepared_error = file.status();
        }
        bg_.cv.notify_all();
    }
}

}  // namespace keel::wal
