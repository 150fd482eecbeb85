// transport/snapshot_sender.hpp — keel's OutgoingSnapshot: the snapshot file
// a leader sends, read in bounded chunks and encoded as snapshot_chunk
// frames (codec.hpp), the raft snapshot message in the final one.
//
// Threading: next_chunk() from one thread at a time (the transport's);
// done() from any thread, and the destructor reports an unfinished stream
// as failed.  `on_done` must therefore be thread-safe (MessageChannel posts
// it to its owner's thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "keel/transport.hpp"
#include "raft/types.hpp"
#include "transport/codec.hpp"
#include "transport/snapshot_files.hpp"

namespace keel::transport {

class SnapshotSender final : public OutgoingSnapshot {
public:
    // Opens the file at `path` (a complete, immutable snapshot file: it must
    // stay unchanged until done).  invalid_argument when `message` is not a
    // snapshot message with its meta; too_large past `bytes_max`; the file's
    // error if it cannot be opened.  `snapshot_id` names the stream to the
    // receiver (new for every stream from this sender); every chunk carries
    // `group`.
    static Result<std::shared_ptr<SnapshotSender>> open(
        raft::Message message, const std::string& path, GroupId group, std::uint64_t snapshot_id,
        std::size_t chunk_bytes, std::uint64_t bytes_max, const CodecLimits& limits,
        std::function<void(bool delivered)> on_done);
    ~SnapshotSender() override;

    std::uint64_t size_bytes() const override { return reader_.size_bytes(); }
    Result<keel::SnapshotChunk> next_chunk() override;
    void done(bool delivered) override;

    SnapshotSender(raft::Message message, SnapshotReader reader, GroupId group,
                   std::uint64_t snapshot_id, std::size_t chunk_bytes, const CodecLimits& limits,
                   std::function<void(bool)> on_done);

private:
    const raft::Message message_;
    SnapshotReader reader_;
    const GroupId group_;
    const std::uint64_t snapshot_id_;
    const std::size_t chunk_bytes_;
    const CodecLimits limits_;
    std::function<void(bool)> on_done_;
    std::uint64_t offset_ = 0;  // next byte to read
    bool finished_reading_ = false;
    std::atomic<bool> done_{false};
};

}  // namespace keel::transport
