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

void GroupCountGuard::run() {
    std::unique_lock lock(mu_);
    while (!wake_.wait_for(lock, kPollInterval, [this] { return stop_; })) {
        const HostStatus status = host_.status();
        auto it = status.peer_rejections.find("unknown_group");
        if (it != status.peer_rejections.end() && it->second != 0) {
            on_mismatch_(it->second);
            return;
        }
    }
}

}  // namespace keel::daemon
