#include "runtime/log_store.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace keel::runtime {

namespace {

constexpr std::uint64_t kReadChunkBytes = 64ull << 20;

// The floor in the metadata's opaque blob: this magic, then the index and
// the term (8 bytes each, little-endian), then the configuration
// (raft::encode_configuration).
constexpr std::string_view kFloorMagic = "keel-sm-floor-1\n";

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(std::string_view in) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    return v;
}

wal::Record to_record(raft::Entry&& e) {
    wal::Record r;
    r.index = e.index;
    r.term = e.term;
    r.type = static_cast<std::uint16_t>(e.type);
    r.payload = std::move(e.data);
    return r;
}

Result<raft::Entry> to_entry(wal::Record&& r, const std::string& dir) {
    if (r.type < static_cast<std::uint16_t>(raft::EntryType::normal) ||
        r.type > static_cast<std::uint16_t>(raft::EntryType::config))
        return Status(ErrorCode::corruption,
                      fmt::format("log record {} in {} has an unknown entry type {} "
                                  "(waldump shows where it lies)",
                                  r.index, dir, r.type));
    raft::Entry e;
    e.index = r.index;
    e.term = r.term;
    e.type = static_cast<raft::EntryType>(r.type);
    e.data = std::move(r.payload);
    return e;
}

// The store on a WAL of its own: a raft::Entry is the wal::Record with the
// same index and term, type = EntryType's value, payload = data; the hard
// state, the snapshot marker and the floor are the WAL's Metadata.
class OwnWalLogStore final : public LogStore {
public:
    explicit OwnWalLogStore(std::unique_ptr<wal::Wal> wal)
        : wal_(std::move(wal)), meta_(wal_->metadata()) {}

    bool fresh() const override;
    raft::HardState hard_state() const override;
    Result<std::vector<raft::Entry>> entries_after(raft::Index snapshot_index,
                                                   raft::Term snapshot_term) const override;
    Result<bool> replaced_by_snapshot(raft::Index index, raft::Term term) const override;
    raft::Index first_index() const override { return wal_->first_index(); }
    raft::Index next_index() const override { return wal_->next_index(); }
    bool empty() const override { return wal_->last_index() == 0; }
    Status append(std::vector<raft::Entry>& entries, wal::Wal::Writer writer,
                  wal::Wal::Callback done) override;
    Status save_hard_state(const raft::HardState& hs) override;
    Status reset_after_snapshot(raft::Index index, raft::Term term,
                                wal::Wal::Callback done) override;
    void set_single_mode(bool single) override {
        wal_->set_idle_spin_us(single ? kSingleModeFlusherSpinUs : 0);
    }
    Status compact_through(raft::Index index, std::uint64_t generation) override;
    bool compaction_frees(raft::Index index) const override {
        const std::uint64_t reclaimable = wal_->reclaimable_from();
        return reclaimable != 0 && index + 1 >= reclaimable;
    }
    Result<std::optional<raft::SnapshotMeta>> floor() const override;
    Status save_floor(const raft::SnapshotMeta& floor) override;
    wal::Wal& wal() override { return *wal_; }
    const wal::Wal& wal() const override { return *wal_; }

private:
    std::unique_ptr<wal::Wal> wal_;
    wal::Metadata meta_;  // last saved (under the core lock)
};

}  // namespace

Result<std::unique_ptr<LogStore>> LogStore::open(const std::string& dir, wal::Options options) {
    auto w = wal::Wal::open(dir, std::move(options));
    if (!w.ok()) return w.status();
    return std::unique_ptr<LogStore>(new OwnWalLogStore(std::move(w.value())));
}

bool OwnWalLogStore::fresh() const {
    return wal_->last_index() == 0 && meta_ == wal::Metadata{};
}

raft::HardState OwnWalLogStore::hard_state() const {
    return raft::HardState{meta_.term, meta_.vote, meta_.commit};
}

Result<bool> OwnWalLogStore::replaced_by_snapshot(raft::Index index, raft::Term term) const {
    if (index == 0 || index < wal_->first_index() || index > wal_->last_index()) return false;
    auto t = wal_->term_at(index);
    if (!t.ok()) return t.status();
    return t.value() != term;
}

Result<std::vector<raft::Entry>> OwnWalLogStore::entries_after(raft::Index snapshot_index,
                                                               raft::Term snapshot_term) const {
    std::vector<raft::Entry> out;
    const std::uint64_t first = wal_->first_index();
    const std::uint64_t last = wal_->last_index();
    if (last < first) return out;  // empty log
    auto replaced = replaced_by_snapshot(snapshot_index, snapshot_term);
    if (!replaced.ok()) return replaced.status();
    if (replaced.value()) return out;  // an old log the snapshot replaced
    if (first > snapshot_index + 1) {
        return Status(
            ErrorCode::corruption,
            fmt::format("the log in {} starts at index {}, but the state it continues ends at "
                        "index {} (a snapshot is missing)",
                        wal_->dir(), first, snapshot_index));
    }
    std::uint64_t from = std::max(first, snapshot_index + 1);
    while (from <= last) {
        auto records = wal_->read(from, last + 1, kReadChunkBytes);
        if (!records.ok()) return records.status();
        if (records.value().empty()) break;
        for (wal::Record& r : records.value()) {
            auto e = to_entry(std::move(r), wal_->dir());
            if (!e.ok()) return e.status();
            out.push_back(std::move(e.value()));
        }
        from = out.back().index + 1;
    }
    return out;
}

