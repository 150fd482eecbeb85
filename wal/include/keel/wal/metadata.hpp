// keel/wal/metadata.hpp — the small durable state kept beside the log.
//
// The Raft hard state (term, vote, commit) and the snapshot marker, plus an
// opaque blob (the runtime keeps the snapshot's membership there).  The WAL
// stores it in the side file `meta`, replaced atomically (write meta.tmp,
// fdatasync, rename, fsync the directory), so a crash leaves either the old
// or the new value, never a mix.
#pragma once

#include <cstdint>
#include <string>

namespace keel::wal {

struct Metadata {
    std::uint64_t term = 0;
    std::uint64_t vote = 0;  // 0 = no vote
    std::uint64_t commit = 0;
    std::uint64_t snapshot_index = 0;
    std::uint64_t snapshot_term = 0;
    std::string opaque;  // at most kMaxMetadataOpaqueBytes

    friend bool operator==(const Metadata&, const Metadata&) = default;
};

inline constexpr std::size_t kMaxMetadataOpaqueBytes = 1u << 20;  // 1 MiB
// The most groups whose releases (Wal::release) the metadata file records
// at once: groups that released records which still lie in live segments.
inline constexpr std::size_t kMaxReleasedGroups = 1u << 16;

}  // namespace keel::wal
