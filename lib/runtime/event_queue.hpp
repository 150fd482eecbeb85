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
// The callbacks run on a thread of the queue's own ("keel-events"), or, for
// the groups of a keel::Host, on the Host's event pool (strand_pool.hpp):
// one thread for every group's observer, each group's callbacks in its
// order, one at a time, never two of one group at once.
//
// Threads: push_* from any thread (the replica's core lock holder); the
// callbacks run on the queue's thread (or a pool thread) only.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>

#include "runtime/strand_pool.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

class EventQueue final : private StrandPool::Strand {
public:
    // `max_events`: events queued and not yet delivered, at most.  `pool`
    // (null: a thread of the queue's own) must outlive the queue.
    explicit EventQueue(std::size_t max_events, StrandPool* pool = nullptr);
    ~EventQueue() override;  // stop()
    EventQueue(const EventQueue&) = delete;
    EventQueue& operator=(const EventQueue&) = delete;

    // Queues an event; false (nothing queued) when max_events are waiting.
    // `beyond_limit`: queued even then (the last event, a fail-stop).
    bool push_event(std::function<void()> deliver, bool beyond_limit = false);
    // Queues a completion to run after everything queued before it.  After
    // stop() it runs at once, on the calling thread.
    void push_completion(std::function<void()> complete);

    // Delivers what is queued, then joins the thread (pooled: waits until
    // no pool thread delivers for this queue; if it is only queued there,
    // delivers on the calling thread instead); later events are dropped.
    // Idempotent.  REQUIRES: not called from a callback of this queue.
    void stop();

    // Whether the calling thread runs this queue's callbacks now.
    bool on_event_thread() const {
        if (pool_ != nullptr) return StrandPool::running() == this;
        return std::this_thread::get_id() == thread_.get_id();
    }
    // Events and completions queued and not yet run (tests).
    std::size_t queued() const;

private:
    struct Item {
        std::function<void()> run;
        bool event = false;
    };
    void loop();
    // Pooled: delivers what was queued when it began (StrandPool::Strand).
    bool run_slice() override;
    // Runs the next item; false when none is queued.
    bool run_one() EXCLUDES(mu_);

    StrandPool* const pool_;
    mutable Mutex mu_;
    CondVar cv_;
    std::deque<Item> items_ GUARDED_BY(mu_);
    std::size_t events_ GUARDED_BY(mu_) = 0;  // events in items_
    bool stopping_ GUARDED_BY(mu_) = false;
    // Pooled: in the pool's run queue or run by a pool thread.
    bool scheduled_ GUARDED_BY(mu_) = false;
    const std::size_t max_events_;
    std::thread thread_;
};

}  // namespace keel::runtime
