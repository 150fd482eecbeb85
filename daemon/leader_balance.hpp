// daemon/leader_balance.hpp — spreading the leaders of raftd's groups evenly
// over the members (raftd --groups in a cluster): after bootstrap, growth or
// a failover, the member that leads more than its share hands the excess
// away, one leadership transfer per group, to the voters that lead least.
//
// Pure: a plan from this member's view of its groups; the caller
// (group_balancer in main) asks for transfers and plans again later, so a
// view that is stale or a transfer that fails costs one round, never a
// wrong decision: a transfer is Raft's own (the target must be a voter that
// has caught up, and the core refuses otherwise).
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <vector>

#include "keel/status_report.hpp"
#include "keel/transport.hpp"

namespace keel::daemon {

// One group as this member sees it.
struct GroupView {
    GroupId group = 0;
    bool led_here = false;
    NodeId leader = 0;                  // 0: none known
    std::uint64_t last_index = 0;       // this member's (on the leader: the group's)
    std::vector<MemberStatus> members;  // match_index meaningful where led_here
};

struct LeaderMove {
    GroupId group = 0;
    NodeId to = 0;
};

// The transfers this member (`self`) should ask for now, at most
// `max_moves`.  Each voter's share of the N groups is floor(N / V) or
// ceil(N / V) for V voters (group 1's configuration: every group has the
// same members); this member gives a group away while it leads more than
// ceil, or ceil while some voter leads fewer than floor.  A group goes to
// the voter leading fewest that has acknowledged the group's whole log (a
// transfer to a lagging voter would wait for it to catch up) and that the
// group replicates to (MemberStatus::replicating: a member down, or back
// but not yet answering, would let the transfer time out; decision 0045).
// Voters left out of the shares and never a target: those no group led
// here replicates to (down, or back but not answering yet: the survivors
// share the groups meanwhile, which costs one transfer more than waiting,
// and a member may stay down for long), and `unreachable`: voters whose
// last transfer failed (before the transport reports a member down, it
// looks caught up while nothing is written).
std::vector<LeaderMove> plan_leader_moves(const std::vector<GroupView>& groups, NodeId self,
                                          std::size_t max_moves,
                                          const std::set<NodeId>& unreachable = {});

}  // namespace keel::daemon
