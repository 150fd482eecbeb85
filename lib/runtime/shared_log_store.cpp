// One group's LogStore on its process's shared WAL (shared_wal.hpp has the
// layout): its live entries' positions as runs, its hard state as records
// (queued with its entries), releases for compaction, and images of its
// live log for the rewrite pass.
#include <algorithm>
#include <future>
#include <memory>
#include <utility>

#include <fmt/format.h>

#include "keel/ring_queue.hpp"
#include "runtime/shared_wal.hpp"

namespace keel::runtime {

namespace {

// Consecutive live entries at consecutive positions, or (packed) all in
// the one image record at `position`.
struct Run {
    raft::Index first = 0;
    std::uint64_t position = 0;
    std::uint64_t count = 0;
    bool packed = false;
    raft::Index end() const { return first + count; }
    // The position of the record holding entry `index` (in the run).
    std::uint64_t position_of(raft::Index index) const {
        return packed ? position : position + (index - first);
    }
    // The position after the run's last record.
    std::uint64_t next_position() const { return packed ? position + 1 : position + count; }
};

class SharedLogStore final : public LogStore, public RewritableLog {
public:
    SharedLogStore(SharedWal& shared, GroupId group, GroupRecovery recovered);
    // Waits for the group's writes in flight, then leaves the WAL.
    ~SharedLogStore() override;

    bool fresh() const override { return !any_record_ && shared_.meta(group_) == GroupMeta{}; }
    raft::HardState hard_state() const override { return shared_.hard_state(group_); }
    Result<std::vector<raft::Entry>> entries_after(raft::Index snapshot_index,
                                                   raft::Term snapshot_term) const override;
    Result<bool> replaced_by_snapshot(raft::Index index, raft::Term term) const override;
    raft::Index first_index() const override;
    raft::Index next_index() const override {
        MutexLock lock(shape_mu_);
        return next_;
    }
    bool empty() const override {
        MutexLock lock(shape_mu_);
        return runs_.empty() && next_ == 1;
    }
    void forget_recovered() override { std::vector<raft::Entry>().swap(recovered_); }
    Status append(std::vector<raft::Entry>& entries, wal::Wal::Writer writer,
                  wal::Wal::Callback done) override;
    // A hard-state record, waited for.
    Status save_hard_state(const raft::HardState& hs) override;
    bool queues_hard_state() const override { return true; }
    Status queue_hard_state(const raft::HardState& hs, wal::Wal::Callback done) override;
    Status reset_after_snapshot(raft::Index index, raft::Term term,
                                wal::Wal::Callback done) override;
    // One group's mode says nothing of the others': the shared WAL's
    // flusher never spins.
    void set_single_mode(bool) override {}
    Status compact_through(raft::Index index, std::uint64_t generation) override;
    bool compaction_frees(raft::Index index) const override {
        MutexLock lock(shape_mu_);
        return frees(release_position(index));
    }
    Result<std::optional<raft::SnapshotMeta>> floor() const override {
        return decode_floor(shared_.meta(group_).floor, shared_.dir());
    }
    Status save_floor(const raft::SnapshotMeta& floor) override {
        return shared_.update_meta(group_, [&](GroupMeta& m) { m.floor = encode_floor(floor); });
    }
    wal::Wal& wal() override { return shared_.wal(); }
    const wal::Wal& wal() const override { return const_cast<SharedWal&>(shared_).wal(); }

    bool may_rewrite() const override;
    Result<bool> rewrite_forward(std::uint64_t max_bytes, Done done) override;

private:
    // The first live index: after the compaction point and the first run.
    raft::Index live_first() const REQUIRES(shape_mu_);
    // Reads the live entries [first, next_) back from the WAL; false when
    // they take more than max_bytes.  REQUIRES: no write in flight.
    Result<bool> read_live(raft::Index first, std::uint64_t max_bytes,
                           std::vector<raft::Entry>& out) const REQUIRES(shape_mu_);
    // The image at `position` (entries [first, end)) is durable: the runs
    // before it point into it from now on.
    void image_durable(std::uint64_t position, raft::Index first, raft::Index end,
                       std::uint64_t generation) EXCLUDES(shape_mu_);
    // Queues `records` (group set here) and notes where they went.
    Status submit(std::vector<wal::Record> records, wal::Wal::Callback done,
                  wal::Wal::Writer writer, std::uint64_t* first) REQUIRES(shape_mu_);
    // The position below which the group needs nothing once its log is
    // compacted through `index`: its first live entry after it, or the end
    // of the durable log.
    std::uint64_t release_position(raft::Index index) const REQUIRES(shape_mu_);
    // Whether releasing below `position` lets the oldest segment go, as far
    // as this group is concerned.
    bool frees(std::uint64_t position) const {
        const std::uint64_t reclaimable = shared_.wal().reclaimable_from();
        return reclaimable != 0 && position >= reclaimable;
    }

