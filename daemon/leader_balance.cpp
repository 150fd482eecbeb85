// Spreading the groups' leaders.  See leader_balance.hpp.
#include "leader_balance.hpp"

#include <algorithm>
#include <map>

namespace keel::daemon {

std::vector<LeaderMove> plan_leader_moves(const std::vector<GroupView>& groups, NodeId self,
                                          std::size_t max_moves,
                                          const std::set<NodeId>& unreachable) {
    std::vector<LeaderMove> moves;
    if (groups.empty() || max_moves == 0) return moves;
    // The voters this member's groups stream to: a voter down (probe since
    // the transport reported it unreachable) is in none of them.
    std::set<NodeId> answering;
    for (const GroupView& g : groups)
        if (g.led_here)
            for (const MemberStatus& m : g.members)
                if (m.replicating) answering.insert(m.spec.id);
    // Voters and how many groups each leads, as this member knows them.
    std::map<NodeId, std::size_t> led;
    for (const MemberStatus& m : groups.front().members)
        if (m.spec.voter && (m.spec.id == self || (answering.count(m.spec.id) &&
                                                   !unreachable.count(m.spec.id))))
            led[m.spec.id] = 0;
    if (led.size() < 2 || !led.count(self)) return moves;
    for (const GroupView& g : groups) {
        if (g.leader != 0 && led.count(g.leader)) ++led[g.leader];
    }
    const std::size_t n = groups.size(), voters = led.size();
    const std::size_t floor_share = n / voters, ceil_share = floor_share + (n % voters != 0);
    for (const GroupView& g : groups) {
        if (moves.size() >= max_moves) break;
        if (!g.led_here) continue;
        // The voter that leads fewest, among those caught up in this group.
        NodeId best = 0;
        for (const MemberStatus& m : g.members) {
            const NodeId id = m.spec.id;
            if (id == self || !m.spec.voter || !led.count(id) || !m.replicating ||
                m.match_index < g.last_index)
                continue;
            if (best == 0 || led[id] < led[best]) best = id;
        }
        if (best == 0) continue;
        const std::size_t mine = led[self];
        const bool over = mine > ceil_share || (mine == ceil_share && led[best] < floor_share);
        if (!over || led[best] + 1 > ceil_share) continue;
        moves.push_back({g.group, best});
        --led[self];
        ++led[best];
    }
    return moves;
}

}  // namespace keel::daemon
