// runtime/shared_wal.hpp — one WAL for every Raft group of a process, and
// each group's LogStore on it.
//
// The WAL (keel::wal) numbers its records by their position in the one
// shared log and tags each with its group (docs/decisions/0019).  Each
// group keeps its own Raft indexes on top: its entry records carry their
// Raft index, and the group's store maps its live entries to positions in
// memory (rebuilt at open by scanning the log).  Concurrent appends of
// different groups are queued into the one WAL, so they share its writes
// and fdatasyncs.  The records (shared_records.hpp has their encoding;
// docs/groups.md, "One WAL per process", the layout):
//   - an entry at Raft index k voids the group's entries at k and after
//     that came before it (Raft's truncation of a conflicting suffix is
//     implied by the entry that replaces it);
//   - a reset (a snapshot from the leader replaced the group's log) voids
//     every earlier entry of the group; the next is its index + 1;
//   - an image restates the group's whole live log in one record: it voids
//     every earlier record of the group (as a reset to its base) and holds
//     the live entries again;
//   - a hard state (term, vote, commit) is a record of the group too,
//     queued like its entries: the term and vote changes of many groups
//     share one write and one fdatasync (docs/decisions/0025);
//   - each group's snapshot marker, compaction point, durable state
//     machine's floor, and its hard state as of its released records: one
//     row of a table in the WAL's metadata (its opaque blob), saved whole
//     and atomically, durable before the call returns, ordered with nothing
//     in the WAL's queue (as LogStore's contract has it for a WAL of its
//     own).
// A group that compacts releases its records before the first it still
// needs (wal::Wal::release), with its compaction point in the same
// metadata write: a segment file goes once every group in it released its
// records.
//
// Hard state: a group's is its row's, overridden by its hard-state records
// at positions >= the row's hard_state_below, the latest in log order
// winning.  Every release that drops records of a group (release(), the
// only way this class releases) writes into the group's row, in the same
// metadata write, the hard state of its last hard-state record below the
// release position (kept in memory from the append on: the hard-state
// trail) and raises hard_state_below to that position.  So the row always
// holds what replaying the group's released records gave, and replaying
// the rest on top of it gives the latest durable hard state, whether or
// not the released records are still on disk (a segment another group
// pins) and wherever a crash falls: before the metadata write, the
// records are all there; after it, the row holds what they said.  The
// records a release may drop are durable (a release never goes past the
// durable end), so the row never holds a hard state a crash could take
// back.
//
// Rewriting forward (docs/decisions/0024): a group that writes nothing
// would pin the oldest segment, and every later one, forever.  When the WAL
// holds more than RewritePolicy::above_segments segment files, and twice
// as many as the last pass that freed some left, a pass (rewrite_pass, off
// the writing thread) asks every group pinning the oldest segment for an
// image of its live log at the head of the log, waits until the images are
// durable, then releases each group's records before its image (one
// metadata write for all of them), and goes on with the next oldest
// segment down to above_segments, never into what it wrote itself.  An image is one record:
// a crash leaves it whole or absent (a torn one is cut at open), and the
// older records stay until it is durable, so a crash at any instant
// replays to the same logs.
//
// Recovery: replaying a group's records in log order rebuilds its log
// exactly; a suffix of them starting at a live entry (or an image)
// rebuilds the same entries from there on, which is all a compacted or
// rewritten group keeps.
//
// Threads: open_group from any thread but never twice at once for one
// group; the stores' contracts are LogStore's.  The WAL's writing thread
// calls each group's after_batch after a batch that completed one of its
// writes, and every group's on_health_change on a change; neither runs
// after the group's store is gone.  rewrite_pass blocks (a write and a
// metadata write): the background thread, or a test's.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "keel/status.hpp"
#include "keel/wal/wal.hpp"
#include "raft/types.hpp"
#include "runtime/group_router.hpp"
#include "runtime/log_store.hpp"
#include "runtime/shared_records.hpp"
#include "runtime/strand_pool.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

// When and how the shared WAL rewrites groups forward (above).
struct RewritePolicy {
    // A pass runs while the WAL holds more segment files than this (0: never).
    std::uint64_t above_segments = 4;
    // A group whose live entries take more bytes than this is not rewritten
    // (it waits for its own snapshot, and keeps the oldest segment
    // meanwhile).
    std::uint64_t max_image_bytes = 1ull << 20;
    // Runs a pass off the WAL's writing thread (returns false if it cannot);
    // null: passes run only when rewrite_pass() is called.
    std::function<bool(std::function<void()>)> run_in_background;
};

