// daemon/group_count_guard.hpp — raftd --groups N --join: the cluster's
// group count must be N (a joiner asks a member first, cluster_probe.hpp;
// this guard is the check when no member could be asked), or the joiner would put keys in other
// groups than the cluster does.  A member sends a process bytes for a group only when the cluster
// has that group, so bytes for a group this process does not serve (the Host's "unknown_group"
// refusals, counted only after a hello of this cluster) once every group is open mean the cluster
// has more groups than N.  The guard sees that and reports it once.  (A cluster with fewer groups
// sends nothing for the joiner's extra groups: those are never added, and /readyz names them.)
//
// Owns: one thread ("group-count") that reads the Host's status every
// kPollInterval until it stops.
// Threads: construction and destruction on main's thread; `on_mismatch`
// runs on the guard's thread, once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "keel/host.hpp"

namespace keel::daemon {

class GroupCountGuard {
public:
    static constexpr std::chrono::milliseconds kPollInterval{100};

    // REQUIRES: every group is open on `host` (refusals before do not
    // count).  `host` must outlive the guard.  `on_mismatch(refusals)` is called once,
    // with the count of unknown-group refusals seen, must not block for
    // long and must not destroy the guard.
    GroupCountGuard(const Host& host, std::function<void(std::uint64_t)> on_mismatch);
    ~GroupCountGuard();
    GroupCountGuard(const GroupCountGuard&) = delete;
    GroupCountGuard& operator=(const GroupCountGuard&) = delete;

private:
    void run();

    const Host& host_;
    const std::function<void(std::uint64_t)> on_mismatch_;
    std::mutex mu_;
    std::condition_variable wake_;
    bool stop_ = false;   // GUARDED_BY(mu_)
    std::thread thread_;  // last: starts once the rest is set
};

}  // namespace keel::daemon
