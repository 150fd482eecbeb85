// transport/snapshot_sender.cpp — see snapshot_sender.hpp.
#include "transport/snapshot_sender.hpp"
#include <fmt/format.h>

namespace keel::transport {

Result<std::shared_ptr<SnapshotSender>> SnapshotSender::open(
    raft::Message message, const std::string& path, GroupId group, std::uint64_t snapshot_id,
    std::size_t chunk_bytes, std::uint64_t bytes_max, const CodecLimits& limits,
    std::function<void(bool delivered)> on_done) {
    if (message.type != raft::MessageType::snapshot || !message.snapshot)
        return Status(ErrorCode::invalid_argument, "a snapshot stream needs a snapshot message");
    if (chunk_bytes == 0 || chunk_bytes > limits.chunk_bytes_max)
        return Status(ErrorCode::invalid_argument, "snapshot chunk size out of range");
    Result<SnapshotReader> reader = SnapshotReader::open(path);
    if (!reader.ok()) return reader.status();
    if (reader->size_bytes() > bytes_max)
        return Status(ErrorCode::too_large,
                      fmt::format("snapshot {} of {} bytes exceeds snapshot_bytes_max", path,
                                  reader->size_bytes()));
    return std::make_shared<SnapshotSender>(std::move(message), std::move(*reader), group,
                                            snapshot_id, chunk_bytes, limits, std::move(on_done));
}

SnapshotSender::SnapshotSender(raft::Message message, SnapshotReader reader, GroupId group,
                               std::uint64_t snapshot_id, std::size_t chunk_bytes,
                               const CodecLimits& limits, std::function<void(bool)> on_done)
    : message_(std::move(message)),
      reader_(std::move(reader)),
      group_(group),
      snapshot_id_(snapshot_id),
      chunk_bytes_(chunk_bytes),
      limits_(limits),
      on_done_(std::move(on_done)) {}

SnapshotSender::~SnapshotSender() {
    done(false);  // nothing if done() ran already
}

Result<keel::SnapshotChunk> SnapshotSender::next_chunk() {
    if (finished_reading_)
        return Status(ErrorCode::invalid_argument, "next_chunk after the last chunk");
    Result<std::string> data = reader_.read(offset_, chunk_bytes_);
    if (!data.ok()) return data.status();
    SnapshotChunk chunk{snapshot_id_,     offset_,      reader_.size_bytes(),
                        std::move(*data), std::nullopt, group_};
    const bool last = offset_ + chunk.data.size() == reader_.size_bytes();
    if (last) chunk.message = message_;
    Result<std::string> frame = encode_snapshot_chunk(chunk, limits_);
    if (!frame.ok()) return frame.status();
    keel::SnapshotChunk out{std::move(*frame), offset_, last};
    offset_ += chunk.data.size();
    finished_reading_ = last;
    return out;
}

void SnapshotSender::done(bool delivered) {
    if (done_.exchange(true)) return;
    if (on_done_) on_done_(delivered);
}

}  // namespace keel::transport
