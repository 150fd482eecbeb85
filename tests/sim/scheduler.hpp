// sim/scheduler.hpp — the simulated clock and its queue of timed events.
//
// Time is a count of simulated microseconds and only moves when the next
// event is popped.  Events at the same instant run in the order they were
// scheduled (a sequence number breaks ties), so a run is a pure function of
// the seed.
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include "keel/assert.hpp"

namespace keel::sim {

class Scheduler {
public:
    // A run never holds more events than this; more means a feedback loop.
    static constexpr std::size_t kEventsPendingMax = 1'000'000;

    std::uint64_t now_us() const { return now_us_; }

    void at(std::uint64_t time_us, std::function<void()> fn) {
        KEEL_ASSERT(time_us >= now_us_, "an event cannot be scheduled in the past");
        KEEL_ASSERT(queue_.size() < kEventsPendingMax, "event queue over its limit");
        queue_.push(Event{time_us, seq_++, std::move(fn)});
    }
    void after(std::uint64_t delay_us, std::function<void()> fn) {
        at(now_us_ + delay_us, std::move(fn));
    }

    bool empty() const { return queue_.empty(); }
    std::uint64_t next_time_us() const { return queue_.top().time_us; }

    // Runs the earliest event; returns false when there is none.
    bool run_one() {
        if (queue_.empty()) return false;
        // top() is const only to protect the heap order; moving the payload
        // out just before pop() cannot disturb it.
        Event e = std::move(const_cast<Event&>(queue_.top()));
        queue_.pop();
        now_us_ = e.time_us;
        e.fn();
        return true;
    }

private:
    struct Event {
        std::uint64_t time_us;
        std::uint64_t seq;
        std::function<void()> fn;
    };
    struct Later {
        bool operator()(const Event& a, const Event& b) const {
            return a.time_us != b.time_us ? a.time_us > b.time_us : a.seq > b.seq;
        }
    };
    std::priority_queue<Event, std::vector<Event>, Later> queue_;
    std::uint64_t now_us_ = 0;
    std::uint64_t seq_ = 0;
};

}  // namespace keel::sim
