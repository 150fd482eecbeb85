// tests/common/gate.hpp — a gate a callback waits at until the test opens it,
// so that a test controls what is queued or running behind that callback.
#pragma once

#include <condition_variable>
#include <mutex>

namespace keel::test {

struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool entered = false;
    bool open = false;
    // Called by the callback held: says it arrived, then waits for release().
    void wait_open() {
        std::unique_lock lock(mu);
        entered = true;
        cv.notify_all();
        cv.wait(lock, [&] { return open; });
    }
    // Called by the test: returns once a callback waits at the gate.
    void wait_entered() {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return entered; });
    }
    void release() {
        std::lock_guard lock(mu);
        open = true;
        cv.notify_all();
    }
};

}  // namespace keel::test
