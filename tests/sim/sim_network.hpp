// sim/sim_network.hpp — the simulated network between nodes.
//
// The network decides each message's fate when it is sent: dropped, or
// delivered once or twice (duplication), each copy after its own delay.
// Links are FIFO like the TCP transport (a copy never overtakes an earlier
// one on its link) except for occasional long holds; in some seeds they are
// not FIFO at all and jitter alone reorders.  Partitions are a set
// of blocked directed links, checked when a copy arrives, so a partition
// also swallows messages already in flight.  A symmetric partition blocks
// both directions between two sides; an asymmetric one blocks single
// directions (A hears B, B does not hear A).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "raft/types.hpp"
#include "rng.hpp"
#include "swarm.hpp"

namespace keel::sim {

class SimNetwork {
public:
    SimNetwork(const SwarmParams& params, Bug bug, Rng rng);

    // Delays (microseconds from now_us) of the copies to deliver; empty when dropped.
    std::vector<std::uint64_t> route(const raft::Message& m, std::uint64_t now_us);

    bool blocked(raft::NodeId from, raft::NodeId to) const {
        return blocked_.count({from, to}) != 0;
    }
    // Cuts every link between `side` and the other nodes in `all`.
    void partition(const std::vector<raft::NodeId>& side, const std::vector<raft::NodeId>& all);
    // Cuts single directed links at random among `all`.
    void partition_asymmetric(const std::vector<raft::NodeId>& all);
    // Cuts both directions between a and b.
    void cut(raft::NodeId a, raft::NodeId b) {
        blocked_.insert({a, b});
        blocked_.insert({b, a});
    }
    void heal() { blocked_.clear(); }
    bool partitioned() const { return !blocked_.empty(); }
    // From now on: no drops, duplicates or long holds, and no delay over
    // delay_max_us (the liveness phase).
    void calm(std::uint64_t delay_max_us) {
        calm_ = true;
        calm_delay_max_us_ = delay_max_us;
    }

    // Applies the injected network bug, if any, to a message in flight.
    // Returns true when it changed the message.
    bool tamper(raft::Message& m);

    std::string describe_partition() const;

private:
    const SwarmParams& params_;
    Bug bug_;
    Rng rng_;
    std::set<std::pair<raft::NodeId, raft::NodeId>> blocked_;  // (from, to)
    // FIFO links: the latest delivery time scheduled on each (from, to).
    std::map<std::pair<raft::NodeId, raft::NodeId>, std::uint64_t> last_delivery_us_;
    bool calm_ = false;
    std::uint64_t calm_delay_max_us_ = 0;
};

}  // namespace keel::sim
