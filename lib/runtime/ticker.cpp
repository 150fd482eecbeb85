#include "runtime/ticker.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace keel::runtime {

struct Ticker::Timer {
    explicit Timer(boost::asio::io_context& io) : timer(io) {}
    boost::asio::steady_timer timer;
};

Ticker::Ticker(boost::asio::io_context& io, std::chrono::microseconds period,
               std::function<void()> on_tick)
    : timer_(std::make_unique<Timer>(io)), period_(period), on_tick_(std::move(on_tick)) {}

Ticker::~Ticker() = default;

void Ticker::close() {
    stop();
    timer_.reset();
}

void Ticker::set_needed(bool needed) {
    if (needed == armed() || !timer_) return;
    armed_.store(needed, std::memory_order_release);  // after the counted wakeups
    if (needed) {
        arms_.fetch_add(1, std::memory_order_relaxed);
        timer_->timer.expires_after(period_);
        schedule();
    } else {
        ++generation_;
        timer_->timer.cancel();
    }
}

void Ticker::schedule() {
    const std::uint64_t generation = generation_;
    timer_->timer.async_wait([this, generation](const boost::system::error_code& ec) {
        if (ec || generation != generation_ || !armed()) return;  // disarmed meanwhile
        wakeups_.fetch_add(1, std::memory_order_relaxed);
        on_tick_();
        if (!armed() || generation != generation_) return;  // the tick disarmed it
        // Fixed rate, but no burst of catch-up ticks after a stall.
        const auto now = boost::asio::steady_timer::clock_type::now();
        auto next = timer_->timer.expiry() + period_;
        if (next < now) next = now + period_;
        timer_->timer.expires_at(next);
        schedule();
    });
}

}  // namespace keel::runtime
