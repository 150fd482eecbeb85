// Which write path the WAL uses (Options::write_path) and the direct path's
// per-segment writer.  docs/wal.md, "Write paths".
//
// The direct path writes a batch with one O_DIRECT|O_DSYNC write of whole
// blocks starting on a fresh block, so it never rewrites a block that holds
// acknowledged records; that needs segment layout version 3 (every flush
// block-aligned, behind a batch header that lets recovery tell a torn final
// flush from corruption).  A WAL whose active segment is of an older layout
// (version 1 from the buffered path, version 2 from an older keel) is
// rolled to a new segment at open before the direct path writes anything.
#include <fmt/format.h>

#include "keel/wal/wal.hpp"
#include "wal_impl.hpp"

namespace keel::wal {

const char* write_path_name(WritePath path) noexcept {
    switch (path) {
        case WritePath::buffered:
            return "buffered";
        case WritePath::direct:
            return "direct";
        case WritePath::automatic:
            return "auto";
    }
    return "unknown";
}

Status Wal::Impl::choose_write_path() {
    if (options_.write_path != WritePath::automatic) {
        write_path_ = options_.write_path;
        return Status();
    }
    // The probe: a file system that cannot do direct I/O refuses O_DIRECT
    // at open(2) (EINVAL).  LOCK exists by now and holds no data.
    auto probe = fs_->open(dir_ + "/" + detail::kLockName, OpenMode::write_direct);
    if (probe.ok()) {
        write_path_ = WritePath::direct;
        return Status();
    }
    if (probe.status().code() != ErrorCode::unsupported) return probe.status();
    write_path_ = WritePath::buffered;
    return Status();
}

Status Wal::Impl::attach_writer(Segment& seg) {
    if (write_path_ != WritePath::direct) return Status();
    auto file = fs_->open(dir_ + "/" + seg.name, OpenMode::write_direct);
    if (!file.ok()) return file.status();
    seg.direct = std::move(*file);
    return Status();
}

Status Wal::Impl::ready_active_segment(std::uint64_t next_index) {
    if (write_path_ != WritePath::direct || writer_.active->direct != nullptr) return Status();
    const std::uint32_t align = writer_.active->flush_align_bytes;
    if (writer_.active->batch_headers && align % kDirectIoAlignBytes == 0)
        return attach_writer(*writer_.active);
    return install_segment(next_index, writer_.active->last_crc);
}

}  // namespace keel::wal
