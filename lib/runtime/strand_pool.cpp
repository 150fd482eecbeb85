// A few threads for many groups' serial work.  See strand_pool.hpp.
#include "runtime/strand_pool.hpp"

#include <pthread.h>

#include <algorithm>

#include "keel/assert.hpp"

namespace keel::runtime {

namespace {
thread_local const StrandPool::Strand* t_running = nullptr;
}  // namespace

StrandPool::StrandPool(std::size_t threads, std::string name) : name_(std::move(name)) {
    KEEL_ASSERT(threads >= 1, "a strand pool has a thread");
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) {
        threads_.emplace_back([this] {
            pthread_setname_np(pthread_self(), name_.c_str());
            run();
        });
    }
}

StrandPool::~StrandPool() {
    stop();
}

void StrandPool::schedule(Strand& strand) {
    {
        MutexLock lock(mu_);
        queue_.push_back(&strand);
    }
    cv_.notify_one();
}

bool StrandPool::take_back(Strand& strand) {
    MutexLock lock(mu_);
    auto it = std::find(queue_.begin(), queue_.end(), &strand);
    if (it == queue_.end()) return false;
    queue_.erase(it);
    return true;
}

void StrandPool::stop() {
    {
        MutexLock lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_)
        if (t.joinable()) t.join();
}

const StrandPool::Strand* StrandPool::running() {
    return t_running;
}

bool StrandPool::run_slice_here(Strand& strand) {
    const Strand* outer = t_running;
    t_running = &strand;
    const bool again = strand.run_slice();
    t_running = outer;
    return again;
}

void StrandPool::run() {
    for (;;) {
        Strand* strand = nullptr;
        {
            MutexLock lock(mu_);
            while (!stopping_ && queue_.empty()) cv_.wait(lock);
            if (stopping_) return;
            strand = queue_.front();
            queue_.pop_front();
        }
        if (run_slice_here(*strand)) schedule(*strand);
    }
}

}  // namespace keel::runtime
