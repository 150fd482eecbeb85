// The Replica and its disk: a full disk as a state (the no_space alarm,
// retried in the background, cleared by itself), a failed write or fsync of
// data as fail-stop, snapshots written and received with their checks.
// docs/runtime.md, "A full disk" and "Failure", says what a user sees.
//
// Out of space is recoverable only where nothing unsynced is at stake: a
// new file that nothing refers to yet could not be made (the WAL's next
// segment or metadata update, a snapshot file).  Then the node refuses
// writes (no_space: proposals and membership changes), keeps serving reads,
// raises kAlarmNoSpace, and every kNoSpaceRetryMs retries what failed; a
// leader of a cluster hands leadership to another voter.  When every cause
// is gone the alarm clears and writes resume, without a restart.
#include <algorithm>

#include <fmt/format.h>
#include "raft/refusal.hpp"
#include "runtime/replica.hpp"
#include "runtime/storage_health.hpp"

namespace keel::runtime {

namespace {

// A snapshot is retried once about as much room as the failed attempt had
// written (plus this) is free, if the file system says how much is free.
constexpr std::uint64_t kSnapshotRetryMarginBytes = 1 << 20;

std::string cause_names(unsigned causes) {
    std::string out;
    auto add = [&](unsigned bit, const char* name) {
        if ((causes & bit) == 0) return;
        if (!out.empty()) out += ", ";
        out += name;
    };
    add(kNoSpaceWal, "the WAL's next segment or metadata");
    add(kNoSpaceHardState, "the term and vote");
    add(kNoSpaceSnapshot, "a snapshot");
    add(kNoSpaceCompaction, "the log's compaction");
    return out;
}

}  // namespace

void Replica::on_wal_health() {
    if (halted()) return;
    if (wal_->failed()) return fail_stop(wal_->failure());
    if (wal_->no_space()) {
        raise_no_space(kNoSpaceWal, Status(ErrorCode::no_space,
                                           "the WAL has no room for its next segment or a "
                                           "metadata update in " +
                                               wal_->dir()));
    } else {
        clear_no_space(kNoSpaceWal);
    }
    run_core();
}

void Replica::persist_hard_state(const raft::HardState& hs) {
    // A commit-only change is saved lazily (at stop, or with the next one).
    if (!locked_.gate.needs_save(hs)) return;
    if (!log_->queues_hard_state()) {
        (void)save_unsaved_hard_state();
        return;
    }
    // A record of the shared WAL: the messages wait for it in the gate.  A
    // full disk holds it in the WAL's queue (kNoSpaceWal, retried by the
    // WAL); a failed write fails the replica (on_wal_write_done).
    const std::uint64_t seq = locked_.gate.hard_state_queued();
    Status s = log_->queue_hard_state(locked_.gate.hard_state(),
                                      [this, seq](Status st) { on_wal_write_done(seq, st); });
    if (!s.ok()) return fail_stop(s);
    (void)locked_.gate.saved();
}

bool Replica::save_unsaved_hard_state() {
    Status s = log_->save_hard_state(locked_.gate.hard_state());
    if (s.ok()) {
        if (locked_.gate.saved()) {
            log(LogLevel::info, fmt::format("term {} and vote saved: messages flow again",
                                            locked_.gate.hard_state().term));
        }
        clear_no_space(kNoSpaceHardState);
        return true;
    }
    if (s.code() != ErrorCode::no_space) {
        fail_stop(s);
        return false;
    }
    // Nothing that may rest on the new term or vote leaves until it is on
    // disk (Figure 2): every message is dropped meanwhile (send_messages).
    locked_.gate.save_failed();
    raise_no_space(kNoSpaceHardState, s);
    return false;
}

void Replica::raise_no_space(unsigned cause, const Status& why) {
    const unsigned before = health_.no_space_causes.load();
    if ((before & cause) != 0) return;
    health_.no_space_causes.store(before | cause);
    log(LogLevel::warn, fmt::format("out of disk space ({}): {}; writes are refused with no_space, "
                                    "reads go on, retrying every {} ms",
                                    cause_names(cause), why.to_string(), kNoSpaceRetryMs));
    if (before != 0) return;
    health_.no_space_transfers = 0;
    to_io([this] { timers_.no_space->set_needed(true); });
    step_aside_if_full();
    publish_status();
}

void Replica::clear_no_space(unsigned cause) {
    const unsigned before = health_.no_space_causes.load();
    if ((before & cause) == 0) return;
    const unsigned after = before & ~cause;
    health_.no_space_causes.store(after);
    if (after != 0) return;
    log(LogLevel::info, "disk space is back: writes are accepted again");
    to_io([this] { timers_.no_space->set_needed(false); });
    publish_status();
}

void Replica::on_no_space_tick() {
    if (halted()) return;
    if (!locked_.gate.may_send() && !save_unsaved_hard_state()) {
        if (locked_.failed) return;
    }
    const unsigned causes = health_.no_space_causes.load();
    if ((causes & kNoSpaceSnapshot) != 0 && !health_.snapshot_retry_in_flight) {
        auto free = snapshots_->available_bytes();
        if (!free.ok() || *free > health_.snapshot_bytes_needed) {
            health_.snapshot_retry_in_flight = true;
            ApplySnapshot retry;
            retry.again = true;
            retry.done = [this](Status) {
                with_core([this]()
                              REQUIRES(core_lock_) { health_.snapshot_retry_in_flight = false; });
            };
            apply_->enqueue(std::move(retry));
        }
    }
    if ((causes & kNoSpaceCompaction) != 0 && !health_.compaction_retry_in_flight) {
        health_.compaction_retry_in_flight = true;
        const std::uint64_t generation = log_->generation();
        if (!seat_.background.submit([this, generation] { compact_log(generation); }))
            health_.compaction_retry_in_flight = false;
    }
    step_aside_if_full();
    on_wal_health();  // the WAL retries by itself (its report may be on its way); runs the core
}

// Dissertation §3.10's transfer, for a leader that cannot write: the voter
// that has acknowledged the most is the likeliest to have room.
void Replica::step_aside_if_full() {
    if (health_.no_space_causes.load() == 0 || !inline_.cluster_mode() || locked_.transfer ||
        core_->role() != raft::Role::leader || health_.no_space_transfers >= kMaxNoSpaceTransfers)
        return;
    raft::NodeId target = 0;
    raft::Index best = 0;
    for (const raft::PeerProgress& p : core_->progress()) {
        if (p.id == options_.id || !p.voter) continue;
        if (target == 0 || p.match > best) {
            target = p.id;
            best = p.match;
        }
    }
    if (target == 0 || !core_->transfer_leadership(target).ok()) return;
    ++health_.no_space_transfers;
    log(LogLevel::warn, fmt::format("out of disk space: handing leadership to node {}", target));
    const std::uint64_t ticks =
        2 * (options_.election_timeout_max_ms / options_.heartbeat_interval_ms + 1);
    locked_.transfer = PendingTransfer{
        target,
        [this, target](Status s) {
            if (!s.ok())
                log(LogLevel::warn,
                    fmt::format("handing leadership to node {}: {}", target, s.to_string()));
        },
        ticks};
    // The caller runs the core (for the transfer's messages): this may be
    // called while a batch of output is being carried out.
}

void Replica::write_snapshot(SnapshotFunction fn, const raft::SnapshotMeta& meta,
                             Durability durability, std::uint64_t generation,
                             const std::function<void(Status)>& done) {
    Status s;
    bool out_of_space = false;
    bool io_failed = false;        // a write or fsync of the file failed: fail-stop
    bool durable_changed = false;  // a snapshot became durable: the log may be compacted
    std::uint64_t written = 0;
    auto writer = snapshots_->begin();
    if (!writer.ok()) {
        s = writer.status();
        out_of_space = s.code() == ErrorCode::no_space;
        io_failed = !out_of_space;
    } else {
        s = fn(*writer.value());
        if (s.ok()) {
            auto published = snapshots_->publish(*writer.value(), meta, durability);
            if (!published.ok()) s = published.status();
            // (A deferred one replacing a durable file of its name is durable.)
            if (published.ok()) durable_changed = published->durable;
        }
        written = writer.value()->data_bytes();
        out_of_space = writer.value()->out_of_space();
        io_failed = writer.value()->io_failed();
        writer.value().reset();  // deletes an unpublished file: its space back
    }
    if (out_of_space && s.code() != ErrorCode::no_space)
        s = Status(ErrorCode::no_space,
                   fmt::format("writing the snapshot at {}: {}", meta.index, s.to_string()));
    // Crash window: a deferred snapshot may be lost in a power loss until
    // flushed; the log is compacted only behind the older durable one, so a
    // restart finds a durable snapshot that the log continues either way.
    if (s.ok() && !durable_changed && snapshot_flush_due()) {
        s = snapshots_->flush();
        io_failed = !s.ok();
        durable_changed = s.ok();
    }
    // Behind the older durable snapshot, the log may go (one metadata
    // write; the WAL deletes the files on its own thread).
    if (durable_changed) compact_log(generation);
    with_core([&]() REQUIRES(core_lock_) {
        if (halted()) return;
        if (io_failed) return fail_stop(s);
        if (out_of_space) {
            health_.snapshot_bytes_needed = written + kSnapshotRetryMarginBytes;
            raise_no_space(kNoSpaceSnapshot, s);
        } else if (s.ok()) {
            clear_no_space(kNoSpaceSnapshot);
            on_snapshot_written(meta);
        }
        run_core();
    });
    done(s);
}

bool Replica::snapshot_flush_due() const {
    if (snapshots_->deferred_publishes() >= kMaxDeferredSnapshots) return true;
    // The flush makes the newest durable snapshot the fallback, behind
    // which the log is compacted: worth it once that frees a segment file.
    // With none durable yet, once the newest covers a segment file (the
    // next flush then frees it).
    std::optional<raft::Index> behind = snapshots_->durable_index();
    if (!behind) {
        std::optional<SnapshotFile> newest = snapshots_->latest();
        if (!newest) return false;
        behind = newest->meta.index;
    }
    return log_->compaction_frees(*behind);
}

void Replica::follow_durable_state_machine(raft::Index durable) {
    health_.sm_durable_seen = durable;
    auto floor = core_->on_state_machine_durable(durable);
    if (!floor.ok()) return;  // behind what the core dropped already: nothing to follow
    // The WAL only once a whole segment file can go: moving its floor alone
    // costs a metadata write (two fsyncs) and frees nothing.
    if (!log_->compaction_frees(durable) || health_.floor_compaction_in_flight) return;
    // Crash window: the point is durable before the log is compacted to it
    // (compact_log, background thread); a restart in between finds the
    // point with the entries still behind it, which it skips.
    if (Status s = log_->save_floor(*floor); !s.ok()) {
        if (s.code() == ErrorCode::no_space) return;  // the next batch tries again
        on_wal_health();
        if (!locked_.failed) fail_stop(s);
        return;
    }
    health_.saved_floor.store(durable);
    health_.floor_compaction_in_flight = true;
    const std::uint64_t generation = log_->generation();
    if (!seat_.background.submit([this, generation] { compact_log(generation); }))
        health_.floor_compaction_in_flight = false;
}

void Replica::compact_log(std::uint64_t generation) {
    Status s;
    // Behind the older kept snapshot (a restart may fall back to it), or
    // behind what a durable state machine holds, whichever is further.
    raft::Index through = health_.saved_floor.load();
    if (const std::optional<raft::Index> fallback = snapshots_->fallback_index())
        through = std::max(through, *fallback);
    if (through > 0) s = log_->compact_through(through, generation);
    with_core([&]() REQUIRES(core_lock_) {
        health_.compaction_retry_in_flight = false;
        health_.floor_compaction_in_flight = false;
        if (halted()) return;
        if (s.code() == ErrorCode::no_space) {
            raise_no_space(kNoSpaceCompaction, s);
        } else if (s.ok()) {
            clear_no_space(kNoSpaceCompaction);
        } else {
            // The WAL failed (it reports that itself); anything else is ours.
            on_wal_health();
            if (!locked_.failed) fail_stop(s);
        }
        run_core();
    });
}

void Replica::verify_received_snapshot(raft::Message message, std::string path) {
    Status checked;
    if (message.snapshot) {
        auto verified = SnapshotStore::verify(snapshots_->file_system(), path, &*message.snapshot);
        if (!verified.ok()) checked = verified.status();
    }
    if (!checked.ok()) {
        log(LogLevel::warn,
            fmt::format(
                "discarding a snapshot received from node {}: {} (the leader will send it again)",
                message.from, checked.to_string()));
        board_.snapshots_rejected.fetch_add(1);  // after the log line: counted means logged
        count_rejection(raft::kRefusedMalformed, fmt::format("snapshot from node {}: {}",
                                                             message.from, checked.to_string()));
        (void)snapshots_->file_system().remove(path);
        return;
    }
    with_core(
        [&]() REQUIRES(core_lock_) { on_snapshot_received(std::move(message), std::move(path)); });
}

}  // namespace keel::runtime
