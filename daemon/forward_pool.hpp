// daemon/forward_pool.hpp — where raftd waits on other members: a few
// threads that run blocking calls (member_client.hpp) off the HTTP threads, so
// that a member asked by another while it asks that one never has its HTTP
// threads all waiting.  Bounded: kThreads calls at once, kQueueMax waiting;
// past that a call is refused (the request answers 429 busy).
//
// Threads: submit from any thread; a job runs on one of the pool's.
// Destruction stops taking jobs, drops the queued ones (destroying them)
// and joins the running ones (each bounded by its own timeout).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace keel::daemon {

class ForwardPool {
public:
    static constexpr std::size_t kThreads = 4;
    static constexpr std::size_t kQueueMax = 256;

    ForwardPool();
    ~ForwardPool();
    ForwardPool(const ForwardPool&) = delete;
    ForwardPool& operator=(const ForwardPool&) = delete;

    // Runs `job` on a pool thread soon; false (and `job` not run) when
    // kQueueMax jobs wait already or the pool is stopping.
    bool submit(std::function<void()> job);

private:
    void run();

    std::mutex mu_;
    std::condition_variable wake_;
    bool stop_ = false;                       // GUARDED_BY(mu_)
    std::deque<std::function<void()>> jobs_;  // GUARDED_BY(mu_)
    std::vector<std::thread> threads_;        // last: start once the rest is set
};

}  // namespace keel::daemon