// An open group's store as the rewrite pass sees it (shared_log_store.cpp).
class RewritableLog {
public:
    // Called when the image is durable, or could not be made so, with the
    // image's position: the group's records before it may be released.
    using Done = std::function<void(Status, std::uint64_t position)>;
    // Whether rewrite_forward would queue an image now (nothing in flight,
    // few enough live entries; the size in bytes is checked as it reads).
    virtual bool may_rewrite() const = 0;
    // Queues an image of the group's live log (its entries after its
    // compaction point) as the log's next record.  false, with nothing
    // queued, while the group has a write in flight or its live log holds
    // more than kMaxImageEntries entries or `max_bytes` bytes; `done`
    // runs on the WAL's writing thread otherwise.
    virtual Result<bool> rewrite_forward(std::uint64_t max_bytes, Done done) = 0;

protected:
    ~RewritableLog() = default;
};

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
    // The group's hard-state records before this position were released
    // into term, vote and commit above: replay skips them.
    std::uint64_t hard_state_below = 0;
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
        bool packed = false;  // in an image, with the entries beside it
    };
    // Entries restated by an image share its position (`packed`).
    std::vector<Slot> entries;
    raft::Index next = 1;  // the index its next entry takes
    bool any_record = false;
    // Its latest hard-state record at or after its row's hard_state_below.
    std::optional<raft::HardState> hard_state;
    std::uint64_t hard_state_position = 0;
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
    static Result<std::unique_ptr<SharedWal>> open(const std::string& dir, wal::Options options,
                                                   RewritePolicy policy = {});
    // REQUIRES: every group's store is gone.
    ~SharedWal();
    SharedWal(const SharedWal&) = delete;
    SharedWal& operator=(const SharedWal&) = delete;

    // Group `group`'s store, its log as recovered; `hooks` are called until
    // the store goes.  busy while another store of the group is open.
    Result<std::unique_ptr<LogStore>> open_group(GroupId group, Hooks hooks);

    // From now on the applies that one batch's completions schedule on
    // `pool` (the groups' commits) are queued together, as the I/O
    // thread's are (StrandPool::Batch; decision 0036).  Null: one by one.
    // Any thread; `pool` outlives this WAL's writing.
    void batch_completions_on(StrandPool* pool) { completion_pool_.store(pool); }

    wal::Wal& wal() { return *wal_; }
    const std::string& dir() const { return wal_->dir(); }
    // Batches that completed writes of more than one group.
    std::uint64_t shared_batches() const { return shared_batches_.load(); }
    // Groups rewritten forward (images written) since open.
    std::uint64_t rewritten_groups() const { return rewritten_groups_.load(); }

    // While the WAL holds more than policy.above_segments segment files and
    // every group pinning the oldest one is open and may be rewritten:
    // rewrites them forward and releases their older records, until the
    // segment count is down or a group cannot be rewritten now.  A failed
    // WAL's error; ok otherwise (nothing to do included).  Blocks: not on
    // the WAL's writing thread.
    Status rewrite_pass() EXCLUDES(stores_mu_);

    // ---- for the stores (shared_log_store.cpp) ----
    // Queues `records` (their group and everything but the index set) as
    // the log's next ones; their first position in *first.
    Status append(std::vector<wal::Record> records, wal::Wal::Callback done,
                  wal::Wal::Writer writer, std::uint64_t* first) EXCLUDES(append_mu_);
    // A batch completed a write of `group`: its after_batch runs after the
    // batch (writing thread).
    void touched(GroupId group) EXCLUDES(touched_mu_);
    // Queues `hs` as the group's next record (as append), in its hard-state
    // trail until released.
    Status append_hard_state(GroupId group, const raft::HardState& hs, wal::Wal::Callback done,
                             std::uint64_t* position) EXCLUDES(append_mu_, trail_mu_);
    // The group's hard-state record at `position` is durable: the trail
    // forgets those before it (writing thread).
    void hard_state_durable(GroupId group, std::uint64_t position) EXCLUDES(trail_mu_);
    // The group's latest hard state: its last queued hard-state record, or
    // its row.  At open (nothing in flight): the durable one.
    raft::HardState hard_state(GroupId group) const EXCLUDES(table_mu_, trail_mu_);
    GroupMeta meta(GroupId group) const EXCLUDES(table_mu_);
    // Applies `change` to the group's row and saves the table, durable
    // before returning; on failure nothing changed.  too_large when the
    // table outgrows the metadata (wal::kMaxMetadataOpaqueBytes).
    Status update_meta(GroupId group, const std::function<void(GroupMeta&)>& change)
        EXCLUDES(table_mu_);
    // Releases each group's records before its index (wal::Wal::release)
    // in one metadata write that also checkpoints each group's hard state
    // into its row (above, "Hard state") and applies `change` to its row
    // (null: none); on failure nothing changed.  REQUIRES: every index is
    // at most the durable end of the log.
    Status release(std::span<const wal::Release> releases,
                   const std::function<void(GroupMeta&)>& change = {})
        EXCLUDES(table_mu_, trail_mu_);
    void close_group(GroupId group) EXCLUDES(hooks_mu_);
    // The rewrite pass may use the store from attach until detach returns
    // (the store's constructor and destructor).
    void attach(GroupId group, RewritableLog* log) EXCLUDES(stores_mu_);
    void detach(GroupId group) EXCLUDES(stores_mu_);

