// daemon/served.hpp — what one raftd process serves: its one keel::Node, or
// with --groups a GroupHost and its groups (with the leader balancer and,
// for a joiner, the group-count guard); how it is opened from the flags, and
// how it stops in the order that costs clients least (main.cpp's header).
//
// Threads: main's thread only (the nodes' own calls are thread-safe).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <spdlog/logger.h>

#include "flags.hpp"
#include "group_balancer.hpp"
#include "group_count_guard.hpp"
#include "group_host.hpp"
#include "http_server.hpp"
#include "keel/keel.hpp"
#include "kv_state_machine.hpp"

namespace keel::daemon {

struct Served {
    std::shared_ptr<KvStateMachine> kv;  // without --groups
    std::unique_ptr<Node> node;          // without --groups
    std::unique_ptr<GroupHost> host;     // with --groups
    // With --groups: spreads the groups' leaders (after `host`: stops first).
    std::unique_ptr<GroupBalancer> balancer;
    // With --groups --join: stops raftd if the cluster has more groups.
    std::unique_ptr<GroupCountGuard> group_count;

    // The node, or group 1 (whose membership is every group's).
    Node& first() const { return host ? *host->groups.front() : *node; }
    KvStateMachine& first_kv() const { return host ? *host->maps.front() : *kv; }
    std::vector<Node*> nodes() const;
    void stop(bool transfer_leadership_first);
};

// Opens what `config` asks for: one node when `groups` is 0, else `groups`
// groups on a Host (its peers: the --member list, stored in the data dir
// for the next starts, else the stored one; none with --force-new-cluster)
// with its leader balancer running, and for a joiner the guard that calls
// `more_groups(refusals)` (on a keel thread: hand over only) when the
// cluster has more groups than this process.  An error (logged) when it
// cannot be opened.
Result<std::unique_ptr<Served>> open_served(const DaemonConfig& config, const NodeOptions& options,
                                            std::size_t groups,
                                            std::function<void(std::uint64_t)> more_groups,
                                            spdlog::logger& log);

// Hands the leadership of every group this process leads in a cluster to
// its most caught-up other voter, all at once, waiting a bounded time in
// all (failures logged).
void transfer_leaderships(const Served& served, spdlog::logger& log);

// The orderly stop: the balancer, then the leaderships handed over, then
// the HTTP server drained (bounded), then the nodes stopped.
void shut_down(Served& served, HttpServer& server, spdlog::logger& log);

}  // namespace keel::daemon
