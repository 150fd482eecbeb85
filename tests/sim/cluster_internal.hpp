// tests/sim/cluster_internal.hpp — trace-text helpers shared by cluster.cpp
// and cluster_workload.cpp; not part of the simulator's interface.
#pragma once

#include <cstdint>
#include <string>

#include "raft/types.hpp"

namespace keel::sim::cluster_detail {

inline std::string n_(raft::NodeId id) {
    return std::string("n") + std::to_string(id);
}
inline std::string s_(std::uint64_t v) {
    return std::to_string(v);
}

}  // namespace keel::sim::cluster_detail