Status OwnWalLogStore::append(std::vector<raft::Entry>& entries, wal::Wal::Writer writer,
                              wal::Wal::Callback done) {
    KEEL_ASSERT(!entries.empty(), "append needs entries");
    const raft::Index first = entries.front().index;
    const std::uint64_t next = wal_->next_index();
    KEEL_ASSERT(first <= next, "the log has no gaps");
    if (first < next) {
        // Raft §5.3: a conflicting suffix is deleted before the new entries.
        Status s = wal_->truncate_after(first - 1, [](Status) {});
        if (!s.ok()) return s;
    }
    std::vector<wal::Record> records = wal_->record_buffer();
    records.reserve(entries.size());
    for (raft::Entry& e : entries) records.push_back(to_record(std::move(e)));
    return wal_->append(std::move(records), std::move(done), writer);
}

Result<std::optional<raft::SnapshotMeta>> decode_floor(std::string_view blob,
                                                       const std::string& dir) {
    if (blob.empty()) return std::optional<raft::SnapshotMeta>();
    auto bad = [&](const char* why) {
        return Status(
            ErrorCode::corruption,
            "the metadata in " + dir + " holds a state machine compaction point that " + why);
    };
    if (blob.size() < kFloorMagic.size() + 16 || blob.substr(0, kFloorMagic.size()) != kFloorMagic)
        return bad("is not in keel's format");
    raft::SnapshotMeta floor;
    floor.index = get_u64(blob.substr(kFloorMagic.size()));
    floor.term = get_u64(blob.substr(kFloorMagic.size() + 8));
    auto config = raft::decode_configuration(blob.substr(kFloorMagic.size() + 16));
    if (!config) return bad("has a configuration that does not decode");
    floor.config = std::move(*config);
    return std::optional<raft::SnapshotMeta>(std::move(floor));
}

Result<std::optional<raft::SnapshotMeta>> OwnWalLogStore::floor() const {
    return decode_floor(meta_.opaque, wal_->dir());
}

std::string encode_floor(const raft::SnapshotMeta& floor) {
    std::string out(kFloorMagic);
    put_u64(out, floor.index);
    put_u64(out, floor.term);
    out += raft::encode_configuration(floor.config);
    return out;
}

Status OwnWalLogStore::save_floor(const raft::SnapshotMeta& floor) {
    wal::Metadata m = meta_;
    m.opaque = encode_floor(floor);
    Status s = wal_->save_metadata(m);
    if (s.ok()) meta_ = std::move(m);
    return s;
}

Status OwnWalLogStore::save_hard_state(const raft::HardState& hs) {
    wal::Metadata m = meta_;
    m.term = hs.term;
    m.vote = hs.vote;
    m.commit = hs.commit;
    if (m == meta_) return Status::ok_status();
    Status s = wal_->save_metadata(m);
    if (s.ok()) meta_ = std::move(m);
    return s;
}

Status OwnWalLogStore::reset_after_snapshot(raft::Index index, raft::Term term,
                                            wal::Wal::Callback done) {
    MutexLock lock(shape_mu_);
    generation_.fetch_add(1);
    wal::Metadata m = meta_;
    m.snapshot_index = index;
    m.snapshot_term = term;
    m.commit = std::max(m.commit, index);
    // The snapshot marker and the commit index are for the record only (a
    // restart takes the snapshot from its file and the commit index is
    // clamped to it): out of space, go on without them; the reset's own
    // metadata writes wait for space (wal::Wal::no_space()).
    if (Status s = wal_->save_metadata(m); s.ok()) {
        meta_ = std::move(m);
    } else if (s.code() != ErrorCode::no_space) {
        return s;
    }
    return wal_->reset(index + 1, std::move(done));
}

Status OwnWalLogStore::compact_through(raft::Index index, std::uint64_t generation) {
    MutexLock lock(shape_mu_);
    if (generation != generation_.load()) return Status::ok_status();  // a reset superseded it
    const std::uint64_t target = std::min<std::uint64_t>(index + 1, wal_->last_index() + 1);
    if (target <= wal_->first_index()) return Status::ok_status();
    // Only when a segment file can go: moving the floor alone costs a
    // metadata write with two fsyncs per snapshot, on the WAL's disk, and
    // frees nothing (restart skips entries the snapshot covers anyway).
    const std::uint64_t reclaimable = wal_->reclaimable_from();
    if (reclaimable == 0 || target < reclaimable) return Status::ok_status();
    return wal_->compact_before(target);
}

}  // namespace keel::runtime