private:
    SharedWal() = default;
    // Reads the log and rebuilds the logs of `only` (every group: nullopt).
    Status scan(std::optional<GroupId> only, std::map<GroupId, GroupRecovery>& out) const;
    std::uint64_t hard_state_below(GroupId group) const EXCLUDES(table_mu_);
    void after_batch() EXCLUDES(hooks_mu_, touched_mu_, closing_mu_);
    // After a batch: hands a pass to the background when one may be due.
    void maybe_rewrite();
    // One step of a pass: rewrites the groups pinning the oldest segment.
    // *progress: the oldest segment went (or may go at the next release).
    // Stops at a segment that starts at `head` or later (what the pass
    // wrote itself).
    Status rewrite_oldest(std::uint64_t head, bool* progress) EXCLUDES(stores_mu_);
    void on_health_change() EXCLUDES(hooks_mu_);

    std::unique_ptr<wal::Wal> wal_;
    Mutex append_mu_;  // positions are taken in the order appends are queued
    // Saves `table` in the metadata with the releases (none: a plain save).
    Status save_table(std::map<GroupId, GroupMeta>& table, std::span<const wal::Release> releases)
        REQUIRES(table_mu_);
    mutable Mutex table_mu_;  // ordered before trail_mu_
    std::map<GroupId, GroupMeta> table_ GUARDED_BY(table_mu_);
    // Per group, its hard-state records not yet released into its row
    // (position, hard state), in log order: the last durable one and those
    // queued after it.
    using Trail = std::vector<std::pair<std::uint64_t, raft::HardState>>;
    mutable Mutex trail_mu_;
    std::map<GroupId, Trail> trail_ GUARDED_BY(trail_mu_);
    Mutex hooks_mu_;
    std::map<GroupId, Hooks> open_ GUARDED_BY(hooks_mu_);
    // What the first scan found, taken by each group's first open.
    std::map<GroupId, GroupRecovery> recovered_ GUARDED_BY(hooks_mu_);
    std::set<GroupId> scanned_ GUARDED_BY(hooks_mu_);  // taken once
    Mutex touched_mu_;
    std::vector<GroupId> touched_ GUARDED_BY(touched_mu_);
    std::atomic<std::uint64_t> shared_batches_{0};
    std::atomic<StrandPool*> completion_pool_{nullptr};
    RewritePolicy policy_;
    Mutex stores_mu_;
    std::map<GroupId, RewritableLog*> stores_ GUARDED_BY(stores_mu_);
    // A pass is queued or running; the (segments, first index) it last saw.
    std::atomic<bool> pass_due_{false};
    std::atomic<std::uint64_t> pass_seen_segments_{0};
    std::atomic<std::uint64_t> pass_seen_first_{0};
    // Segment files left after the last pass that freed some.
    std::atomic<std::uint64_t> pass_left_segments_{0};
    std::atomic<std::uint64_t> rewritten_groups_{0};
    // Set by the destructor before the WAL goes; after_batch reads the WAL
    // only while it is unset.
    Mutex closing_mu_;
    bool closing_ GUARDED_BY(closing_mu_) = false;
};

}  // namespace keel::runtime
