#include "sim_disk.hpp"

#include <algorithm>

namespace keel::sim {

using raft::Entry;
using raft::Index;
using raft::Term;

// ---- DurableState: recovery's view of the files -------------------------------

bool DurableState::wal_agrees() const {
    if (!f_.snapshot || f_.wal.empty()) return true;
    const Index s = f_.snapshot->index;
    if (s < f_.wal.front().index || s > f_.wal.back().index) return true;
    return f_.wal[s - f_.wal.front().index].term == f_.snapshot->term;
}

Index DurableState::last_index() const {
    const Index s = snapshot_index();
    if (!wal_agrees() || f_.wal.empty() || f_.wal.back().index <= s) return s;
    return f_.wal.back().index;
}

std::optional<Term> DurableState::term_at(Index index) const {
    if (f_.wal.empty() || index <= snapshot_index() || index < f_.wal.front().index ||
        index > f_.wal.back().index || !wal_agrees())
        return std::nullopt;
    return f_.wal[index - f_.wal.front().index].term;
}

const Entry& DurableState::at(Index index) const {
    KEEL_ASSERT(term_at(index).has_value(), "no recovered entry there");
    return f_.wal[index - f_.wal.front().index];
}

std::vector<Entry> DurableState::entries() const {
    std::vector<Entry> out;
    if (!wal_agrees()) return out;
    for (const Entry& e : f_.wal)
        if (e.index > snapshot_index()) out.push_back(e);
    return out;
}

// ---- SimDisk: one group's files ------------------------------------------------

void SimDisk::format(const raft::RestoredState& initial) {
    files_.hard_state = initial.hard_state;
    files_.snapshot = initial.snapshot;
    files_.wal = initial.entries;
    files_.wal_next = files_.wal.empty() ? (initial.snapshot ? initial.snapshot->index + 1 : 1)
                                         : files_.wal.back().index + 1;
    wal_submit_next_ = files_.wal_next;
    flushed_ = files_;
    changed(0);
}

const DiskOp& SimDisk::submit(DiskOp op, std::uint64_t now_us) {
    switch (op.kind) {
        case DiskOpKind::append:
            KEEL_ASSERT(!op.entries.empty() && op.entries.front().index == wal_submit_next_,
                        "an append continues the WAL where the queue leaves it");
            wal_submit_next_ = op.entries.back().index + 1;
            break;
        case DiskOpKind::truncate:
            wal_submit_next_ = std::min(wal_submit_next_, op.index + 1);
            break;
        case DiskOpKind::reset:
            wal_submit_next_ = op.index;
            break;
        case DiskOpKind::snapshot_file:
            break;
    }
    const DiskOp& queued = drive_.submit(group_, std::move(op), now_us);
    if (queued.kind != DiskOpKind::snapshot_file) wal_last_submitted_ = queued.id;
    return queued;
}

const DiskOp* SimDisk::head(bool background) const {
    return drive_.head(background);
}
const std::deque<DiskOp>& SimDisk::wal_queue() const {
    return drive_.wal_queue();
}
std::optional<std::string> SimDisk::complete(std::uint64_t id, DiskOp* done) {
    return drive_.complete(id, done);
}
bool SimDisk::wal_completed_through(std::uint64_t id) const {
    return drive_.wal_completed_through(id);
}
bool SimDisk::wal_idle() const {
    return drive_.wal_idle();
}
void SimDisk::crash() {
    drive_.crash();
}
void SimDisk::calm(std::uint64_t fsync_max_us) {
    drive_.calm(fsync_max_us);
}
void SimDisk::hold() {
    drive_.hold();
}
void SimDisk::release() {
    drive_.release();
}
bool SimDisk::held() const {
    return drive_.held();
}

void SimDisk::changed(Index from) {
    ++version_;
    changed_from_ = std::min(changed_from_, from);
}

void SimDisk::flushed() {
    // A lying disk flushes for real only now and then.
    if (!drive_.lying_ || drive_.rng_.chance(0.05)) flushed_ = files_;
}

std::optional<std::string> SimDisk::apply(const DiskOp& op) {
    auto& wal = files_.wal;
    switch (op.kind) {
        case DiskOpKind::append: {
            const Index first = op.entries.front().index;
            if (first != files_.wal_next) {
                return std::string("append of entry ") + std::to_string(first) +
                       " where the WAL continues at " + std::to_string(files_.wal_next);
            }
            for (const Entry& e : op.entries) wal.push_back(e);
            files_.wal_next = wal.back().index + 1;
            changed(first);
            return std::nullopt;
        }
        case DiskOpKind::truncate:
            // wal::Wal::truncate_after: a no-op at or past the last record.
            while (!wal.empty() && wal.back().index > op.index) wal.pop_back();
            if (op.index + 1 < files_.wal_next) files_.wal_next = op.index + 1;
            changed(op.index + 1);
            return std::nullopt;
        case DiskOpKind::reset:
            wal.clear();
            files_.wal_next = op.index;
            changed(0);
            return std::nullopt;
        case DiskOpKind::snapshot_file: {
            // The file is published (renamed into place) whether or not it
            // is the newest; recovery takes the newest.
            if (files_.snapshot && files_.snapshot->index >= op.meta.index) return std::nullopt;
            files_.snapshot = op.meta;
            files_.snapshot_data = op.data;
            // Compaction behind it (runtime: LogStore::compact_through), up to
            // the last durable record.
            wal.erase(wal.begin(), std::find_if(wal.begin(), wal.end(), [&](const Entry& e) {
                          return e.index > op.meta.index;
                      }));
            changed(0);
            return std::nullopt;
        }
    }
    return "unknown disk operation";
}

void SimDisk::save_hard_state(const raft::HardState& hs) {
    files_.hard_state = hs;
    changed(UINT64_MAX);
    flushed();
}

void SimDisk::install_snapshot_file(const raft::SnapshotMeta& meta, const std::string& data) {
    files_.snapshot = meta;
    files_.snapshot_data = data;
    changed(0);
    flushed();
}

void SimDisk::save_snapshot_marker(const raft::SnapshotMeta& meta) {
    // The marker itself lives in the files as the snapshot; what meta adds
    // is the commit index (runtime: LogStore::reset_after_snapshot).
    files_.hard_state.commit = std::max(files_.hard_state.commit, meta.index);
    changed(UINT64_MAX);
    flushed();
}

void SimDisk::crashed(std::uint64_t last_id) {
    // The lost writes will never complete: nothing after a restart may wait for them.
    wal_last_submitted_ = last_id;
    if (drive_.lying_) files_ = flushed_;
    wal_submit_next_ = files_.wal_next;
    changed(0);
}

raft::RestoredState SimDisk::restored() const {
    const DurableState d = durable();
    raft::RestoredState r;
    r.hard_state = files_.hard_state;
    r.snapshot = files_.snapshot;
    r.entries = d.entries();
    const Index s = d.snapshot_index();
    r.applied = s;
    // runtime/bootstrap.cpp: the commit index clamped into the recovered
    // log (the checkers report a durable commit past it as a violation
    // before any restart), and the term at least the last entry's.
    const Index last = d.last_index();
    r.hard_state.commit = std::clamp(r.hard_state.commit, s, last);
    const Term last_term =
        r.entries.empty() ? (files_.snapshot ? files_.snapshot->term : 0) : r.entries.back().term;
    if (r.hard_state.term < last_term) {
        r.hard_state.term = last_term;
        r.hard_state.vote = raft::kNoNode;
    }
    return r;
}

raft::RestoredState SimDisk::recover() {
    const DurableState d = durable();
    const Index expected_next = d.last_index() + 1;
    if (d.wal_replaced() || files_.wal_next != expected_next) {
        // A snapshot from the leader was published but the log reset after
        // it had not completed: recovery finishes it (synchronously), also
        // when the old log ends right at the snapshot (seed 53021 of
        // --nodes 3: its record there voided every later one).
        files_.wal.clear();
        files_.wal_next = expected_next;
        wal_submit_next_ = expected_next;
        changed(0);
        flushed();
    }
    return restored();
}

// ---- SimDrive: the process's queues and faults ------------------------------------

SimDrive::SimDrive(const SwarmParams& params, bool lying, Rng rng, bool batching, bool early_ack)
    : params_(params), lying_(lying), batching_(batching), early_ack_(early_ack), rng_(rng) {}

SimDisk& SimDrive::group(std::uint64_t group) {
    auto& disk = groups_[group];
    if (!disk) disk = std::make_unique<SimDisk>(*this, group);
    return *disk;
}

std::uint64_t SimDrive::latency_us() {
    const std::uint64_t fsync_max =
        calm_fsync_max_us_ == 0
            ? params_.fsync_max_us
            : std::max(params_.fsync_min_us, std::min(params_.fsync_max_us, calm_fsync_max_us_));
    return rng_.range(params_.fsync_min_us, fsync_max);
}

const DiskOp& SimDrive::submit(std::uint64_t group, DiskOp op, std::uint64_t now_us) {
    KEEL_ASSERT(wal_.size() + background_.size() < kPendingOpsMax, "disk queue over its limit");
    op.group = group;
    op.id = next_id_++;
    const bool background = op.kind == DiskOpKind::snapshot_file;
    if (!background && batching_ && !wal_.empty() && wal_.back().batch != wal_.front().batch) {
        // The batch behind the one being synced is still open: this write
        // rides on its fsync.
        op.batch = wal_.back().batch;
        op.done_us = wal_.back().done_us;
        if (!tail_shared_ && op.group != tail_group_) {
            tail_shared_ = true;
            ++shared_batches_;
        }
    } else {
        std::uint64_t& last_done = background ? background_last_done_us_ : wal_last_done_us_;
        op.batch = next_batch_++;
        op.done_us = std::max(last_done, now_us + latency_us());
        last_done = op.done_us;
        if (!background) {
            ++batches_;
            tail_group_ = group;
            tail_shared_ = false;
        }
    }
    if (background) {
        background_.push_back(std::move(op));
        return background_.back();
    }
    wal_last_submitted_ = op.id;
    wal_.push_back(std::move(op));
    return wal_.back();
}

const DiskOp* SimDrive::head(bool background) const {
    const std::deque<DiskOp>& q = background ? background_ : wal_;
    return q.empty() ? nullptr : &q.front();
}

std::optional<std::string> SimDrive::complete(std::uint64_t id, DiskOp* done) {
    std::deque<DiskOp>& q = !wal_.empty() && wal_.front().id == id ? wal_ : background_;
    KEEL_ASSERT(!q.empty() && q.front().id == id,
                "disk writes complete in the order they were queued");
    KEEL_ASSERT(&q != &wal_ || !held_, "a held WAL completes nothing");
    *done = std::move(q.front());
    q.pop_front();
    if (&q == &wal_) {
        wal_last_completed_ = std::max(wal_last_completed_, id);
        if (early_ack_ && !wal_.empty() && wal_.front().batch != done->batch) {
            // The injected bug: the batch queued behind this fsync counted
            // as synced by it.
            for (const DiskOp& next : wal_) {
                if (next.batch != wal_.front().batch) break;
                wal_last_completed_ = std::max(wal_last_completed_, next.id);
            }
        }
    }
    SimDisk& disk = group(done->group);
    auto error = disk.apply(*done);
    disk.flushed();
    return error;
}

void SimDrive::crash() {
    // The WAL batch in progress may have partly reached the disk: a prefix
    // of its writes, in the order they were queued, across groups.
    if (!wal_.empty() && rng_.chance(params_.torn_write_p)) {
        const std::uint64_t batch = wal_.front().batch;
        for (DiskOp& op : wal_) {
            if (op.batch != batch) break;
            SimDisk& disk = group(op.group);
            if (op.kind == DiskOpKind::append) {
                const std::size_t whole = op.entries.size();
                op.entries.resize(rng_.range(0, whole));
                if (!op.entries.empty()) (void)disk.apply(op);
                if (op.entries.size() < whole) break;
            } else if (rng_.chance(0.5)) {
                (void)disk.apply(op);  // the fence was durable: recovery finishes it
            } else {
                break;
            }
        }
    }
    wal_.clear();
    background_.clear();
    // The lost writes will never complete: nothing after a restart may wait for them.
    wal_last_submitted_ = wal_last_completed_ = next_id_ - 1;
    wal_last_done_us_ = background_last_done_us_ = 0;
    stalled_ = false;
    for (auto& [id, disk] : groups_) disk->crashed(next_id_ - 1);
}

}  // namespace keel::sim
