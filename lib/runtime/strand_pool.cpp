// A few threads for many groups' serial work.  See strand_pool.hpp.
#include "runtime/strand_pool.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>

#include "keel/assert.hpp"

namespace keel::runtime {

namespace {
thread_local const StrandPool::Strand* t_running = nullptr;
// The pool this thread's Batch holds strands for (null: none), and them;
// the vector keeps its capacity from one batch to the next.
thread_local StrandPool* t_batch_pool = nullptr;
thread_local std::vector<StrandPool::Strand*> t_batch;
}  // namespace

StrandPool::Batch::Batch(StrandPool* pool) {
    if (pool == nullptr || t_batch_pool != nullptr) return;
    KEEL_ASSERT(t_batch.empty(), "a thread's batch starts empty");
    pool_ = pool;
    t_batch_pool = pool;
}

StrandPool::Batch::~Batch() {
    if (pool_ == nullptr) return;
    t_batch_pool = nullptr;
    if (t_batch.empty()) return;
    pool_->schedule_all(t_batch);
    t_batch.clear();
}

StrandPool::StrandPool(std::size_t threads, std::string name) : name_(std::move(name)) {
    KEEL_ASSERT(threads >= 1, "a strand pool has a thread");
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) {
        threads_.emplace_back([this] {
            pthread_setname_np(pthread_self(), name_.c_str());
            // Woken for a strand, a pool thread waits for the thread that
            // scheduled it (the I/O thread, mid-pass) to block or use up
            // its slice rather than preempting it: a pair of context
            // switches saved per wakeup on a busy machine, none lost with a
            // core idle (decision 0054).  Best effort.
            sched_param normal{};  // SCHED_BATCH takes priority 0
            (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &normal);
            run();
        });
    }
}

StrandPool::~StrandPool() {
    stop();
}

void StrandPool::schedule(Strand& strand) {
    if (t_batch_pool == this) {
        t_batch.push_back(&strand);
        if (t_batch.size() < kBatchStrandsMax) return;
        schedule_all(t_batch);
        t_batch.clear();
        return;
    }
    {
        MutexLock lock(mu_);
        queue_.push_back(&strand);
    }
    cv_.notify_one();
}

void StrandPool::schedule_all(const std::vector<Strand*>& strands) {
    {
        MutexLock lock(mu_);
        queue_.insert(queue_.end(), strands.begin(), strands.end());
    }
    const std::size_t wake = std::min(strands.size(), threads_.size());
    for (std::size_t i = 0; i < wake; ++i) cv_.notify_one();
}

std::size_t StrandPool::queued() const {
    MutexLock lock(mu_);
    return queue_.size();
}

bool StrandPool::take_back(Strand& strand) {
    if (t_batch_pool == this) {
        auto held = std::find(t_batch.begin(), t_batch.end(), &strand);
        if (held != t_batch.end()) {
            t_batch.erase(held);
            return true;
        }
    }
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
