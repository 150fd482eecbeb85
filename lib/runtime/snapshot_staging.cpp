// Snapshots received, kept until installed.  See snapshot_staging.hpp.
#include "runtime/snapshot_staging.hpp"

#include <cstdio>
#include <iterator>

namespace keel::runtime {

void SnapshotStaging::stage(raft::Index index, raft::Term term, std::string path) {
    const auto key = std::make_pair(index, term);
    if (auto old = staged_.find(key); old != staged_.end() && old->second != path)
        std::remove(old->second.c_str());
    staged_[key] = std::move(path);
    while (staged_.size() > kMaxStagedSnapshots) {
        std::remove(staged_.begin()->second.c_str());
        staged_.erase(staged_.begin());
    }
}

std::optional<std::string> SnapshotStaging::take(raft::Index index, raft::Term term) {
    auto it = staged_.find({index, term});
    if (it == staged_.end()) return std::nullopt;
    std::string path = std::move(it->second);
    // The older ones can never be installed now: their files go with them.
    for (auto older = staged_.begin(); older != it; ++older) std::remove(older->second.c_str());
    staged_.erase(staged_.begin(), std::next(it));
    return path;
}

void SnapshotStaging::clear() {
    for (const auto& [key, path] : staged_) std::remove(path.c_str());
    staged_.clear();
}

}  // namespace keel::runtime
