#include "snapshot_gate.hpp"

#include <string>

#include <fmt/format.h>

namespace keel::daemon {

void SnapshotGate::run(const std::function<void(Done finish)>& take, Done done) {
    bool start = false, full = false;
    {
        std::lock_guard lock(mu_);
        if (!running_) {
            running_ = start = true;
        } else if (waiters_.size() > kMaxWaiters) {  // the starter plus kMaxWaiters
            full = true;
        }
        if (!full) waiters_.push_back(std::move(done));
    }
    // Outside the lock: `done` and `take` may answer requests inline.
    if (full) {
        return done(
            Status(ErrorCode::busy,
                   fmt::format("{} requests already wait for the running snapshot", kMaxWaiters)));
    }
    if (start) take([self = shared_from_this()](Status status) { self->finish(status); });
}

void SnapshotGate::finish(const Status& status) {
    std::vector<Done> waiters;
    {
        std::lock_guard lock(mu_);
        waiters.swap(waiters_);
        running_ = false;
    }
    for (Done& done : waiters) done(status);
}

}  // namespace keel::daemon
