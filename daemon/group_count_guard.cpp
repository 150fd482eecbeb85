// raftd --groups --join: the cluster's group count.  See group_count_guard.hpp.
#include "group_count_guard.hpp"

#include <string>

namespace keel::daemon {

GroupCountGuard::GroupCountGuard(const Host& host, std::function<void(std::uint64_t)> on_mismatch)
    : host_(host), on_mismatch_(std::move(on_mismatch)) {
    thread_ = std::thread([this] { run(); });
}

GroupCountGuard::~GroupCountGuard() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

namespace {

std::uint64_t unknown_group_refusals(const Host& host) {
    const HostStatus status = host.status();
    auto it = status.peer_rejections.find("unknown_group");
    return it == status.peer_rejections.end() ? 0 : it->second;
}

}  // namespace

void GroupCountGuard::run() {
    // Refused while the groups were still opening (a restarted member's
    // peers send at once) say nothing about the count.
    const std::uint64_t before = unknown_group_refusals(host_);
    std::unique_lock lock(mu_);
    while (!wake_.wait_for(lock, kPollInterval, [this] { return stop_; })) {
        const std::uint64_t now = unknown_group_refusals(host_);
        if (now > before) {
            on_mismatch_(now - before);
            return;
        }
    }
}

}  // namespace keel::daemon
