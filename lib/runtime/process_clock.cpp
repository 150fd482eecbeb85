// The process's one tick timer.  See process_clock.hpp.
#include "runtime/process_clock.hpp"

#include <string>

#include <fmt/format.h>

#include "keel/assert.hpp"

namespace keel::runtime {

ProcessClock::~ProcessClock() = default;

Result<std::unique_ptr<ProcessClock::Subscription>> ProcessClock::subscribe(
    std::chrono::microseconds period, std::function<void()> on_tick) {
    KEEL_ASSERT(period.count() > 0, "a tick period is positive");
    MutexLock lock(mu_);
    if (!ticker_) {
        period_ = period;
        ticker_ = std::make_unique<Ticker>(io_, period, [this] { tick(); });
        timer_.store(ticker_.get(), std::memory_order_release);
    } else if (period != period_) {
        return Status(
            ErrorCode::invalid_argument,
            fmt::format("every group of a process ticks at the process's interval ({} us), "
                        "not {} us",
                        period_.count(), period.count()));
    }
    auto entry = std::make_shared<Entry>();
    entry->id = next_id_++;
    entry->on_tick = std::move(on_tick);
    return std::unique_ptr<Subscription>(new Subscription(*this, std::move(entry)));
}

std::uint64_t ProcessClock::wakeups() const {
    const Ticker* t = timer_.load(std::memory_order_acquire);
    return t != nullptr ? t->wakeups() : 0;
}

bool ProcessClock::armed() const {
    const Ticker* t = timer_.load(std::memory_order_acquire);
    return t != nullptr && t->armed();
}

void ProcessClock::set_needed(const std::shared_ptr<Entry>& e, bool needed) {
    if (e->closed || e->needed == needed) return;
    e->needed = needed;
    e->armed.store(needed, std::memory_order_release);
    if (needed) {
        needed_[e->id] = e;
    } else {
        needed_.erase(e->id);
    }
    Ticker* t = timer_.load(std::memory_order_acquire);
    KEEL_ASSERT(t != nullptr, "a subscriber exists, so the timer does");
    t->set_needed(!needed_.empty());
}

void ProcessClock::close(const std::shared_ptr<Entry>& e) {
    set_needed(e, false);
    e->closed = true;
}

void ProcessClock::tick() {
    // Counted before the dues are read: a subscriber that sets its due
    // meanwhile reads this count after (set_due).
    const std::uint64_t now = ticks_.fetch_add(1, std::memory_order_seq_cst) + 1;
    // A tick may change who is needed (a core that goes quiet, a group that
    // wakes another through the outbox): tick those needed and due when it
    // began and still needed when their turn comes.
    due_now_.clear();
    for (const auto& [id, e] : needed_)
        if (e->due.load(std::memory_order_seq_cst) <= now) due_now_.push_back(e);
    for (const auto& e : due_now_) {
        if (!e->needed || e->closed) continue;
        e->wakeups.fetch_add(1, std::memory_order_relaxed);
        e->on_tick();
    }
    due_now_.clear();
}

void ProcessClock::Subscription::set_needed(bool needed) {
    clock_.set_needed(entry_, needed);
}

void ProcessClock::Subscription::close() {
    clock_.close(entry_);
}

bool ProcessClock::Subscription::armed() const {
    return entry_->armed.load(std::memory_order_acquire);
}

void ProcessClock::Subscription::set_due(std::uint64_t tick) {
    entry_->due.store(tick, std::memory_order_seq_cst);
}

std::uint64_t ProcessClock::Subscription::wakeups() const {
    return entry_->wakeups.load(std::memory_order_relaxed);
}

}  // namespace keel::runtime
