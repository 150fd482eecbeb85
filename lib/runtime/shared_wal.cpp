// The process's shared WAL: opening and scanning it, the group table in its
// metadata, positions for appends, and the WAL's callbacks fanned out to
// the groups.  The per-group store is shared_log_store.cpp.
#include "runtime/shared_wal.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace keel::runtime {

// shared_log_store.cpp.
std::unique_ptr<LogStore> make_shared_log_store(SharedWal& shared, GroupId group,
                                                GroupRecovery recovered);

namespace {

constexpr std::uint64_t kScanChunkBytes = 64ull << 20;
// Version 2 added hard_state_below to each row; version 1 (without it)
// is still read.
constexpr std::string_view kTableMagicV1 = "keel-groups-1\n";
constexpr std::string_view kTableMagic = "keel-groups-2\n";
constexpr std::size_t kRowFixedBytesV1 = 8 * 8;  // group, seven numbers; then the floor
constexpr std::size_t kRowFixedBytes = 9 * 8;    // group, eight numbers; then the floor

Status bad_record(const wal::Record& r, const std::string& dir, const std::string& why) {
    return Status(ErrorCode::corruption,
                  fmt::format("record {} (group {}) of the shared WAL in {} {} "
                              "(waldump shows where it lies)",
                              r.index, r.group, dir, why));
}

// Replays one record into its group's log; hard-state records before
// `hard_state_below` are in the group's row already.
Status replay(wal::Record&& r, GroupRecovery& g, std::uint64_t hard_state_below,
              const std::string& dir) {
    g.any_record = true;
    if (r.type == kSharedHardStateType) {
        auto hs = decode_hard_state(r);
        if (!hs.ok()) return bad_record(r, dir, hs.status().message());
        if (r.index >= hard_state_below) {
            g.hard_state = hs.value();
            g.hard_state_position = r.index;
        }
        return Status::ok_status();
    }
    if (r.type == kSharedResetType) {
        auto index = decode_reset(r);
        if (!index.ok()) return bad_record(r, dir, index.status().message());
        g.entries.clear();
        g.next = index.value() + 1;
        return Status::ok_status();
    }
    if (r.type == kSharedImageType) {
        auto image = decode_image(r);
        if (!image.ok()) return bad_record(r, dir, image.status().message());
        // Every earlier record of the group is void: the image restates it.
        g.entries.clear();
        for (raft::Entry& e : image.value().entries)
            g.entries.push_back(GroupRecovery::Slot{r.index, std::move(e), true});
        g.next = image.value().base + 1 + g.entries.size();
        return Status::ok_status();
    }
    auto decoded = decode_entry(r);
    if (!decoded.ok()) return bad_record(r, dir, decoded.status().message());
    raft::Entry& e = decoded.value();
    // An entry replaces what the group held at its index and after.
    while (!g.entries.empty() && g.entries.back().entry.index >= e.index) g.entries.pop_back();
    if (!g.entries.empty() && e.index != g.entries.back().entry.index + 1)
        return bad_record(r, dir, fmt::format("holds entry {}, not next in its group", e.index));
    g.next = e.index + 1;
    g.entries.push_back(GroupRecovery::Slot{r.index, std::move(e), false});
    return Status::ok_status();
}

}  // namespace

std::string encode_group_table(const std::map<GroupId, GroupMeta>& table) {
    std::string out;
    if (table.empty()) return out;
    out.assign(kTableMagic);
    put_u64(out, table.size());
    for (const auto& [group, m] : table) {
        for (std::uint64_t v :
             {group, m.term, m.vote, m.commit, m.snapshot_index, m.snapshot_term,
              m.compacted_through, m.hard_state_below, std::uint64_t{m.floor.size()}})
            put_u64(out, v);
        out += m.floor;
    }
    return out;
}

