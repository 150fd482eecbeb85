// daemon/kv_state_machine.hpp — raftd's replicated key-value store.
//
// An ordered map of string keys to string values, each with the revision (log
// index) of its last change.  keel applies committed KvCommands on its apply
// thread; HTTP handlers read concurrently (after a ReadIndex barrier, or stale),
// so the map is guarded by a shared mutex: apply() takes it exclusively, reads
// share it.
//
// Snapshot format (integers little-endian, strings as u32 length + bytes):
//   8 bytes magic "KEELKV\0\1"
//   u64 applied index, u64 entry count
//   per entry, keys strictly ascending: key, value, u64 revision
//   u64 FNV-1a 64 of every byte before it
// restore() checks every length, the order, the count and the checksum before
// it replaces anything, so a bad snapshot leaves the current state untouched.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "keel/kv/kv_command.hpp"
#include "keel/state_machine.hpp"

namespace keel::daemon {

// raftd's commands and results (keel/kv/kv_command.hpp, shared with waldump).
using kv::decode_command;
using kv::decode_result;
using kv::encode_command;
using kv::encode_result;
using kv::KvCommand;
using kv::KvOp;
using kv::KvOutcome;
using kv::KvResult;
using kv::KvValue;
namespace codec = kv::codec;

// Upper bound on a snapshot restore() accepts (it is held in memory once).
inline constexpr std::uint64_t kMaxSnapshotBytes = 8ull << 30;

struct KvListing {
    std::vector<std::pair<std::string, KvValue>> items;
    bool truncated = false;  // more keys with the prefix exist past the limit
};

class KvStateMachine final : public StateMachine {
public:
    using Map = std::map<std::string, KvValue, std::less<>>;

    // StateMachine: called by keel on its apply thread only.
    void apply(const std::vector<CommittedEntry>& entries,
               std::vector<std::string>& results) override;
    SnapshotFunction snapshot() override;
    Status restore(SnapshotReader& reader) override;

    // Reads: thread-safe, any thread.
    std::optional<KvValue> get(std::string_view key) const;
    // Keys starting with `prefix`, in order, at most `limit` of them.
    KvListing list(std::string_view prefix, std::size_t limit) const;
    std::size_t size() const;
    // The last entry applied (in memory: not StateMachine::applied_index,
    // which would tell keel this state survives a crash by itself).
    std::uint64_t last_applied_index() const;
    // The bytes a snapshot of the map takes now (what --quota-bytes counts
    // besides the WAL).  Lock-free; exact as of the last applied entry.
    std::uint64_t size_bytes() const { return size_bytes_.load(std::memory_order_relaxed); }

    // Serialises `map` in the snapshot format (exposed for tests).
    static std::string serialize(const Map& map, std::uint64_t applied_index);
    // What one entry adds to a snapshot, and what an empty one takes.
    static std::uint64_t entry_bytes(std::string_view key, std::string_view value) {
        return 4 + key.size() + 4 + value.size() + 8;
    }
    static constexpr std::uint64_t kEmptySnapshotBytes = 8 + 8 + 8 + 8;

private:
    KvResult apply_one(std::uint64_t index, std::string_view data);

    mutable std::shared_mutex mutex_;
    Map map_;                          // GUARDED_BY(mutex_)
    std::uint64_t applied_index_ = 0;  // GUARDED_BY(mutex_)
    // Written under mutex_ (exclusive), read without it.
    std::atomic<std::uint64_t> size_bytes_{kEmptySnapshotBytes};
};

}  // namespace keel::daemon
