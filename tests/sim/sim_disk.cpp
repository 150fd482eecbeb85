#include "sim_disk.hpp"

#include <algorithm>

namespace keel::sim {

using raft::Entry;
using raft::Index;
using raft::Term;

Index DurableState::last_index() const {
    if (!log.empty()) return log.back().index;
    return snapshot ? snapshot->index : 0;
}

std::optional<Term> DurableState::term_at(Index index) const {
    if (log.empty() || index < log.front().index || index > log.back().index) return std::nullopt;
    return log[index - log.front().index].term;
}

SimDisk::SimDisk(const SwarmParams& params, bool lying, Rng rng)
    : params_(params), lying_(lying), rng_(rng) {}

void SimDisk::format(const raft::RestoredState& initial) {
    durable_.hard_state = initial.hard_state;
    durable_.snapshot = initial.snapshot;
    durable_.log = initial.entries;
    flushed_ = durable_;
}

const DiskOp& SimDisk::submit(DiskOp op, std::uint64_t now_us) {
    KEEL_ASSERT(pending_.size() < kPendingOpsMax, "disk queue over its limit");
    op.id = next_id_++;
    const std::uint64_t fsync_max =
        calm_fsync_max_us_ == 0
            ? params_.fsync_max_us
            : std::max(params_.fsync_min_us, std::min(params_.fsync_max_us, calm_fsync_max_us_));
    const std::uint64_t latency = rng_.range(params_.fsync_min_us, fsync_max);
    op.done_us = std::max(last_done_us_, now_us + latency);
    last_done_us_ = op.done_us;
    pending_.push_back(std::move(op));
    return pending_.back();
}

std::optional<std::string> SimDisk::complete(std::uint64_t id, DiskOp* done) {
    KEEL_ASSERT(!pending_.empty() && pending_.front().id == id,
                "disk writes complete in the order they were queued");
    *done = std::move(pending_.front());
    pending_.pop_front();
    last_completed_ = id;
    auto error = apply(*done);
    // A lying disk flushes for real only now and then.
    if (!lying_ || rng_.chance(0.05)) flushed_ = durable_;
    return error;
}

std::optional<std::string> SimDisk::apply(const DiskOp& op) {
    switch (op.kind) {
        case DiskOpKind::batch: {
            if (op.hard_state) durable_.hard_state = *op.hard_state;
            if (op.entries.empty()) return std::nullopt;
            const Index first = op.entries.front().index;
            const Index snap = durable_.snapshot ? durable_.snapshot->index : 0;
            // Truncate the stored log after first - 1 (when it goes that far).
            while (!durable_.log.empty() && durable_.log.back().index >= first)
                durable_.log.pop_back();
            for (const Entry& e : op.entries) {
                if (e.index <= snap) continue;  // already covered by the snapshot
                if (e.index != durable_.last_index() + 1) {
                    return std::string("append of entry ") + std::to_string(e.index) +
                           " leaves a gap: the stored log ends at " +
                           std::to_string(durable_.last_index());
                }
                durable_.log.push_back(e);
            }
            return std::nullopt;
        }
        case DiskOpKind::install_snapshot:
            durable_.snapshot = op.meta;
            durable_.snapshot_data = op.data;
            durable_.log.clear();  // Actions contract: "drop the stored log"
            return std::nullopt;
        case DiskOpKind::save_snapshot: {
            if (durable_.snapshot && durable_.snapshot->index >= op.meta.index) return std::nullopt;
            if (durable_.last_index() < op.meta.index) {
                return std::string("snapshot at ") + std::to_string(op.meta.index) +
                       " saved past the stored log (ends at " +
                       std::to_string(durable_.last_index()) + ")";
            }
            durable_.snapshot = op.meta;
            durable_.snapshot_data = op.data;
            auto& log = durable_.log;
            log.erase(log.begin(), std::find_if(log.begin(), log.end(), [&](const Entry& e) {
                          return e.index > op.meta.index;
                      }));
            return std::nullopt;
        }
    }
    return "unknown disk operation";
}

void SimDisk::crash() {
    pending_.clear();
    // The lost writes will never complete: nothing after a restart may wait for them.
    last_completed_ = next_id_ - 1;
    last_done_us_ = 0;
    if (lying_) durable_ = flushed_;
}

raft::RestoredState SimDisk::restored() const {
    raft::RestoredState r;
    r.hard_state = durable_.hard_state;
    r.snapshot = durable_.snapshot;
    r.entries = durable_.log;
    r.applied = durable_.snapshot ? durable_.snapshot->index : 0;
    // A snapshot only ever holds committed entries; the lazily persisted
    // commit may lag behind it.
    r.hard_state.commit = std::max(r.hard_state.commit, r.applied);
    return r;
}

}  // namespace keel::sim
