// keel/log_entry.hpp — what a node's log records hold, for tools that read
// its WAL (waldump) rather than run it.
//
// Each Raft log entry is one WAL record (keel/wal/record.hpp) with the same
// index and term; the record's type is a LogEntryType and its payload the
// entry's data: a normal entry holds what the application proposed, a noop
// (appended by each new leader) nothing, a config entry the whole cluster
// configuration after a membership change.  The WAL sits in data_dir/wal.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "keel/options.hpp"
#include "keel/status.hpp"

namespace keel {

enum class LogEntryType : std::uint8_t {
    normal = 1,  // the application's data, passed to StateMachine::apply
    noop = 2,    // empty: a new leader's first entry of its term
    config = 3,  // the configuration after a change (decode_config_entry)
};

// "normal", "noop" or "config"; nullptr for a type keel does not write.
const char* log_entry_type_name(std::uint32_t type) noexcept;

// The record types of a WAL shared by a keel::Host's groups (docs/groups.md,
// "One WAL per process"; docs/wal.md, "Records of a shared WAL"):
// "entry:normal", "entry:noop", "entry:config", "reset", "image",
// "hard_state"; nullptr for any other type.
const char* shared_record_type_name(std::uint32_t type) noexcept;

// A shared WAL's hard-state record ("hard_state"): its group's term, vote
// and commit.
inline constexpr std::uint32_t kSharedHardStateRecordType = 0x22;
struct SharedHardState {
    std::uint64_t term = 0;
    std::uint64_t vote = 0;  // 0: none
    std::uint64_t commit = 0;
};
// The hard state in a "hard_state" record's payload; corruption saying what
// is wrong when the bytes (from disk) are not one.
Result<SharedHardState> decode_shared_hard_state(std::string_view payload);

// The type called `name` by log_entry_type_name; nullopt for any other name.
std::optional<LogEntryType> parse_log_entry_type(std::string_view name) noexcept;

// The members of a config entry's data, in ascending id order.  The bytes
// come from disk: anything keel did not write (a bad version, a length past
// what remains or past its limit, ids out of order) is refused with
// corruption, never read past.
Result<std::vector<MemberSpec>> decode_config_entry(std::string_view data);

}  // namespace keel
