// transport/snapshot_receiver.cpp — see snapshot_receiver.hpp.
#include "transport/snapshot_receiver.hpp"
#include <fmt/format.h>

namespace keel::transport {

SnapshotReceiver::SnapshotReceiver(std::string staging_dir, std::uint64_t snapshot_bytes_max)
    : staging_dir_(std::move(staging_dir)), snapshot_bytes_max_(snapshot_bytes_max) {}

void SnapshotReceiver::remove_leftovers() {
    if (!staging_dir_.empty()) remove_partial_snapshots(staging_dir_);
}

Result<std::optional<std::string>> SnapshotReceiver::on_chunk(GroupId group, NodeId from,
                                                              const SnapshotChunk& chunk) {
    if (staging_dir_.empty())
        return Status(ErrorCode::unsupported, "snapshots are not accepted (no staging directory)");
    if (chunk.total_bytes > snapshot_bytes_max_)
        return Status(ErrorCode::too_large,
                      fmt::format("snapshot of {} bytes exceeds snapshot_bytes_max {}",
                                  chunk.total_bytes, snapshot_bytes_max_));
    const auto key = std::make_pair(group, from);
    auto it = staging_.find(key);
    const bool fresh =
        it == staging_.end() || it->second.snapshot_id != chunk.snapshot_id || chunk.offset == 0;
    if (fresh) {
        if (it != staging_.end()) staging_.erase(it);  // a new stream replaces the partial one
        if (chunk.offset != 0)
            return Status(ErrorCode::corruption,
                          fmt::format("snapshot {} starts at offset {}, not 0", chunk.snapshot_id,
                                      chunk.offset));
        const std::string name = fmt::format("snapshot-{}-{}-{}", from, group, next_seq_++);
        Result<StagingFile> file = StagingFile::create(staging_dir_, name);
        if (!file.ok()) return file.status();
        it = staging_.emplace(key, Staged{chunk.snapshot_id, chunk.total_bytes, std::move(*file)})
                 .first;
    }
    Staged& staged = it->second;
    if (chunk.offset != staged.file.size_bytes() || chunk.total_bytes != staged.total_bytes) {
        std::string why =
            fmt::format("snapshot chunk at offset {} of {}, expected offset {} of {}", chunk.offset,
                        chunk.total_bytes, staged.file.size_bytes(), staged.total_bytes);
        staging_.erase(it);
        return Status(ErrorCode::corruption, why);
    }
    if (Status s = staged.file.append(chunk.data); !s.ok()) {
        staging_.erase(it);
        return s;
    }
    if (!chunk.last()) return std::optional<std::string>();
    Result<std::string> path = staged.file.finish();
    staging_.erase(it);
    if (!path.ok()) return path.status();
    return std::optional<std::string>(std::move(*path));
}

bool SnapshotReceiver::abort(GroupId group, NodeId from) {
    return staging_.erase(std::make_pair(group, from)) > 0;
}

bool SnapshotReceiver::replaces_partial(GroupId group, NodeId from,
                                        const SnapshotChunk& chunk) const {
    auto it = staging_.find(std::make_pair(group, from));
    return it != staging_.end() &&
           (it->second.snapshot_id != chunk.snapshot_id || chunk.offset == 0);
}

}  // namespace keel::transport
