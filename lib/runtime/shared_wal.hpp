// runtime/shared_wal.hpp — one WAL for every Raft group of a process, and
// each group's LogStore on it.
//
// The WAL (keel::wal) numbers its records by their position in the one
// shared log and tags each with its group (docs/decisions/0019).  Each
// group keeps its own Raft indexes on top: its entry records carry their
// Raft index, and the group's store maps its live entries to positions in
// memory (rebuilt at open by scanning the log).  Concurrent appends of
// different groups are queued into the one WAL, so they share its writes
// and fdatasyncs.  The layout (docs/groups.md, "One WAL per process"):
//   - an entry: type kSharedEntryType + raft::EntryType, term = the
//     entry's term, payload = its Raft index (8 bytes, little-endian), then
//     its data.  An entry at Raft index k voids the group's entries at k
//     and after that came before it (Raft's truncation of a conflicting
//     suffix is implied by the entry that replaces it);
//   - a reset (a snapshot from the leader replaced the group's log):
//     type kSharedResetType, payload = the snapshot's index and term;
//     every earlier entry of the group is void, the next is index + 1;
//   - each group's hard state (term, vote, commit), snapshot marker,
//     compaction point and durable state machine's floor: one row of a
//     table in the WAL's metadata (its opaque blob), saved whole and
//     atomically, durable before the call returns, ordered with nothing in
//     the WAL's queue (as LogStore's contract has it for a WAL of its own).
// A group that compacts records how far first (its row), then releases
// its records before the first it still needs (wal::Wal::release): a
// segment file goes once every group in it released its records.
//
// Recovery: replaying a group's records in log order rebuilds its log
// exactly; a suffix of them starting at a live entry rebuilds the same
// entries from there on, which is all a compacted group keeps.
//
// Threads: open_group from any thread but never twice at once for one
// group; the stores' contracts are LogStore's.  The WAL's writing thread
// calls each group's after_batch after a batch that completed one of its
// writes, and every group's on_health_change on a change; neither runs
// after the group's store is gone.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "keel/status.hpp"
#include "keel/wal/wal.hpp"
#include "raft/types.hpp"
#include "runtime/group_router.hpp"
#include "runtime/log_store.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

inline constexpr std::uint16_t kSharedEntryType = 0x10;  // + raft::EntryType
inline constexpr std::uint16_t kSharedResetType = 0x20;

// One group's row in the shared WAL's metadata.
struct GroupMeta {
    std::uint64_t term = 0;
    std::uint64_t vote = 0;
    std::uint64_t commit = 0;
    std::uint64_t snapshot_index = 0;  // the last reset's, for the record
    std::uint64_t snapshot_term = 0;
    // The group's log before this index + 1 was compacted (released): the
    // log starts after it, whatever records of it the WAL still holds.
    std::uint64_t compacted_through = 0;
    std::string floor;  // encode_floor(), or empty
    friend bool operator==(const GroupMeta&, const GroupMeta&) = default;
};

// The table's encoding in the metadata's opaque blob (empty: no group);
// corruption naming `dir` when it does not decode.
std::string encode_group_table(const std::map<GroupId, GroupMeta>& table);
Result<std::map<GroupId, GroupMeta>> decode_group_table(std::string_view blob,
                                                        const std::string& dir);

// A group's log as the scan found it: live entries in Raft order, each with
// its position in the shared log.
struct GroupRecovery {
    struct Slot {
        std::uint64_t position = 0;
        raft::Entry entry;
    };
    std::vector<Slot> entries;
    raft::Index next = 1;  // the index its next entry takes
    bool any_record = false;
};

class SharedWal {
public:
    // What a group hears from the WAL's writing thread (wal::Options'
    // after_batch and on_health_change, per group).
    struct Hooks {
        std::function<void()> after_batch;
        std::function<void()> on_health_change;
    };

    // Opens (creating) the WAL in `dir` and scans it once for every
    // group's log.  options.after_batch, on_health_change and cache_bytes
    // are the shared WAL's own.  corruption when a record or the group
    // table does not decode.
    static Result<std::unique_ptr<SharedWal>> open(const std::string& dir, wal::Options options);
    // REQUIRES: every group's store is gone.
    ~SharedWal();
    SharedWal(const SharedWal&) = delete;
    SharedWal& operator=(const SharedWal&) = delete;

    // Group `group`'s store, its log as recovered; `hooks` are called until
    // the store goes.  busy while another store of the group is open.
    Result<std::unique_ptr<LogStore>> open_group(GroupId group, Hooks hooks);

    wal::Wal& wal() { return *wal_; }
    const std::string& dir() const { return wal_->dir(); }
    // Batches that completed writes of more than one group.
    std::uint64_t shared_batches() const { return shared_batches_.load(); }

    // ---- for the stores (shared_log_store.cpp) ----
    // Queues `records` (their group and everything but the index set) as
    // the log's next ones; their first position in *first.
    Status append(std::vector<wal::Record> records, wal::Wal::Callback done,
                  wal::Wal::Writer writer, std::uint64_t* first) EXCLUDES(append_mu_);
    // A batch completed a write of `group`: its after_batch runs after the
    // batch (writing thread).
    void touched(GroupId group) EXCLUDES(touched_mu_);
    GroupMeta meta(GroupId group) const EXCLUDES(table_mu_);
    // Applies `change` to the group's row and saves the table, durable
    // before returning; on failure nothing changed.  too_large when the
    // table outgrows the metadata (wal::kMaxMetadataOpaqueBytes).
    Status update_meta(GroupId group, const std::function<void(GroupMeta&)>& change)
        EXCLUDES(table_mu_);
    void close_group(GroupId group) EXCLUDES(hooks_mu_);

private:
    SharedWal() = default;
    // Reads the log and rebuilds the logs of `only` (every group: nullopt).
    Status scan(std::optional<GroupId> only, std::map<GroupId, GroupRecovery>& out) const;
    void after_batch() EXCLUDES(hooks_mu_, touched_mu_);
    void on_health_change() EXCLUDES(hooks_mu_);

    std::unique_ptr<wal::Wal> wal_;
    Mutex append_mu_;  // positions are taken in the order appends are queued
    mutable Mutex table_mu_;
    std::map<GroupId, GroupMeta> table_ GUARDED_BY(table_mu_);
    Mutex hooks_mu_;
    std::map<GroupId, Hooks> open_ GUARDED_BY(hooks_mu_);
    // What the first scan found, taken by each group's first open.
    std::map<GroupId, GroupRecovery> recovered_ GUARDED_BY(hooks_mu_);
    std::set<GroupId> scanned_ GUARDED_BY(hooks_mu_);  // taken once
    Mutex touched_mu_;
    std::vector<GroupId> touched_ GUARDED_BY(touched_mu_);
    std::atomic<std::uint64_t> shared_batches_{0};
};

}  // namespace keel::runtime
