// keel/snapshot_file.hpp — a node's snapshot as a file: the form a backup
// takes.  Node::open_latest_snapshot streams one out; verify_snapshot_file
// checks one; restore_data_dir builds a new data dir from one.
//
// The file is keel's own snapshot file (docs/runtime.md, "Snapshot
// files"): the state machine's data, the configuration it was taken in,
// and a trailer with its index, term, lengths and checksums.  It is
// self-describing and self-checking: a copy of it is a complete backup.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "keel/options.hpp"
#include "keel/status.hpp"

namespace keel {

struct SnapshotFileInfo {
    std::uint64_t index = 0;       // the last log entry the snapshot reflects
    std::uint64_t term = 0;        // that entry's term
    std::uint64_t size_bytes = 0;  // the whole file
    std::uint64_t data_bytes = 0;  // the state machine's part of it
    std::uint32_t data_crc32 = 0;  // CRC-32 of the data, as the trailer records it
    std::vector<MemberSpec> members;  // the configuration the snapshot was taken in
};

// Streams a snapshot file, first byte to last.  Used by one thread at a
// time.  The file stays readable while it is read, whatever the node does
// meanwhile (a newer snapshot, compaction).
class SnapshotFileSource {
public:
    virtual ~SnapshotFileSource() = default;
    virtual const SnapshotFileInfo& info() const = 0;
    // Up to `capacity` bytes; 0 at the end.  io_error if the disk fails.
    virtual Result<std::size_t> read(char* buffer, std::size_t capacity) = 0;
};

// Reads the file at `path` whole and checks it: trailer, lengths,
// configuration, and the data against its checksum.  corruption naming
// what is wrong and where; not_found or io_error when it cannot be read.
Result<SnapshotFileInfo> verify_snapshot_file(const std::string& path);

// Builds a new data dir (options.data_dir: absent or empty; anything else is
// refused with invalid_argument) whose state is the snapshot file at
// `snapshot_path`: its index, term and state machine data, in a new cluster
// whose founding members are options.initial_members (this node,
// options.id, among them; empty: this node alone, at options.listen_address)
// with a new cluster id (options.cluster_id: required, the same on every
// member, when there are several founders; a lone founder makes a random
// one).  The file is verified first.  Run it on every founding member with
// the same file and member list, then start each with Node::open as usual:
// the log continues after the snapshot's index (so indexes, and revisions
// derived from them, keep increasing) in a new term.
Status restore_data_dir(const NodeOptions& options, const std::string& snapshot_path);

}  // namespace keel
