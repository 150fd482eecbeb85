// runtime/inline_policy.hpp — which thread does which work itself instead
// of handing it to another thread, and when: one thread wakeup less on the
// write path each time.
//
//   - apply inline: a small committed batch is applied by the thread that
//     committed it, once it lets go of the core lock, instead of waking the
//     apply thread: the WAL flusher in single-node mode (after its group
//     commit), the I/O thread in cluster mode (after a message it stepped
//     in).  Only when the apply thread is idle with nothing queued, the WAL
//     has nothing queued, and the batch is predicted to fit the budget
//     (ApplyWorker::claim_inline);
//   - write inline: a follower's I/O thread writes and fdatasyncs a small
//     batch of entries from the leader itself (wal::Wal::Writer::caller),
//     once for all the messages it has in hand (one read of the socket
//     often brings several appends), not once per message; a leader's I/O
//     thread likewise writes the small batch that the proposers' callbacks
//     it ran inline proposed, after sending it to the followers;
//   - gather: proposals that proposal callbacks submit on the apply thread
//     wait for the end of the batch (or a chunk), to share one WAL append.
//
// docs/runtime.md ("Inline apply", "The cluster write path") says why each
// bound is what it is; docs/decisions/0004-runtime-write-path-tuning.md has
// the measurements.
//
// Threads: the begin_/end_ pairs mark what the calling thread is doing for
// this replica (thread-locals); offer() runs under the core lock; the
// apply_* calls run after it is let go, on the thread that claimed.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "keel/wal/wal.hpp"
#include "runtime/apply_worker.hpp"
#include "runtime/io_apply_cutoff.hpp"

namespace keel::runtime {

// Single-node mode: a committed batch predicted to apply (with its
// proposers' callbacks) within about one write's time to durability (the
// smoothed time from append to durable, within these bounds) is applied by
// the WAL flusher right after its fsync.  A write from elsewhere that
// arrives meanwhile waits for the apply, at most about as long as it would
// wait behind one more fsync.  A larger batch goes to the apply thread.
inline constexpr std::uint64_t kSingleModeInlineApplyMinNs = 50'000;
inline constexpr std::uint64_t kSingleModeInlineApplyMaxNs = 2'000'000;
// Cluster mode: the I/O thread applies a committed batch predicted to take
// at most this long (it takes every member's messages: the budget is of the
// order of stepping one in).  An inline batch that takes longer than the
// limit (a slow state machine, mispredicted) turns inline apply on the I/O
// thread off, for a number of batches that doubles with each overrun and
// for good at the fourth (io_apply_cutoff.hpp): a stalled I/O thread delays
// heartbeats, and a long enough stall costs the leadership.  Time the
// thread was preempted does not count.
inline constexpr std::uint64_t kIoInlineApplyNs = 20'000;
inline constexpr std::uint64_t kIoInlineApplyLimitNs = 1'000'000;
// Cluster mode: a follower's I/O thread writes up to this many entries
// itself, as one batch after every message it has received so far is
// stepped in, unless a batch is being written already; beyond it appends go
// to the flusher, so that the I/O thread takes in the leader's next
// messages while they are written.
inline constexpr std::size_t kFollowerIoWriteMaxEntries = 8;
// Proposals submitted from inside a batch of proposal callbacks are handed
// to the core (one WAL append) at the batch's end, and in single-node mode
// also every this many, so that the WAL starts on the first chunk while the
// apply thread answers the rest.  Not in cluster mode: there each chunk is
// also an append to every follower, with its own write, fdatasync and
// acknowledgement on each, and those cost CPU that the members share.
inline constexpr std::size_t kDeferredProposalsChunk = 128;

class InlinePolicy {
public:
    // `enabled`: NodeOptions::inline_apply (false: every apply on the apply
    // thread; writing inline and gathering are not affected).
    explicit InlinePolicy(bool enabled) : enabled_(enabled) {}
    InlinePolicy(const InlinePolicy&) = delete;
    InlinePolicy& operator=(const InlinePolicy&) = delete;

