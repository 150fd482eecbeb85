// daemon/group_balancer.hpp — raftd --groups' leader rebalancer: a thread
// that, every interval, plans (leader_balance.hpp) from this member's view
// of its groups and asks keel for the leadership transfers, so that the
// groups' leaders spread over the members after bootstrap, growth or a
// failover.  Each member runs one; only the groups a member leads move.
//
// Threads: start/stop from main's thread; round() from any one thread at a
// time (the balancer's, or a test's).  keel completes transfers on its own
// threads: the callbacks only count.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "kv_shards.hpp"

namespace keel::daemon {

class GroupBalancer {
public:
    // Transfers asked for in one round, at most: a failover's re-spread
    // goes a round at a time, never all at once.
    static constexpr std::size_t kMovesPerRoundMax = 16;
    // Rounds a voter is left out after a transfer to it failed (it may be
    // down: leadership_balance.hpp's `unreachable`).
    static constexpr std::uint64_t kFailedTargetRounds = 10;

    // REQUIRES: the groups' nodes outlive the balancer (or its stop()).
    explicit GroupBalancer(std::vector<KvGroup> groups) : groups_(std::move(groups)) {}
    ~GroupBalancer() { stop(); }

    // Runs round() every `interval` on a thread of its own.
    void start(std::chrono::milliseconds interval);
    void stop();

    // Plans and asks for the transfers; none while the previous round's are
    // still running.  Returns how many it asked for.
    std::size_t round();
    // Transfers asked for since start, and those that failed.
    std::uint64_t moves() const { return moves_.load(); }
    std::uint64_t failed_moves() const { return failed_.load(); }

private:
    std::vector<KvGroup> groups_;
    std::uint64_t rounds_ = 0;  // the round()'s thread only
    std::mutex failed_mu_;
    // Target -> the round until which it is left out.  GUARDED_BY(failed_mu_)
    std::map<NodeId, std::uint64_t> failed_until_;
    std::atomic<std::size_t> in_flight_{0};
    std::atomic<std::uint64_t> moves_{0}, failed_{0};
    std::mutex mu_;
    std::condition_variable wake_;
    bool stopping_ = false;  // GUARDED_BY(mu_)
    std::thread thread_;
};

}  // namespace keel::daemon
