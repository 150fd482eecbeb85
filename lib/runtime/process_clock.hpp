// runtime/process_clock.hpp — the one tick timer of a process.  Every
// group of the process subscribes to it; each expiry ticks only the
// subscribers that need ticks now (a group whose core needs_ticks(): a
// quiescent group and a lone voter cost nothing), and the timer is disarmed
// while none does.  So a process of one lone voter runs no timer at all
// (single-node mode), and neither does a process of ten thousand quiescent
// groups: the host's liveness pings run on a timer of their own, armed for
// when the next one is due (process_liveness.hpp).
//
// The clock counts its expiries (ticks()).  A subscriber may say at which
// count it is next due (set_due): the expiries before that pass it by at
// the cost of one comparison.  A group whose core's ticks only count until
// then is handed them all at once when it is due, or before any other
// input if that comes first (replica_ticks.cpp; docs/decisions/0041).
//
// The period is the process's: the first subscriber fixes it, and a later
// one with another period is refused (every group of a process ticks at the
// same heartbeat interval).
//
// Threads: subscribe from any thread; a Subscription's set_needed, stop and
// close on the I/O thread (as Ticker's), its callback runs there; set_due,
// ticks() and the counters from any thread.  A subscription is destroyed on the I/O thread, after
// the I/O thread stopped, or after close().  The clock outlives its
// subscriptions (ProcessServices owns it).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "keel/status.hpp"
#include "runtime/thread_annotations.hpp"
#include "runtime/ticker.hpp"

namespace boost::asio {
class io_context;
}

namespace keel::runtime {

class ProcessClock {
    struct Entry;

public:
    explicit ProcessClock(boost::asio::io_context& io) : io_(io) {}
    boost::asio::io_context& io() { return io_; }
    ~ProcessClock();
    ProcessClock(const ProcessClock&) = delete;
    ProcessClock& operator=(const ProcessClock&) = delete;

    // One subscriber's place on the clock: the interface of a Ticker of its
    // own, without the timer.
    class Subscription {
    public:
        ~Subscription() = default;
        Subscription(const Subscription&) = delete;
        Subscription& operator=(const Subscription&) = delete;
        // Whether the clock ticks this subscriber (I/O thread).
        void set_needed(bool needed);
        void stop() { set_needed(false); }
        // Leaves the clock for good (I/O thread); set_needed does nothing after.
        void close();
        // Once armed() reads false, no tick of this subscriber is counted
        // until it is needed again.
        bool armed() const;
        // Ticks delivered to this subscriber.
        std::uint64_t wakeups() const;
        // Delivers this subscriber's next tick at the expiry that makes
        // ticks() reach `tick` or later, not before (any thread; 0, the
        // default: at every expiry while needed).  Against an expiry running
        // meanwhile: once set_due returned, either that expiry delivers (it
        // read the new due) or ticks() read after set_due shows its count.
        void set_due(std::uint64_t tick);

    private:
        friend class ProcessClock;
        Subscription(ProcessClock& clock, std::shared_ptr<Entry> entry)
            : clock_(clock), entry_(std::move(entry)) {}
        ProcessClock& clock_;
        std::shared_ptr<Entry> entry_;
    };

    // A new subscriber, not needed yet, ticked with `on_tick` every `period`
    // while needed.  invalid_argument if the clock's period is another.
    Result<std::unique_ptr<Subscription>> subscribe(std::chrono::microseconds period,
                                                    std::function<void()> on_tick) EXCLUDES(mu_);

    // The timer's expiries: what the process pays, whatever the number of
    // subscribers.  Any thread.
    std::uint64_t wakeups() const;
    // Whether the timer is armed (any thread).
    bool armed() const;
    // Expiries so far, counted before each one's subscribers are ticked
    // (any thread).
    std::uint64_t ticks() const { return ticks_.load(std::memory_order_seq_cst); }

private:
    struct Entry {
        std::uint64_t id = 0;
        std::function<void()> on_tick;
        bool needed = false;  // I/O thread
        bool closed = false;  // I/O thread
        std::atomic<bool> armed{false};
        std::atomic<std::uint64_t> wakeups{0};
        std::atomic<std::uint64_t> due{0};  // set_due
    };

    void set_needed(const std::shared_ptr<Entry>& e, bool needed);
    void close(const std::shared_ptr<Entry>& e);
    // I/O thread, at each expiry: ticks every needed subscriber.
    void tick();

    boost::asio::io_context& io_;
    Mutex mu_;
    std::uint64_t next_id_ GUARDED_BY(mu_) = 0;
    // The subscribers needed now, by id (I/O thread): the timer is armed
    // while there is one, and an expiry costs what they do, not what the
    // others would.
    std::map<std::uint64_t, std::shared_ptr<Entry>> needed_;
    // At each expiry, the needed subscribers that are due (I/O thread;
    // kept for its capacity).
    std::vector<std::shared_ptr<Entry>> due_now_;
    std::atomic<std::uint64_t> ticks_{0};
    // Made by the first subscribe (which fixes the period), never replaced;
    // armed and disarmed on the I/O thread.
    std::unique_ptr<Ticker> ticker_ GUARDED_BY(mu_);
    std::atomic<Ticker*> timer_{nullptr};  // ticker_, for the I/O thread and the counters
    std::chrono::microseconds period_ GUARDED_BY(mu_){0};
};

}  // namespace keel::runtime
