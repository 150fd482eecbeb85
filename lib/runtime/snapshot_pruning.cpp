// runtime/snapshot_pruning.cpp — what becomes of the snapshot files the
// store no longer keeps: pruning, the stepped deletion of large ones, and
// the pins that keep a file being read whole (snapshot_store.hpp,
// "Pruning"; docs/decisions/0052-large-snapshot-files.md).
#include "runtime/snapshot_store.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "keel/wal/file_removal.hpp"

namespace keel::runtime {

namespace {

// A pruned file on its way out (prune_locked); open() deletes leftovers
// with the other .tmp files.
constexpr const char* kRemovingSuffix = ".deleting.tmp";

// The stepped deletion of files prune_locked renamed away: their renames
// durable first (a crash must not find a shortened file under a .snap name,
// or, if the directory's fsync is lost, a .snap where the rename was), then
// each shortened and removed, then the removals durable.  Best effort: what
// fails is removed at once, and open() deletes what is left.
void remove_renamed_files(wal::FileSystem& fs, const std::string& dir,
                          const std::vector<std::string>& paths) {
    const bool renames_durable = fs.sync_dir(dir).ok();
    for (const std::string& path : paths)
        if (!renames_durable || !wal::remove_in_steps(fs, path).ok()) (void)fs.remove(path);
    (void)fs.sync_dir(dir);
}

}  // namespace

void SnapshotStore::prune_locked() {
    // Newest first: the kSnapshotsKept newest durable files, and the newest
    // file if it is not durable yet, stay.
    std::vector<SnapshotFile> kept;
    std::size_t durable_kept = 0;
    // Held across the check and the rename, so that a reader either pinned
    // the file first (it is unlinked: its descriptor keeps the bytes) or
    // opens it after the rename (not_found): never one the steps shorten.
    MutexLock pins_lock(pins_->mu);
    for (auto it = files_.rbegin(); it != files_.rend(); ++it) {
        const bool keep = it->durable ? durable_kept < kSnapshotsKept : it == files_.rbegin();
        if (keep) {
            if (it->durable) ++durable_kept;
            kept.push_back(std::move(*it));
            continue;
        }
        // Best effort from here on: a leftover is only disk space.
        const bool small = it->data_bytes <= wal::kRemovalStepBytes;
        const std::string removing = it->path + kRemovingSuffix;
        if (small || pins_->readers.count(it->path) != 0 || !fs_.rename(it->path, removing).ok()) {
            (void)fs_.remove(it->path);
        } else {
            to_remove_.push_back(removing);
        }
    }
    std::reverse(kept.begin(), kept.end());
    files_ = std::move(kept);
}

void SnapshotStore::set_remover(Remover remover) {
    MutexLock lock(mu_);
    remover_ = std::move(remover);
}

void SnapshotStore::start_removals() {
    std::vector<std::string> paths;
    Remover remover;
    {
        MutexLock lock(mu_);
        if (to_remove_.empty()) return;
        paths.swap(to_remove_);
        remover = remover_;
    }
    auto task = [&fs = fs_, dir = dir_, paths = std::move(paths)] {
        remove_renamed_files(fs, dir, paths);
    };
    if (!remover || !remover(task)) task();
}

SnapshotPin SnapshotStore::pin(const SnapshotFile& file) const {
    return SnapshotPin(pins_, file.path);
}

SnapshotPin::SnapshotPin(std::shared_ptr<SnapshotPinTable> table, std::string path)
    : table_(std::move(table)), path_(std::move(path)) {
    MutexLock lock(table_->mu);
    ++table_->readers[path_];
}

SnapshotPin::SnapshotPin(SnapshotPin&& other) noexcept
    : table_(std::move(other.table_)), path_(std::move(other.path_)) {
    other.table_.reset();
}

SnapshotPin& SnapshotPin::operator=(SnapshotPin&& other) noexcept {
    if (this != &other) {
        release();
        table_ = std::move(other.table_);
        path_ = std::move(other.path_);
        other.table_.reset();
    }
    return *this;
}

void SnapshotPin::release() {
    if (!table_) return;
    {
        MutexLock lock(table_->mu);
        auto it = table_->readers.find(path_);
        KEEL_ASSERT(it != table_->readers.end() && it->second > 0, "a pin is released once");
        if (--it->second == 0) table_->readers.erase(it);
    }
    table_.reset();
}

}  // namespace keel::runtime
