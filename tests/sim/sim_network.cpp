#include "sim_network.hpp"

#include <algorithm>

namespace keel::sim {

using raft::Message;
using raft::MessageType;
using raft::NodeId;

SimNetwork::SimNetwork(const SwarmParams& params, Bug bug, Rng rng)
    : params_(params), bug_(bug), rng_(rng) {}

std::vector<std::uint64_t> SimNetwork::route(const Message& m, std::uint64_t now_us) {
    std::vector<std::uint64_t> delays;
    if (!calm_ && rng_.chance(params_.drop_p)) return delays;
    const int copies = (!calm_ && rng_.chance(params_.dup_p)) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
        const std::uint64_t delay_max =
            calm_ ? std::max(params_.delay_min_us,
                             std::min(params_.delay_max_us, calm_delay_max_us_))
                  : params_.delay_max_us;
        std::uint64_t at = now_us + rng_.range(params_.delay_min_us, delay_max);
        if (!calm_ && rng_.chance(params_.reorder_p)) {
            at +=
                rng_.range(0, params_.reorder_extra_max_us);  // held: may overtake or be overtaken
        } else if (params_.fifo_links || calm_) {
            std::uint64_t& last = last_delivery_us_[{m.from, m.to}];
            at = std::max(at, last);
            last = at;
        }
        delays.push_back(at - now_us);
    }
    return delays;
}

void SimNetwork::partition(const std::vector<NodeId>& side, const std::vector<NodeId>& all) {
    for (NodeId a : side) {
        for (NodeId b : all) {
            if (std::find(side.begin(), side.end(), b) != side.end()) continue;
            blocked_.insert({a, b});
            blocked_.insert({b, a});
        }
    }
}

void SimNetwork::partition_asymmetric(const std::vector<NodeId>& all) {
    for (NodeId a : all) {
        for (NodeId b : all) {
            if (a != b && rng_.chance(0.3)) blocked_.insert({a, b});
        }
    }
}

bool SimNetwork::tamper(Message& m) {
    switch (bug_) {
        case Bug::vote_granter:
            if ((m.type == MessageType::vote_response ||
                 m.type == MessageType::pre_vote_response) &&
                m.reject) {
                m.reject = false;
                return true;
            }
            return false;
        case Bug::commit_forger:
            if (m.type == MessageType::append || m.type == MessageType::heartbeat) {
                m.commit += 3;
                return true;
            }
            return false;
        case Bug::ack_eater:
            // "I have everything up to i" becomes "I have your snapshot's
            // worth" (index 0): stale news the leader ignores.
            if (m.type == MessageType::append_response && !m.reject && m.index != 0) {
                m.index = 0;
                return true;
            }
            return false;
        case Bug::ack_forger:
            // The follower said "I lack your prevLogIndex"; the leader hears "I match it".
            if (m.type == MessageType::append_response && m.reject) {
                m.reject = false;
                return true;
            }
            return false;
        default:
            return false;
    }
}

std::string SimNetwork::describe_partition() const {
    if (blocked_.empty()) return "none";
    std::string s;
    for (const auto& [from, to] : blocked_) {
        if (!s.empty()) s += ' ';
        s += std::to_string(from) + "-x>" + std::to_string(to);
    }
    return s;
}

}  // namespace keel::sim
