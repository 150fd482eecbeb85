// runtime/ticker.hpp — the mode detector's timer.
//
// Raft needs logical ticks only while there is someone to heartbeat or to
// elect against.  The replica calls set_needed(core.needs_ticks()) after
// every batch of core output: with a single voter the timer is disarmed
// and nothing at all runs while the node is idle (no periodic wakeup);
// adding a member arms it, shrinking back to one voter disarms it.  Each
// expiry is counted (NodeStatus::timer_wakeups), which is how tests and
// raft-bench observe that an idle single node never wakes up.
//
// Thread: construct anywhere; set_needed, stop and close on the I/O thread;
// destroy on the I/O thread, after it stopped, or after close(); the
// counters may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace keel::runtime {

class Ticker {
public:
    Ticker(boost::asio::io_context& io, std::chrono::microseconds period,
           std::function<void()> on_tick);
    ~Ticker();
    Ticker(const Ticker&) = delete;
    Ticker& operator=(const Ticker&) = delete;

    // Arms (fixed-rate, one tick per period) or disarms the timer.
    void set_needed(bool needed);
    void stop() { set_needed(false); }
    // Disarms and releases the timer for good (set_needed does nothing
    // after): a group leaving a process whose I/O thread goes on closes its
    // tickers there.  The counters stay.
    void close();

    // Once armed() reads false, every expiry counted before the disarm is in
    // wakeups() and none is counted after it until the next arming (a
    // handler already queued finds the generation changed).
    bool armed() const { return armed_.load(std::memory_order_acquire); }
    std::uint64_t wakeups() const { return wakeups_.load(std::memory_order_relaxed); }
    std::uint64_t arm_count() const { return arms_.load(std::memory_order_relaxed); }

private:
    struct Timer;
    void schedule();

    std::unique_ptr<Timer> timer_;
    const std::chrono::microseconds period_;
    std::function<void()> on_tick_;
    std::uint64_t generation_ = 0;  // bumped on disarm: stale expiries are ignored
    std::atomic<bool> armed_{false};
    std::atomic<std::uint64_t> wakeups_{0};
    std::atomic<std::uint64_t> arms_{0};
};

}  // namespace keel::runtime
