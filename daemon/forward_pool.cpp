// Blocking calls to other members, off the HTTP threads.  See
// forward_pool.hpp.
#include "forward_pool.hpp"

namespace keel::daemon {

ForwardPool::ForwardPool() {
    for (std::size_t i = 0; i < kThreads; ++i) threads_.emplace_back([this] { run(); });
}

ForwardPool::~ForwardPool() {
    std::deque<std::function<void()>> dropped;
    {
        std::lock_guard lock(mu_);
        stop_ = true;
        dropped.swap(jobs_);
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
}

bool ForwardPool::submit(std::function<void()> job) {
    {
        std::lock_guard lock(mu_);
        if (stop_ || jobs_.size() >= kQueueMax) return false;
        jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
    return true;
}

void ForwardPool::run() {
    std::unique_lock lock(mu_);
    while (true) {
        wake_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (stop_) return;
        std::function<void()> job = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        job();
        lock.lock();
    }
}

}  // namespace keel::daemon
