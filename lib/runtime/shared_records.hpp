// runtime/shared_records.hpp — the records a group writes into its
// process's shared WAL, and their encoding (docs/groups.md, "One WAL per
// process", has the layout; shared_wal.hpp the rules that replay them).
//
//   - entry  (kSharedEntryType + raft::EntryType): term = the entry's term;
//     payload = its Raft index (8 bytes), then its data;
//   - reset  (kSharedResetType): payload = the snapshot's index and term;
//   - image  (kSharedImageType): the group's whole live log restated in one
//     record, so that its older records may be released (a group that
//     does not write must not pin the log: shared_wal.hpp, "Rewriting
//     forward").  payload = base (8 bytes: the entries before base + 1 are
//     void, as after a reset to base), count (8), then per entry its term
//     (8), type (8) and data size (8), then the data; the entries are
//     base + 1 .. base + count;
//   - hard state (kSharedHardStateType): the group's term, vote and commit
//     (8 bytes each); term = the term again.  The latest one of a group in
//     log order at or after its row's hard_state_below wins over the row
//     (shared_wal.hpp, "Hard state").
// All integers little-endian.  Decoders check what they read against the
// record's size: the bytes come from disk.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.hpp"
#include "keel/wal/record.hpp"
#include "raft/types.hpp"

namespace keel::runtime {

inline constexpr std::uint16_t kSharedEntryType = 0x10;  // + raft::EntryType
inline constexpr std::uint16_t kSharedResetType = 0x20;
inline constexpr std::uint16_t kSharedImageType = 0x21;
inline constexpr std::uint16_t kSharedHardStateType = 0x22;
// A hard-state record's payload: term, vote, commit.
inline constexpr std::size_t kHardStateRecordBytes = 24;

// The most entries one image restates (and so the most live entries a group
// may hold to be rewritten forward: more waits for its own snapshot).
inline constexpr std::uint64_t kMaxImageEntries = 4096;

void put_u64(std::string& out, std::uint64_t v);
std::uint64_t get_u64(std::string_view in);  // REQUIRES: in.size() >= 8

// An entry record (group not set).
wal::Record encode_entry(const raft::Entry& e);
// The entry an entry record holds; invalid_argument saying what is wrong
// when the record is not one.
Result<raft::Entry> decode_entry(const wal::Record& r);

wal::Record encode_reset(raft::Index index, raft::Term term);
// The reset's index; invalid_argument when the record is not one.
Result<raft::Index> decode_reset(const wal::Record& r);

struct Image {
    raft::Index base = 0;
    std::vector<raft::Entry> entries;  // base + 1, base + 2, ...
};
// REQUIRES: entries are consecutive from base + 1.
wal::Record encode_image(raft::Index base, const std::vector<raft::Entry>& entries);
// invalid_argument when the record is not a well-formed image (sizes past
// its end, more than kMaxImageEntries entries, an unknown entry type,
// indexes past 2^63).
Result<Image> decode_image(const wal::Record& r);

// A hard-state record (group not set).
wal::Record encode_hard_state(const raft::HardState& hs);
// The hard state a hard-state record holds; invalid_argument when the
// record is not one (another type, a payload of another size than
// kHardStateRecordBytes, a term or commit past 2^63).
Result<raft::HardState> decode_hard_state(const wal::Record& r);

}  // namespace keel::runtime