Result<std::map<GroupId, GroupMeta>> decode_group_table(std::string_view blob,
                                                        const std::string& dir) {
    std::map<GroupId, GroupMeta> table;
    if (blob.empty()) return table;
    auto bad = [&](const std::string& why) {
        return Status(ErrorCode::corruption,
                      "the group table in the metadata of the shared WAL in " + dir + " " + why);
    };
    static_assert(kTableMagic.size() == kTableMagicV1.size());
    const bool v1 = blob.substr(0, kTableMagicV1.size()) == kTableMagicV1;
    if ((!v1 && blob.substr(0, kTableMagic.size()) != kTableMagic) ||
        blob.size() < kTableMagic.size() + 8)
        return bad("is not in keel's format");
    const std::size_t fixed = v1 ? kRowFixedBytesV1 : kRowFixedBytes;
    std::string_view in = blob.substr(kTableMagic.size());
    const std::uint64_t rows = get_u64(in);
    in.remove_prefix(8);
    for (std::uint64_t i = 0; i < rows; ++i) {
        if (in.size() < fixed) return bad(fmt::format("ends inside row {}", i));
        std::uint64_t v[9] = {};
        for (std::size_t k = 0; k < fixed / 8; ++k) v[k] = get_u64(in.substr(8 * k));
        in.remove_prefix(fixed);
        if (v1) std::swap(v[7], v[8]);  // the floor's size; hard_state_below 0
        if (v[8] > in.size()) return bad(fmt::format("ends inside the floor of row {}", i));
        GroupMeta m{v[1], v[2], v[3], v[4], v[5], v[6], std::string(in.substr(0, v[8])), v[7]};
        in.remove_prefix(v[8]);
        if (!table.emplace(v[0], std::move(m)).second)
            return bad(fmt::format("holds group {} twice", v[0]));
    }
    if (!in.empty()) return bad("has bytes after its last row");
    return table;
}

Result<std::unique_ptr<SharedWal>> SharedWal::open(const std::string& dir, wal::Options options,
                                                   RewritePolicy policy) {
    std::unique_ptr<SharedWal> s(new SharedWal());
    s->policy_ = std::move(policy);
    SharedWal* self = s.get();
    options.after_batch = [self] { self->after_batch(); };
    options.on_health_change = [self] { self->on_health_change(); };
    // The cores keep their logs in memory; the log is read at open only.
    options.cache_bytes = 0;
    auto w = wal::Wal::open(dir, std::move(options));
    if (!w.ok()) return w.status();
    s->wal_ = std::move(w.value());
    auto table = decode_group_table(s->wal_->metadata().opaque, dir);
    if (!table.ok()) return table.status();
    {
        MutexLock lock(s->table_mu_);
        s->table_ = std::move(table.value());
    }
    std::map<GroupId, GroupRecovery> recovered;
    if (Status st = s->scan(std::nullopt, recovered); !st.ok()) return st;
    {
        // The latest is all a trail needs of the records before it: a
        // release below it leaves it, one past it takes it into the row.
        MutexLock lock(s->trail_mu_);
        for (const auto& [group, g] : recovered)
            if (g.hard_state) s->trail_[group].emplace_back(g.hard_state_position, *g.hard_state);
    }
    MutexLock lock(s->hooks_mu_);
    s->recovered_ = std::move(recovered);
    return s;
}

SharedWal::~SharedWal() {
    {
        // A batch's after_batch may be running on the writing thread: once
        // this is set, none looks at wal_ again (reset() below nulls it
        // before the WAL's destructor completes what is queued).
        MutexLock lock(closing_mu_);
        closing_ = true;
    }
    // The WAL completes what is queued (no group's: every store is gone).
    wal_.reset();
}

