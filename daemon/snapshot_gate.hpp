// daemon/snapshot_gate.hpp — at most one POST /v1/snapshot at a time.  Each
// snapshot copies the state machine, so concurrent requests must not each
// start one: a request that arrives while one runs waits for it and gets its
// outcome; past kMaxWaiters waiting, it gets busy (429) at once.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "keel/status.hpp"

namespace keel::daemon {

class SnapshotGate : public std::enable_shared_from_this<SnapshotGate> {
public:
    static constexpr std::size_t kMaxWaiters = 256;
    using Done = std::function<void(Status)>;

    // Calls take(finish) unless a snapshot is running; `take` must call
    // finish exactly once, from any thread.  `done` is called once with the
    // outcome of the snapshot it started or joined, on the thread that calls
    // finish (or at once with busy).  Thread-safe.
    void run(const std::function<void(Done finish)>& take, Done done);

    bool running() const {
        std::lock_guard lock(mu_);
        return running_;
    }

private:
    void finish(const Status& status);

    mutable std::mutex mu_;
    bool running_ = false;       // GUARDED_BY(mu_)
    std::vector<Done> waiters_;  // GUARDED_BY(mu_); the starter first
};

}  // namespace keel::daemon
