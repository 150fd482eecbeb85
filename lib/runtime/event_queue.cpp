#include "runtime/event_queue.hpp"

#include <pthread.h>

#include "keel/assert.hpp"

namespace keel::runtime {

EventQueue::EventQueue(std::size_t max_events) : max_events_(max_events) {
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "keel-events");
        loop();
    });
}

EventQueue::~EventQueue() {
    stop();
}

bool EventQueue::push_event(std::function<void()> deliver, bool beyond_limit) {
    {
        MutexLock lock(mu_);
        if (stopping_) return true;  // dropped: the node is stopping
        if (events_ >= max_events_ && !beyond_limit) return false;
        items_.push_back(Item{std::move(deliver), true});
        ++events_;
    }
    cv_.notify_one();
    return true;
}

void EventQueue::push_completion(std::function<void()> complete) {
    {
        MutexLock lock(mu_);
        if (!stopping_) {
            items_.push_back(Item{std::move(complete), false});
            complete = nullptr;
        }
    }
    if (complete) return complete();
    cv_.notify_one();
}

void EventQueue::stop() {
    KEEL_ASSERT(!on_event_thread(), "stop() from an observer callback");
    {
        MutexLock lock(mu_);
        stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
}

std::size_t EventQueue::queued() const {
    MutexLock lock(mu_);
    return items_.size();
}

void EventQueue::loop() {
    for (;;) {
        Item item;
        {
            MutexLock lock(mu_);
            while (!stopping_ && items_.empty()) cv_.wait(lock);
            if (items_.empty()) return;  // stopping, and everything delivered
            item = std::move(items_.front());
            items_.pop_front();
        }
        // No lock held: the callback may call the node, which may queue more.
        item.run();
        if (item.event) {
            MutexLock lock(mu_);
            --events_;
        }
    }
}

}  // namespace keel::runtime
