// raft/config_history.hpp — which configuration is in effect at each index.
//
// A configuration takes effect as soon as its entry is in the log and
// reverts when that entry is truncated (dissertation §4.1), so the node
// keeps the configuration entries it holds: the base (from the snapshot or
// the compaction point) plus every config entry after it.  The effective
// configuration is the last one; config_at(i) answers for snapshots.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "keel/assert.hpp"
#include "raft/types.hpp"

namespace keel::raft {

class ConfigHistory {
public:
    void reset(Index index, Configuration config) {
        ++version_;
        history_.clear();
        history_.emplace_back(index, std::move(config));
        note_latest();
    }
    // A config entry at index (after every one already held) took effect.
    void add(Index index, Configuration config) {
        KEEL_ASSERT(history_.empty() || history_.back().first < index,
                    "config entries are added in log order");
        ++version_;
        history_.emplace_back(index, std::move(config));
        note_latest();
    }
    // The log was truncated: entries from index on are gone.  Returns true if
    // the effective configuration changed.
    bool truncate_from(Index index) {
        bool changed = false;
        while (history_.size() > 1 && history_.back().first >= index) {
            history_.pop_back();
            changed = true;
            ++version_;
        }
        KEEL_ASSERT(history_.back().first < index, "the base configuration is never truncated");
        if (changed) note_latest();
        return changed;
    }
    // The log was compacted through index: forget configs superseded by then.
    void compact(Index index) {
        while (history_.size() > 1 && history_[1].first <= index) {
            history_.erase(history_.begin());
            ++version_;
        }
    }
    // Changes whenever the history does: a caller that saw the latest
    // configuration at one version need not compare it again until this
    // moves (Core::has_actions runs per message; decision 0030).
    std::uint64_t version() const { return version_; }
    const Configuration& latest() const { return history_.back().second; }
    Index latest_index() const { return history_.back().first; }
    // latest().contains(id), from a copy of the member ids kept here: every
    // message is admitted by it (admission.cpp), and with thousands of
    // groups the configuration's map costs cache misses (decision 0036).
    bool latest_contains(NodeId id) const {
        if (latest_count_ > kLatestIdsMax) return latest().contains(id);
        for (std::size_t i = 0; i < latest_count_; ++i)
            if (latest_ids_[i] == id) return true;
        return false;
    }
    // The latest configuration's only voter, or kNoNode if it has several
    // (or none): asked after every message a follower steps
    // (maybe_campaign_alone), so kept here rather than counted in the map.
    NodeId latest_lone_voter() const { return latest_lone_voter_; }
    // latest().voters(), kept here: every commit and every CheckQuorum check
    // counts them, and building the list each time was an allocation per
    // acknowledgement (decision 0050).
    const std::vector<NodeId>& latest_voters() const { return latest_voters_; }
    // Whether `id` is a voter of the configuration in effect at `index` or
    // of any configuration entry after it.
    bool voter_at_or_after(Index index, NodeId id) const {
        for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
            if (it->second.is_voter(id)) return true;
            if (it->first <= index) break;
        }
        return false;
    }
    // REQUIRES: index >= the base's index.
    const Configuration& at(Index index) const {
        KEEL_ASSERT(index >= history_.front().first, "configuration at a compacted index");
        for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
            if (it->first <= index) return it->second;
        }
        KEEL_UNREACHABLE("config history");
    }

    // Members latest_contains() holds ids of; a larger configuration is
    // looked up in its map.
    static constexpr std::size_t kLatestIdsMax = 7;

private:
    // After every change of history_.back().
    void note_latest() {
        const Configuration& c = history_.back().second;
        latest_voters_.clear();
        for (const auto& [id, info] : c.members)
            if (info.voter) latest_voters_.push_back(id);
        latest_lone_voter_ = latest_voters_.size() == 1 ? latest_voters_.front() : kNoNode;
        latest_count_ = c.members.size();
        if (latest_count_ > kLatestIdsMax) return;
        std::size_t i = 0;
        for (const auto& [id, info] : c.members) latest_ids_[i++] = id;
    }

    std::vector<std::pair<Index, Configuration>> history_{{0, Configuration{}}};
    std::uint64_t version_ = 1;     // the reported side starts at 0: compared once
    std::size_t latest_count_ = 0;  // members of latest()
    NodeId latest_lone_voter_ = kNoNode;
    std::vector<NodeId> latest_voters_;  // in id order, as Configuration::voters()
    std::array<NodeId, kLatestIdsMax> latest_ids_{};
};

}  // namespace keel::raft
