// What a raftd process serves, opened and stopped.  See served.hpp.
#include "served.hpp"

#include <chrono>
#include <future>
#include <map>
#include <string>
#include <utility>

#include "identity.hpp"

namespace keel::daemon {
namespace {

constexpr std::chrono::milliseconds kTransferWait{2000};
constexpr std::chrono::milliseconds kDrainGrace{5000};
// How often --groups' leader rebalancer looks (group_balancer.hpp).
constexpr std::chrono::milliseconds kRebalanceInterval{1000};

// The most caught-up other voter, or 0.
NodeId transfer_target(const NodeStatus& status) {
    NodeId best = 0;
    std::uint64_t best_match = 0;
    for (const MemberStatus& member : status.members) {
        if (member.spec.id == status.id || !member.spec.voter) continue;
        if (best == 0 || member.match_index > best_match) {
            best = member.spec.id;
            best_match = member.match_index;
        }
    }
    return best;
}

// --groups' peers when the Host opens (the other processes: id -> Raft
// address): from --member (a joiner's: the members that will add it),
// stored in the data dir for the next starts, else the stored ones (which
// GroupPeerSync keeps equal to the groups' members); none with
// --force-new-cluster (this process alone).  An error (logged) when the
// file cannot be read or written.
Result<std::map<NodeId, std::string>> group_peers(const DaemonConfig& config, NodeId self,
                                                  spdlog::logger& log) {
    if (config.force_new_cluster) return std::map<NodeId, std::string>{};
    std::vector<MemberSpec> members = config.members;
    if (members.empty()) {
        Result<std::vector<MemberSpec>> stored = read_members(config.data_dir);
        if (!stored.ok()) {
            log.error("{}", stored.status().to_string());
            return stored.status();
        }
        members = std::move(stored.value());
    } else if (Status s = write_members(config.data_dir, members); !s.ok()) {
        log.error("{}", s.to_string());
        return s;
    }
    std::map<NodeId, std::string> peers;
    for (const MemberSpec& member : members) {
        if (member.id != self) peers[member.id] = member.raft_address;
    }
    return peers;
}

}  // namespace

std::vector<Node*> Served::nodes() const {
    if (!host) return {node.get()};
    std::vector<Node*> all;
    for (const std::unique_ptr<Node>& group : host->groups) all.push_back(group.get());
    return all;
}

void Served::stop(bool transfer_leadership_first) {
    if (balancer) balancer->stop();
    for (Node* n : nodes()) n->stop(transfer_leadership_first);
}

Result<std::unique_ptr<Served>> open_served(const DaemonConfig& config, const NodeOptions& options,
                                            std::size_t groups,
                                            std::function<void(std::uint64_t)> more_groups,
                                            spdlog::logger& log) {
    auto served = std::make_unique<Served>();
    if (groups == 0) {
        served->kv = std::make_shared<KvStateMachine>();
        Result<std::unique_ptr<Node>> opened = Node::open(options, served->kv);
        if (!opened.ok()) {
            log.error("cannot open the node: {}", opened.status().to_string());
            return opened.status();
        }
        served->node = std::move(opened.value());
        return served;
    }
    Result<std::map<NodeId, std::string>> peers = group_peers(config, options.id, log);
    if (!peers.ok()) return peers.status();
    Result<std::unique_ptr<GroupHost>> opened =
        open_group_host(options, *peers, groups, options.logger);
    if (!opened.ok()) {
        log.error("cannot open the groups: {}", opened.status().to_string());
        return opened.status();
    }
    served->host = std::move(opened.value());
    log.info("{} group(s) open", groups);
    served->balancer = std::make_unique<GroupBalancer>(served->host->kv_groups());
    served->balancer->start(kRebalanceInterval);
    if (config.join)
        served->group_count =
            std::make_unique<GroupCountGuard>(*served->host->host, std::move(more_groups));
    return served;
}

void transfer_leaderships(const Served& served, spdlog::logger& log) {
    std::vector<std::pair<NodeId, std::future<Status>>> transfers;
    for (Node* node : served.nodes()) {
        NodeStatus status = node->status();
        if (status.role != Role::leader || status.mode != Mode::cluster || !status.failure.empty())
            continue;
        if (NodeId to = transfer_target(status); to != 0)
            transfers.emplace_back(to, node->transfer_leadership(to));
    }
    if (transfers.empty()) return;
    log.info("transferring leadership of {} group(s) before stopping", transfers.size());
    const auto deadline = std::chrono::steady_clock::now() + kTransferWait;
    for (auto& [to, done] : transfers) {
        if (done.wait_until(deadline) != std::future_status::ready) {
            log.warn("leadership transfer to node {} did not finish in {} ms", to,
                     kTransferWait.count());
        } else if (Status s = done.get(); !s.ok()) {
            log.warn("leadership transfer to node {} failed: {}", to, s.to_string());
        }
    }
}

void shut_down(Served& served, HttpServer& server, spdlog::logger& log) {
    if (served.balancer) served.balancer->stop();  // it would move leaders back
    transfer_leaderships(served, log);
    log.info("HTTP: stop accepting, finishing in-flight requests");
    server.shutdown(kDrainGrace);
    log.info("stopping the node");
    served.stop(!served.host);
    log.info("stopped cleanly");
}

}  // namespace keel::daemon