Status SharedWal::scan(std::optional<GroupId> only, std::map<GroupId, GroupRecovery>& out) const {
    std::uint64_t from = wal_->first_index();
    const std::uint64_t last = wal_->last_index();
    while (from <= last) {
        auto records = wal_->read(from, last + 1, kScanChunkBytes);
        if (!records.ok()) return records.status();
        if (records.value().empty()) break;
        from = records.value().back().index + 1;
        for (wal::Record& r : records.value()) {
            const GroupId group = r.group;
            if (only && group != *only) continue;
            if (Status s = replay(std::move(r), out[group], hard_state_below(group), dir());
                !s.ok())
                return s;
        }
    }
    return Status::ok_status();
}

Result<std::unique_ptr<LogStore>> SharedWal::open_group(GroupId group, Hooks hooks) {
    GroupRecovery recovered;
    {
        MutexLock lock(hooks_mu_);
        if (open_.count(group) != 0)
            return Status(
                ErrorCode::busy,
                fmt::format("group {} is open on the shared WAL in {} already", group, dir()));
        if (scanned_.insert(group).second) {
            auto it = recovered_.find(group);
            if (it != recovered_.end()) {
                recovered = std::move(it->second);
                recovered_.erase(it);
            }
        } else {
            // Opened before in this process: its records are all durable
            // (a store waits for its writes before it goes).
            std::map<GroupId, GroupRecovery> again;
            if (Status s = scan(group, again); !s.ok()) return s;
            recovered = std::move(again[group]);
        }
        open_.emplace(group, std::move(hooks));
    }
    return make_shared_log_store(*this, group, std::move(recovered));
}

void SharedWal::close_group(GroupId group) {
    MutexLock lock(hooks_mu_);
    open_.erase(group);
}

Status SharedWal::append(std::vector<wal::Record> records, wal::Wal::Callback done,
                         wal::Wal::Writer writer, std::uint64_t* first) {
    MutexLock lock(append_mu_);
    const std::uint64_t next = wal_->next_index();
    for (std::size_t i = 0; i < records.size(); ++i) records[i].index = next + i;
    *first = next;
    return wal_->append(std::move(records), std::move(done), writer);
}

void SharedWal::touched(GroupId group) {
    MutexLock lock(touched_mu_);
    if (touched_.empty() || touched_.back() != group) touched_.push_back(group);
}

Status SharedWal::append_hard_state(GroupId group, const raft::HardState& hs,
                                    wal::Wal::Callback done, std::uint64_t* position) {
    wal::Record r = encode_hard_state(hs);
    r.group = group;
    std::vector<wal::Record> records;
    records.push_back(std::move(r));
    MutexLock lock(append_mu_);
    const std::uint64_t next = wal_->next_index();
    records.front().index = next;
    *position = next;
    // In the trail before it is queued: a release may not pass it unseen
    // once it is durable.
    {
        MutexLock trail(trail_mu_);
        trail_[group].emplace_back(next, hs);
    }
    Status s = wal_->append(std::move(records), std::move(done), wal::Wal::Writer::flusher);
    if (!s.ok()) {
        MutexLock trail(trail_mu_);
        Trail& t = trail_[group];
        if (!t.empty() && t.back().first == next) t.pop_back();
        if (t.empty()) trail_.erase(group);
    }
    return s;
}

void SharedWal::hard_state_durable(GroupId group, std::uint64_t position) {
    MutexLock lock(trail_mu_);
    auto it = trail_.find(group);
    if (it == trail_.end()) return;
    Trail& t = it->second;
    auto at = std::find_if(t.begin(), t.end(), [&](const auto& p) { return p.first >= position; });
    t.erase(t.begin(), at);
}

raft::HardState SharedWal::hard_state(GroupId group) const {
    {
        MutexLock lock(trail_mu_);
        auto it = trail_.find(group);
        if (it != trail_.end() && !it->second.empty()) return it->second.back().second;
    }
    const GroupMeta m = meta(group);
    return raft::HardState{m.term, m.vote, m.commit};
}

std::uint64_t SharedWal::hard_state_below(GroupId group) const {
    MutexLock lock(table_mu_);
    auto it = table_.find(group);
    return it == table_.end() ? 0 : it->second.hard_state_below;
}

