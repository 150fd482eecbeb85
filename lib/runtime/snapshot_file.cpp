// runtime/snapshot_file.cpp — keel/snapshot_file.hpp's checks and the
// stream a backup is copied through (Node::open_latest_snapshot).
#include "runtime/snapshot_file.hpp"

#include <fmt/format.h>
#include "keel/snapshot_file.hpp"
#include "runtime/member_context.hpp"

namespace keel::runtime {
namespace {

class FileSource final : public SnapshotFileSource {
public:
    FileSource(SnapshotPin pin, std::unique_ptr<wal::File> file, SnapshotFileInfo info)
        : pin_(std::move(pin)), file_(std::move(file)), info_(std::move(info)) {}

    const SnapshotFileInfo& info() const override { return info_; }

    Result<std::size_t> read(char* buffer, std::size_t capacity) override {
        if (offset_ >= info_.size_bytes || capacity == 0) return std::size_t{0};
        const auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(capacity, info_.size_bytes - offset_));
        auto n = file_->pread(buffer, want, offset_);
        if (!n.ok()) return n.status();
        if (*n == 0)
            return Status(ErrorCode::io_error, fmt::format("snapshot file ended at byte {} of {}",
                                                           offset_, info_.size_bytes));
        offset_ += *n;
        return *n;
    }

private:
    SnapshotPin pin_;
    std::unique_ptr<wal::File> file_;
    SnapshotFileInfo info_;
    std::uint64_t offset_ = 0;
};

}  // namespace

SnapshotFileInfo snapshot_file_info(const SnapshotFile& file, std::uint64_t size_bytes) {
    SnapshotFileInfo info;
    info.index = file.meta.index;
    info.term = file.meta.term;
    info.size_bytes = size_bytes;
    info.data_bytes = file.data_bytes;
    info.data_crc32 = file.data_crc32;
    for (const auto& [id, member] : file.meta.config.members)
        info.members.push_back(member_spec(id, member));
    return info;
}

Result<std::unique_ptr<SnapshotFileSource>> open_snapshot_source(wal::FileSystem& fs,
                                                                 const SnapshotFile& file,
                                                                 SnapshotPin pin) {
    auto opened = fs.open(file.path, wal::OpenMode::read_only);
    if (!opened.ok()) return opened.status();
    auto size = (*opened)->size();
    if (!size.ok()) return size.status();
    return std::unique_ptr<SnapshotFileSource>(
        new FileSource(std::move(pin), std::move(*opened), snapshot_file_info(file, *size)));
}

}  // namespace keel::runtime

namespace keel {

Result<SnapshotFileInfo> verify_snapshot_file(const std::string& path) {
    wal::FileSystem& fs = *wal::default_file_system();
    auto file = runtime::SnapshotStore::verify(fs, path);
    if (!file.ok()) return file.status();
    auto opened = fs.open(path, wal::OpenMode::read_only);
    if (!opened.ok()) return opened.status();
    auto size = (*opened)->size();
    if (!size.ok()) return size.status();
    return runtime::snapshot_file_info(*file, *size);
}

}  // namespace keel
