// transport/snapshot_receiver.hpp — the receiving side of snapshot streams:
// the chunks a member sends, decoded already, appended to a staging file
// (snapshot_files.hpp) until the final one completes it.
//
// Nothing here trusts the sender: every offset is checked against the bytes
// staged so far, the announced total against a limit, and a stream that
// breaks a rule is dropped with its partial file.  At most one stream per
// sender and group is staged at a time; a chunk at offset 0 starts a new one
// (replacing any partial one: the sender restarted it).
//
// Threading: not thread-safe; one thread at a time (the owner of the
// MessageChannel that holds it).  Disk I/O is blocking and bounded: one
// chunk's append, and an fsync and a rename on the final chunk.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "keel/status.hpp"
#include "keel/transport.hpp"
#include "transport/codec.hpp"
#include "transport/snapshot_files.hpp"

namespace keel::transport {

class SnapshotReceiver {
public:
    // `staging_dir` is created with the first stream if it does not exist;
    // empty: every stream is refused.
    SnapshotReceiver(std::string staging_dir, std::uint64_t snapshot_bytes_max);

    // Deletes .part files an earlier run left in the staging directory.
    void remove_leftovers();

    // Appends `chunk` from `from`.  Returns the path of the complete,
    // fsynced file (now the caller's) after the final chunk, nothing before
    // it, or why the chunk was refused (the stream is then dropped).
    Result<std::optional<std::string>> on_chunk(GroupId group, NodeId from,
                                                const SnapshotChunk& chunk);
    // Drops the partial stream from `from`, if any (its link was lost).
    // Returns whether there was one.
    bool abort(GroupId group, NodeId from);
    // Whether `chunk` from `from` would replace a partial stream.
    bool replaces_partial(GroupId group, NodeId from, const SnapshotChunk& chunk) const;
    // Drops every partial stream.
    void clear() { staging_.clear(); }
    std::size_t partial_streams() const { return staging_.size(); }

private:
    struct Staged {
        std::uint64_t snapshot_id = 0;
        std::uint64_t total_bytes = 0;
        StagingFile file;
    };
    const std::string staging_dir_;
    const std::uint64_t snapshot_bytes_max_;
    std::map<std::pair<GroupId, NodeId>, Staged> staging_;
    std::uint64_t next_seq_ = 1;  // names staging files apart
};

}  // namespace keel::transport
