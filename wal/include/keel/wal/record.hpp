// keel/wal/record.hpp — the unit the WAL stores: an index-addressed record.
//
// The WAL is generic: `type` is user-defined and `term` is just a number it
// stores and returns (the Raft runtime puts the entry's term there).  Indexes
// are 1-based and contiguous; the WAL enforces next == last + 1.  Many
// streams (the Raft groups of one process) may share one WAL: `group` says
// which stream a record belongs to; the index stays the position in the
// shared log, and a reader routes records by group.
#pragma once

#include <cstdint>
#include <string>

#include "keel/shared_bytes.hpp"

namespace keel::wal {

struct Record {
    std::uint64_t index = 0;  // >= 1; contiguous within the log
    std::uint64_t term = 0;   // opaque to the WAL
    std::uint16_t type = 0;   // user-defined
    SharedBytes payload;      // bytes (not necessarily text); copies share them
    std::uint64_t group = 0;  // the stream it belongs to; <= kMaxGroup

    friend bool operator==(const Record&, const Record&) = default;
};

// Hard limits of the on-disk format.  Options::max_record_bytes (default
// 64 MiB) is the configurable limit and must not exceed kFormatMaxPayloadBytes.
inline constexpr std::uint64_t kFormatMaxPayloadBytes = (1ull << 32) - 64;
// The largest group id (append refuses more; on disk, more is damage).
inline constexpr std::uint64_t kMaxGroup = 1ull << 62;

}  // namespace keel::wal
