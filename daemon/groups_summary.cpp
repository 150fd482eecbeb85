// The groups seen whole.  See groups_summary.hpp.
#include "groups_summary.hpp"

#include <set>

#include "keel/assert.hpp"

namespace keel::daemon {
namespace {

// Adds `from` into `into`; histograms of other buckets are not merged (keel
// gives every group the same ones).
void add_histogram(LatencyHistogram& into, const LatencyHistogram& from) {
    if (into.upper_bounds_us != from.upper_bounds_us) return;
    for (std::size_t i = 0; i < into.counts.size() && i < from.counts.size(); ++i)
        into.counts[i] += from.counts[i];
    into.count += from.count;
    into.sum_us += from.sum_us;
}

}  // namespace

GroupsSummary summarize_groups(const std::vector<NodeStatus>& groups) {
    GroupsSummary summary;
    summary.count = groups.size();
    for (const NodeStatus& s : groups) {
        if (s.role == Role::leader) ++summary.led_here;
        if (s.quiescent) ++summary.quiescent;
        if (s.leader_id == 0) ++summary.without_leader;
        if (!s.failure.empty()) ++summary.failed;
        for (const std::string& alarm : s.alarms) ++summary.alarms[alarm];
    }
    return summary;
}

NodeStatus combined_status(const std::vector<NodeStatus>& groups) {
    KEEL_ASSERT(!groups.empty(), "raftd --groups runs at least one group");
    NodeStatus all = groups.front();
    std::set<std::string> alarms(all.alarms.begin(), all.alarms.end());
    for (std::size_t i = 1; i < groups.size(); ++i) {
        const NodeStatus& s = groups[i];
        all.timer_wakeups += s.timer_wakeups;
        all.elections += s.elections;
        all.proposals += s.proposals;
        all.commits += s.commits;
        all.snapshots_damaged += s.snapshots_damaged;
        add_histogram(all.commit_latency, s.commit_latency);
        alarms.insert(s.alarms.begin(), s.alarms.end());
        if (all.failure.empty()) all.failure = s.failure;
    }
    all.alarms.assign(alarms.begin(), alarms.end());
    return all;
}

}  // namespace keel::daemon
