// runtime/snapshot_staging.hpp — snapshots received from leaders (checked
// against their checksums already), kept until the core installs one.
//
// The transport stages a streamed snapshot in a file; once checked, its
// message is stepped into the core, and the file is kept here under its
// (index, term) for the install_snapshot that may follow.  Installing one
// takes it and deletes every older one; at most kMaxStagedSnapshots are
// kept, the oldest deleted first.
//
// Threads: none of its own; the replica calls it under its core lock.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "raft/types.hpp"

namespace keel::runtime {

// Complete snapshots from leaders kept until the core installs one.
inline constexpr std::size_t kMaxStagedSnapshots = 2;

class SnapshotStaging {
public:
    SnapshotStaging() = default;
    ~SnapshotStaging() = default;  // the files stay: clear() deletes them
    SnapshotStaging(const SnapshotStaging&) = delete;
    SnapshotStaging& operator=(const SnapshotStaging&) = delete;

    // Keeps the file at `path` as the snapshot at (index, term), replacing
    // (and deleting) another file staged for it.
    void stage(raft::Index index, raft::Term term, std::string path);
    // The file staged for (index, term), which the caller now owns, or none;
    // every snapshot staged before it is deleted.
    std::optional<std::string> take(raft::Index index, raft::Term term);
    // Deletes every staged file.
    void clear();
    std::size_t size() const { return staged_.size(); }

private:
    std::map<std::pair<raft::Index, raft::Term>, std::string> staged_;
};

}  // namespace keel::runtime
