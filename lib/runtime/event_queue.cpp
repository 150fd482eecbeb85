// The observer's thread, or a Host's event pool.  See event_queue.hpp.
#include "runtime/event_queue.hpp"

#include <pthread.h>

#include "keel/assert.hpp"

namespace keel::runtime {

EventQueue::EventQueue(std::size_t max_events, StrandPool* pool)
    : pool_(pool), max_events_(max_events) {
    if (pool_ != nullptr) return;
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "keel-events");
        loop();
    });
}

EventQueue::~EventQueue() {
    stop();
}

bool EventQueue::push_event(std::function<void()> deliver, bool beyond_limit) {
    bool schedule = false;
    {
        MutexLock lock(mu_);
        if (stopping_) return true;  // dropped: the node is stopping
        if (events_ >= max_events_ && !beyond_limit) return false;
        items_.push_back(Item{std::move(deliver), true});
        ++events_;
        if (pool_ != nullptr && !scheduled_) schedule = scheduled_ = true;
    }
    if (schedule) {
        pool_->schedule(*this);
    } else if (pool_ == nullptr) {
        cv_.notify_one();
    }
    return true;
}

void EventQueue::push_completion(std::function<void()> complete) {
    bool schedule = false;
    {
        MutexLock lock(mu_);
        if (!stopping_) {
            items_.push_back(Item{std::move(complete), false});
            complete = nullptr;
            if (pool_ != nullptr && !scheduled_) schedule = scheduled_ = true;
        }
    }
    if (complete) return complete();
    if (schedule) {
        pool_->schedule(*this);
    } else if (pool_ == nullptr) {
        cv_.notify_one();
    }
}

void EventQueue::stop() {
    KEEL_ASSERT(!on_event_thread(), "stop() from an observer callback");
    bool scheduled = false;
    {
        MutexLock lock(mu_);
        stopping_ = true;
        scheduled = scheduled_;
    }
    if (pool_ == nullptr) {
        cv_.notify_one();
        if (thread_.joinable()) thread_.join();
        return;
    }
    // Nothing is queued from now on: once delivered, the queue is done.
    if (scheduled && pool_->take_back(*this)) {
        while (StrandPool::run_slice_here(*this)) {
        }
        return;
    }
    MutexLock lock(mu_);
    while (scheduled_) cv_.wait(lock);
}

std::size_t EventQueue::queued() const {
    MutexLock lock(mu_);
    return items_.size();
}

bool EventQueue::run_one() {
    Item item;
    {
        MutexLock lock(mu_);
        if (items_.empty()) return false;
        item = std::move(items_.front());
        items_.pop_front();
    }
    // No lock held: the callback may call the node, which may queue more.
    item.run();
    if (item.event) {
        MutexLock lock(mu_);
        --events_;
    }
    return true;
}

bool EventQueue::run_slice() {
    std::size_t n = 0;
    {
        MutexLock lock(mu_);
        n = items_.size();
    }
    for (std::size_t i = 0; i < n && run_one(); ++i) {
    }
    MutexLock lock(mu_);
    if (!items_.empty()) return true;
    scheduled_ = false;
    cv_.notify_all();  // stop() waits for this
    return false;
}

void EventQueue::loop() {
    for (;;) {
        {
            MutexLock lock(mu_);
            while (!stopping_ && items_.empty()) cv_.wait(lock);
            if (items_.empty()) return;  // stopping, and everything delivered
        }
        run_one();
    }
}

}  // namespace keel::runtime
