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
constexpr std::string_view kTableMagic = "keel-groups-1\n";
constexpr std::size_t kRowFixedBytes = 8 * 8;  // group, seven numbers; then the floor

Status bad_record(const wal::Record& r, const std::string& dir, const std::string& why) {
    return Status(ErrorCode::corruption,
                  fmt::format("record {} (group {}) of the shared WAL in {} {} "
                              "(waldump shows where it lies)",
                              r.index, r.group, dir, why));
}

// Replays one record into its group's log.
Status replay(wal::Record&& r, GroupRecovery& g, const std::string& dir) {
    g.any_record = true;
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
        for (std::uint64_t v : {group, m.term, m.vote, m.commit, m.snapshot_index, m.snapshot_term,
                                m.compacted_through, std::uint64_t{m.floor.size()}})
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
    if (blob.substr(0, kTableMagic.size()) != kTableMagic || blob.size() < kTableMagic.size() + 8)
        return bad("is not in keel's format");
    std::string_view in = blob.substr(kTableMagic.size());
    const std::uint64_t rows = get_u64(in);
    in.remove_prefix(8);
    for (std::uint64_t i = 0; i < rows; ++i) {
        if (in.size() < kRowFixedBytes) return bad(fmt::format("ends inside row {}", i));
        std::uint64_t v[8];
        for (int k = 0; k < 8; ++k) v[k] = get_u64(in.substr(8 * k));
        in.remove_prefix(kRowFixedBytes);
        if (v[7] > in.size()) return bad(fmt::format("ends inside the floor of row {}", i));
        GroupMeta m{v[1], v[2], v[3], v[4], v[5], v[6], std::string(in.substr(0, v[7]))};
        in.remove_prefix(v[7]);
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
    MutexLock lock(s->hooks_mu_);
    s->recovered_ = std::move(recovered);
    return s;
}

SharedWal::~SharedWal() {
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
            if (Status s = replay(std::move(r), out[group], dir()); !s.ok()) return s;
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
    wal::Metadata m = wal_->metadata();
    m.opaque = encode_group_table(table);
    if (m.opaque.size() > wal::kMaxMetadataOpaqueBytes)
        return Status(ErrorCode::too_large,
                      fmt::format("the group table of the shared WAL in {} would take {} bytes, "
                                  "more than the metadata's {}",
                                  dir(), m.opaque.size(), wal::kMaxMetadataOpaqueBytes));
    if (Status s = wal_->save_metadata(m); !s.ok()) return s;
    table_ = std::move(table);
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
        MutexLock lock(hooks_mu_);
        for (GroupId g : groups) {
            auto it = open_.find(g);
            if (it != open_.end() && it->second.after_batch) it->second.after_batch();
        }
    }
    maybe_rewrite();
}

void SharedWal::on_health_change() {
    MutexLock lock(hooks_mu_);
    for (auto& [group, hooks] : open_)
        if (hooks.on_health_change) hooks.on_health_change();
}

}  // namespace keel::runtime