GroupMeta SharedWal::meta(GroupId group) const {
    MutexLock lock(table_mu_);
    auto it = table_.find(group);
    return it == table_.end() ? GroupMeta{} : it->second;
}

Status SharedWal::update_meta(GroupId group, const std::function<void(GroupMeta&)>& change) {
    MutexLock lock(table_mu_);
    std::map<GroupId, GroupMeta> table = table_;
    change(table[group]);
    if (table == table_) return Status::ok_status();
    return save_table(table, {});
}

Status SharedWal::save_table(std::map<GroupId, GroupMeta>& table,
                             std::span<const wal::Release> releases) {
    wal::Metadata m = wal_->metadata();
    m.opaque = encode_group_table(table);
    if (m.opaque.size() > wal::kMaxMetadataOpaqueBytes)
        return Status(ErrorCode::too_large,
                      fmt::format("the group table of the shared WAL in {} would take {} bytes, "
                                  "more than the metadata's {}",
                                  dir(), m.opaque.size(), wal::kMaxMetadataOpaqueBytes));
    Status s = releases.empty() ? wal_->save_metadata(m) : wal_->release(releases, m);
    if (!s.ok()) return s;
    table_ = std::move(table);
    return Status::ok_status();
}

Status SharedWal::release(std::span<const wal::Release> releases,
                          const std::function<void(GroupMeta&)>& change) {
    MutexLock lock(table_mu_);
    std::map<GroupId, GroupMeta> table = table_;
    {
        // Each group's last hard-state record below its release point: the
        // row takes it (shared_wal.hpp, "Hard state").  The trail keeps it
        // until the release is durable.
        MutexLock trail(trail_mu_);
        for (const wal::Release& r : releases) {
            GroupMeta& row = table[r.group];
            if (change) change(row);
            auto it = trail_.find(r.group);
            if (it != trail_.end()) {
                for (const auto& [position, hs] : it->second) {
                    if (position >= r.index) break;
                    row.term = hs.term;
                    row.vote = hs.vote;
                    row.commit = hs.commit;
                }
            }
            row.hard_state_below = std::max(row.hard_state_below, r.index);
        }
    }
    if (Status s = save_table(table, releases); !s.ok()) return s;
    MutexLock trail(trail_mu_);
    for (const wal::Release& r : releases) {
        auto it = trail_.find(r.group);
        if (it == trail_.end()) continue;
        Trail& t = it->second;
        auto at =
            std::find_if(t.begin(), t.end(), [&](const auto& p) { return p.first >= r.index; });
        t.erase(t.begin(), at);
        if (t.empty()) trail_.erase(it);
    }
    return Status::ok_status();
}

void SharedWal::attach(GroupId group, RewritableLog* log) {
    MutexLock lock(stores_mu_);
    stores_[group] = log;
}

void SharedWal::detach(GroupId group) {
    MutexLock lock(stores_mu_);
    stores_.erase(group);
}

void SharedWal::after_batch() {
    std::vector<GroupId> groups;
    {
        MutexLock lock(touched_mu_);
        groups.swap(touched_);
    }
    std::sort(groups.begin(), groups.end());
    groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
    if (groups.size() > 1) shared_batches_.fetch_add(1);
    {
        StrandPool::Batch batch(completion_pool_.load());
        MutexLock lock(hooks_mu_);
        for (GroupId g : groups) {
            auto it = open_.find(g);
            if (it != open_.end() && it->second.after_batch) it->second.after_batch();
        }
    }
    MutexLock lock(closing_mu_);
    if (!closing_) maybe_rewrite();
}

void SharedWal::on_health_change() {
    MutexLock lock(hooks_mu_);
    for (auto& [group, hooks] : open_)
        if (hooks.on_health_change) hooks.on_health_change();
}

}  // namespace keel::runtime