    SharedWal& shared_;
    const GroupId group_;
    const bool any_record_;
    std::vector<raft::Entry> recovered_;  // until forget_recovered()
    raft::Index next_ GUARDED_BY(shape_mu_);
    RingQueue<Run> runs_ GUARDED_BY(shape_mu_);
    mutable Mutex flight_mu_;
    CondVar flight_cv_;
    std::uint64_t in_flight_ GUARDED_BY(flight_mu_) = 0;
};

SharedLogStore::SharedLogStore(SharedWal& shared, GroupId group, GroupRecovery recovered)
    : shared_(shared), group_(group), any_record_(recovered.any_record) {
    MutexLock lock(shape_mu_);
    next_ = recovered.next;
    recovered_.reserve(recovered.entries.size());
    for (GroupRecovery::Slot& slot : recovered.entries) {
        const bool extends = !runs_.empty() && runs_.back().packed == slot.packed &&
                             runs_.back().end() == slot.entry.index &&
                             (slot.packed ? runs_.back().position == slot.position
                                          : runs_.back().next_position() == slot.position);
        if (extends) {
            ++runs_.back().count;
        } else {
            runs_.push_back(Run{slot.entry.index, slot.position, 1, slot.packed});
        }
        recovered_.push_back(std::move(slot.entry));
    }
    shared_.attach(group_, this);
}

SharedLogStore::~SharedLogStore() {
    // No rewrite pass reaches the store from here on; an image it queued
    // is in flight, waited for below.
    shared_.detach(group_);
    {
        MutexLock lock(flight_mu_);
        while (in_flight_ != 0) flight_cv_.wait(lock);
    }
    shared_.close_group(group_);
}

raft::Index SharedLogStore::first_index() const {
    const raft::Index compacted = shared_.meta(group_).compacted_through;
    MutexLock lock(shape_mu_);
    const raft::Index first = runs_.empty() ? next_ : runs_.front().first;
    return std::max(first, compacted + 1);
}

Result<bool> SharedLogStore::replaced_by_snapshot(raft::Index index, raft::Term term) const {
    if (index == 0 || recovered_.empty() || index < recovered_.front().index ||
        index > recovered_.back().index)
        return false;
    return recovered_[index - recovered_.front().index].term != term;
}

Result<std::vector<raft::Entry>> SharedLogStore::entries_after(raft::Index snapshot_index,
                                                               raft::Term snapshot_term) const {
    std::vector<raft::Entry> out;
    if (recovered_.empty()) return out;
    auto replaced = replaced_by_snapshot(snapshot_index, snapshot_term);
    if (!replaced.ok()) return replaced.status();
    if (replaced.value()) return out;  // an old log the snapshot replaced
    const raft::Index first = std::max(recovered_.front().index, first_index());
    if (first > snapshot_index + 1)
        return Status(ErrorCode::corruption,
                      fmt::format("the log of group {} in {} starts at index {}, but the state it "
                                  "continues ends at index {} (a snapshot is missing)",
                                  group_, shared_.dir(), first, snapshot_index));
    for (const raft::Entry& e : recovered_)
        if (e.index > snapshot_index) out.push_back(e);
    return out;
}

Status SharedLogStore::submit(std::vector<wal::Record> records, wal::Wal::Callback done,
                              wal::Wal::Writer writer, std::uint64_t* first) {
    for (wal::Record& r : records) r.group = group_;
    {
        MutexLock lock(flight_mu_);
        ++in_flight_;
    }
    auto completed = [this, done = std::move(done)](Status st) {
        done(std::move(st));
        shared_.touched(group_);
        MutexLock lock(flight_mu_);
        if (--in_flight_ == 0) flight_cv_.notify_all();
    };
    Status s = shared_.append(std::move(records), std::move(completed), writer, first);
    if (!s.ok()) {
        MutexLock lock(flight_mu_);
        --in_flight_;
    }
    return s;
}

Status SharedLogStore::queue_hard_state(const raft::HardState& hs, wal::Wal::Callback done) {
    {
        MutexLock lock(flight_mu_);
        ++in_flight_;
    }
    auto position = std::make_shared<std::uint64_t>(0);
    auto completed = [this, position, done = std::move(done)](Status st) {
        if (st.ok()) shared_.hard_state_durable(group_, *position);
        done(std::move(st));
        shared_.touched(group_);
        MutexLock lock(flight_mu_);
        if (--in_flight_ == 0) flight_cv_.notify_all();
    };
    Status s = shared_.append_hard_state(group_, hs, std::move(completed), position.get());
    if (!s.ok()) {
        MutexLock lock(flight_mu_);
        --in_flight_;
    }
    return s;
}

Status SharedLogStore::save_hard_state(const raft::HardState& hs) {
    auto promise = std::make_shared<std::promise<Status>>();
    auto future = promise->get_future();
    Status s = queue_hard_state(hs, [promise](Status st) { promise->set_value(std::move(st)); });
    if (!s.ok()) return s;
    return future.get();
}

Status SharedLogStore::append(std::vector<raft::Entry>& entries, wal::Wal::Writer writer,
                              wal::Wal::Callback done) {
    KEEL_ASSERT(!entries.empty(), "append needs entries");
    const raft::Index first = entries.front().index;
    std::vector<wal::Record> records = shared_.wal().record_buffer();
    records.reserve(entries.size());
    for (raft::Entry& e : entries) records.push_back(encode_entry(e));
    const std::uint64_t count = records.size();
    MutexLock lock(shape_mu_);
    KEEL_ASSERT(first <= next_, "the log has no gaps");
    std::uint64_t position = 0;
    if (Status s = submit(std::move(records), std::move(done), writer, &position); !s.ok())
        return s;
    // Raft §5.3: the new entries replace the group's from `first` on.
    while (!runs_.empty() && runs_.back().first >= first) runs_.pop_back();
    if (!runs_.empty() && runs_.back().end() > first)
        runs_.back().count = first - runs_.back().first;
    if (!runs_.empty() && !runs_.back().packed && runs_.back().end() == first &&
        runs_.back().next_position() == position) {
        runs_.back().count += count;
    } else {
        runs_.push_back(Run{first, position, count});
    }
    next_ = first + count;
    return Status::ok_status();
}

Status SharedLogStore::reset_after_snapshot(raft::Index index, raft::Term term,
                                            wal::Wal::Callback done) {
    MutexLock lock(shape_mu_);
    generation_.fetch_add(1);
    // The marker and the commit index are for the record only (a restart
    // takes the snapshot from its file and clamps the commit index to it):
    // out of space, go on without them.
    Status s = shared_.update_meta(group_, [&](GroupMeta& m) {
        m.snapshot_index = index;
        m.snapshot_term = term;
        m.commit = std::max(m.commit, index);
    });
    if (!s.ok() && s.code() != ErrorCode::no_space) return s;
    std::vector<wal::Record> records;
    records.push_back(encode_reset(index, term));
    std::uint64_t position = 0;
    if (s = submit(std::move(records), std::move(done), wal::Wal::Writer::flusher, &position);
        !s.ok())
        return s;
    runs_.clear();
    next_ = index + 1;
    return Status::ok_status();
}

std::uint64_t SharedLogStore::release_position(raft::Index index) const {
    const std::uint64_t durable_end = shared_.wal().last_index() + 1;
    for (const Run& run : runs_) {
        if (run.end() <= index + 1) continue;
        const std::uint64_t at = run.position_of(std::max(run.first, index + 1));
        return std::min(at, durable_end);
    }
    return durable_end;
}

Status SharedLogStore::compact_through(raft::Index index, std::uint64_t generation) {
    std::uint64_t position = 0;
    {
        MutexLock lock(shape_mu_);
        if (generation != generation_.load()) return Status::ok_status();  // a reset superseded it
        position = release_position(index);
    }
    // Only when the oldest segment file may go: a release is a metadata
    // write with two fsyncs.
    if (!frees(position)) return Status::ok_status();
    // Without the lock, the group's writes go on meanwhile: they land
    // after `position`, and none replaces an entry up to `index` (a
    // snapshot holds it: committed).  A reset meanwhile voids everything
    // before its record, which lies after `position` too.
    //
    // Crash window: the compaction point is durable with the release (one
    // metadata write), so a restart never takes records a release dropped
    // for the start of the group's log; the group's hard state as of the
    // records released goes into its row in the same write.
    const wal::Release release{group_, position};
    Status s = shared_.release(std::span<const wal::Release>(&release, 1), [&](GroupMeta& m) {
        m.compacted_through = std::max<std::uint64_t>(m.compacted_through, index);
    });
    if (!s.ok()) return s;
    MutexLock lock(shape_mu_);
    while (!runs_.empty() && runs_.front().end() <= index + 1) runs_.pop_front();
    return Status::ok_status();
}

raft::Index SharedLogStore::live_first() const {
    const raft::Index compacted = shared_.meta(group_).compacted_through;
    const raft::Index first = runs_.empty() ? next_ : runs_.front().first;
    return std::min(std::max(first, compacted + 1), next_);
}

bool SharedLogStore::may_rewrite() const {
    MutexLock lock(shape_mu_);
    {
        MutexLock flight(flight_mu_);
        if (in_flight_ != 0) return false;
    }
    return next_ - live_first() <= kMaxImageEntries;
}

Result<bool> SharedLogStore::read_live(raft::Index first, std::uint64_t max_bytes,
                                       std::vector<raft::Entry>& out) const {
    std::uint64_t bytes = 0;
    auto take = [&](raft::Entry&& e) {
        if (e.index != first + out.size())
            return Status(ErrorCode::corruption,
                          fmt::format("the shared WAL in {} holds entry {} of group {} where its "
                                      "log has entry {}",
                                      shared_.dir(), e.index, group_, first + out.size()));
        bytes += e.data.size();
        out.push_back(std::move(e));
        return Status::ok_status();
    };
    for (const Run& run : runs_) {
        if (run.end() <= first) continue;
        const raft::Index from = std::max(run.first, first);
        std::uint64_t at = run.position_of(from);
        while (at < run.next_position()) {
            auto records = shared_.wal().read(at, run.next_position(), max_bytes + 1);
            if (!records.ok()) return records.status();
            if (records.value().empty()) break;
            at = records.value().back().index + 1;
            for (const wal::Record& r : records.value()) {
                if (run.packed) {
                    auto image = decode_image(r);
                    if (!image.ok()) return image.status();
                    for (raft::Entry& e : image.value().entries)
                        if (e.index >= from && e.index < run.end())
                            if (Status s = take(std::move(e)); !s.ok()) return s;
                } else {
                    auto e = decode_entry(r);
                    if (!e.ok()) return e.status();
                    if (Status s = take(std::move(e.value())); !s.ok()) return s;
                }
            }
            if (bytes > max_bytes) return false;
        }
    }
    if (first + out.size() != next_)
        return Status(ErrorCode::corruption,
                      fmt::format("group {} of the shared WAL in {} has entries to {} in memory, "
                                  "{} on disk",
                                  group_, shared_.dir(), next_ - 1, first + out.size() - 1));
    return true;
}

Result<bool> SharedLogStore::rewrite_forward(std::uint64_t max_bytes, Done done) {
    MutexLock lock(shape_mu_);
    {
        // Every record of the group is durable, so readable; and none is
        // queued ahead of the image that it would have to restate.
        MutexLock flight(flight_mu_);
        if (in_flight_ != 0) return false;
    }
    const raft::Index first = live_first();
    if (next_ - first > kMaxImageEntries) return false;
    std::vector<raft::Entry> entries;
    auto read = read_live(first, max_bytes, entries);
    if (!read.ok() || !read.value()) return read;
    std::vector<wal::Record> records;
    records.push_back(encode_image(first - 1, entries));
    const raft::Index end = next_;
    const std::uint64_t generation = generation_.load();
    // Set by submit before the record is queued, so before `written` runs.
    auto position = std::make_shared<std::uint64_t>(0);
    auto written = [this, position, first, end, generation, done = std::move(done)](Status s) {
        if (s.ok()) image_durable(*position, first, end, generation);
        done(std::move(s), *position);
    };
    Status s =
        submit(std::move(records), std::move(written), wal::Wal::Writer::flusher, position.get());
    // A full queue or a record over the WAL's limit: not now.
    if (s.code() == ErrorCode::busy || s.code() == ErrorCode::too_large) return false;
    if (!s.ok()) return s;
    return true;
}

void SharedLogStore::image_durable(std::uint64_t position, raft::Index first, raft::Index end,
                                   std::uint64_t generation) {
    MutexLock lock(shape_mu_);
    if (generation_.load() != generation) return;  // a reset since voids the image
    // Runs are in index and position order.  Those after the image are
    // appends queued since: they replace its entries from their first on.
    auto later = std::find_if(runs_.begin(), runs_.end(),
                              [&](const Run& run) { return run.position > position; });
    raft::Index image_end = end;
    if (later != runs_.end()) image_end = std::min(image_end, later->first);
    RingQueue<Run> runs;
    if (image_end > first) runs.push_back(Run{first, position, image_end - first, true});
    for (; later != runs_.end(); ++later) runs.push_back(*later);
    runs_ = std::move(runs);
}

}  // namespace

std::unique_ptr<LogStore> make_shared_log_store(SharedWal& shared, GroupId group,
                                                GroupRecovery recovered) {
    return std::make_unique<SharedLogStore>(shared, group, std::move(recovered));
}

}  // namespace keel::runtime
