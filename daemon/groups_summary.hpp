// daemon/groups_summary.hpp — raftd --groups N seen whole: how many groups
// this member leads, how many are quiescent or without a leader, which
// alarms they raise (/v1/status "groups", /metrics keel_groups*), and the
// groups' statuses folded into one for the fields /v1/status and /metrics
// have always shown.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "keel/status_report.hpp"

namespace keel::daemon {

struct GroupsSummary {
    std::uint64_t count = 0;
    std::uint64_t led_here = 0;        // role leader on this member
    std::uint64_t quiescent = 0;       // NodeStatus::quiescent
    std::uint64_t without_leader = 0;  // no known leader
    std::uint64_t failed = 0;          // fail-stopped
    // Per alarm (keel's), the groups that raise it.
    std::map<std::string, std::uint64_t> alarms;
};

GroupsSummary summarize_groups(const std::vector<NodeStatus>& groups);

// One status for the fields that predate groups: group 1's (groups[0]) for
// the Raft state (role, term, leader, indexes, members, mode) and for what
// the groups share (the WAL and its fsync latency, the transport's peer
// refusals); the sums of every group's counters and commit latencies;
// every group's alarms; the first failure.  REQUIRES: groups non-empty.
NodeStatus combined_status(const std::vector<NodeStatus>& groups);

}  // namespace keel::daemon
