// runtime/event_queue.hpp — the observer's thread: delivers a node's events
// (keel/observer.hpp) one at a time, in the order they were queued, holding
// no keel lock, and completes after them the calls whose refusal must not
// overtake an event (a proposal refused with not_leader after the role
// change that caused it).
//
// The replica queues under its core lock, in the same step that makes the
// change, so the queue's order is the order of the changes.  Events are
// bounded (kMaxQueuedObserverEvents: beyond it push_event refuses, and the
// replica fail-stops); completions are not counted here: each stands for a
// proposal still counted against NodeOptions::max_pending_proposals until it
// runs.
//
// Threads: push_* from any thread (the replica's core lock holder); the
// callbacks run on the "keel-events" thread only.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>

#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

class EventQueue {
public:
    // `max_events`: events queued and not yet delivered, at most.
    explicit EventQueue(std::size_t max_events);
    ~EventQueue();  // stop()
    EventQueue(const EventQueue&) = delete;
    EventQueue& operator=(const EventQueue&) = delete;

    // Queues an event; false (nothing queued) when max_events are waiting.
    // `beyond_limit`: queued even then (the last event, a fail-stop).
    bool push_event(std::function<void()> deliver, bool beyond_limit = false);
    // Queues a completion to run after everything queued before it.  After
    // stop() it runs at once, on the calling thread.
    void push_completion(std::function<void()> complete);

    // Delivers what is queued, then joins the thread; later events are
    // dropped.  Idempotent.  REQUIRES: not called from a callback.
    void stop();

    bool on_event_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
    // Events and completions queued and not yet run (tests).
    std::size_t queued() const;

private:
    struct Item {
        std::function<void()> run;
        bool event = false;
    };
    void loop();

    mutable Mutex mu_;
    CondVar cv_;
    std::deque<Item> items_ GUARDED_BY(mu_);
    std::size_t events_ GUARDED_BY(mu_) = 0;  // events in items_
    bool stopping_ GUARDED_BY(mu_) = false;
    const std::size_t max_events_;
    std::thread thread_;
};

}  // namespace keel::runtime