    // Cluster mode: the core needs ticks (a member to heartbeat or to elect
    // against).  Set under the core lock, read anywhere.
    void set_cluster_mode(bool cluster) { cluster_.store(cluster, std::memory_order_relaxed); }
    bool cluster_mode() const { return cluster_.load(std::memory_order_relaxed); }

    // ---- what the calling thread is doing for this replica ----
    // The WAL flusher commits what its group commit made durable.
    void begin_flusher_commit();
    void end_flusher_commit();
    // The I/O thread steps in a message (and then writes and applies).
    void begin_message();
    void end_message();
    bool handling_message() const;
    // The I/O thread applies what it claimed: the proposals those
    // callbacks make are a leader's entries it may write itself.
    void begin_io_apply();
    void end_io_apply();
    // The apply thread runs a batch of proposal callbacks.
    void begin_callbacks();
    void end_callbacks();
    bool in_callbacks() const;
    // A proposal submitted now, with `queued` waiting in the inbox, waits
    // for the end of the callbacks' batch (kDeferredProposalsChunk).
    bool gathers(std::size_t queued) const;

    // ---- applying inline ----
    // Under the core lock: `item` was committed.  Returns true if this thread
    // claimed it (moved here, applied by apply_claimed_* once the lock is let
    // go, or, on an I/O thread with a write of its own scheduled, after that
    // write); false: the caller queues it for the apply thread.
    bool offer(ApplyEntries& item, ApplyWorker& apply, const wal::Wal& wal);
    // The WAL flusher, no lock held: applies what it claimed.
    void apply_flusher_claims(ApplyWorker& apply);
    // The I/O thread, no lock held: applies what it claimed.  Returns how
    // long it took if that overran kIoInlineApplyLimitNs and so turned
    // applying on the I/O thread off (for the caller to log, with
    // io_apply_off_batches()), else 0.
    std::uint64_t apply_io_claims(ApplyWorker& apply);
    // After apply_io_claims returned non-zero: for how many committed
    // batches inline apply on the I/O thread is off (kIoInlineApplyOffForGood:
    // for good).
    std::uint64_t io_apply_off_batches() const { return io_off_batches_; }

    // ---- writing inline ----
    // Under the core lock, on an append of `entries` entries: true if the
    // I/O thread writes it itself, with the others it queued since its last
    // write, up to kFollowerIoWriteMaxEntries in all: a follower's, while
    // the I/O thread steps in a message; a leader's, while it applies
    // inline (the proposals its callbacks made).
    bool io_writes(bool follower, std::size_t entries);
    // The I/O thread, after stepping a message in or applying inline: true
    // (once per write) if it queued entries to write and has not yet
    // arranged to write them.  The caller then calls take_io_write(): a
    // follower's once the messages in hand are stepped in (a post to its
    // own queue), so that they share one write; a leader's at once.
    bool io_write_to_schedule();
    // The I/O thread, no lock held: true (once) if it has entries to write.
    bool take_io_write();
    // The I/O thread: a write of its own is scheduled and not yet taken.
    // What it claimed meanwhile is applied after that write, not before.
    bool io_write_scheduled() const { return io_write_scheduled_; }

    // The WAL's writing thread: a write took `ns` from append to durable.
    void record_durable_ns(std::uint64_t ns);

private:
    std::uint64_t budget_ns() const;

    const bool enabled_;
    std::atomic<bool> cluster_{false};
    // Batches claimed by the flusher (filled under the core lock by the
    // flusher only, applied by it once it lets go), and by the I/O thread.
    // One claim at a time (ApplyWorker::claim_inline): at most one of the
    // two holds entries, and each is touched by its own thread only.
    ApplyItems flusher_claims_;
    ApplyItems io_claims_;
    IoApplyCutoff io_cutoff_;
    std::uint64_t io_off_batches_ = 0;  // I/O thread only: the last cutoff's
    // I/O thread only: entries queued for its next write, and whether that
    // write is scheduled.
    bool io_write_queued_ = false;
    std::size_t io_write_entries_ = 0;
    bool io_write_scheduled_ = false;
    // Append to durable, smoothed (7/8 old, 1/8 new): the flusher's budget.
    std::atomic<std::uint64_t> durable_ns_smoothed_{kSingleModeInlineApplyMinNs};
};

}  // namespace keel::runtime
