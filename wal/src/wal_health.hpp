// wal_health.hpp — the WAL's health as Wal::failed() and Wal::no_space()
// report it: the failed state (entered once, never left) and which parts
// of the WAL are waiting for disk space.
//
// Threads: any.  Both locks are leaves; the callers run
// Options::on_health_change, with no lock held, when a call here says the
// health changed.
#pragma once

#include <atomic>
#include <mutex>

#include "keel/status.hpp"

namespace keel::wal::detail {

class WalHealth {
public:
    // Who is waiting for space; no_space() is the OR of them.
    enum class NoSpaceSource { preparation, flusher };

    bool failed() const { return failed_.load(); }
    // The failure; ok while not failed.
    Status failure() const {
        if (!failed()) return Status();
        std::lock_guard lock(failure_mu_);
        return failure_;
    }
    // Enters the failed state with `status` (which must not be ok); true if
    // this call did, false if it had been entered before (the first failure
    // stays).
    bool enter_failed(Status status) {
        std::lock_guard lock(failure_mu_);
        if (failed_.load()) return false;
        failure_ = std::move(status);
        failed_.store(true);
        return true;
    }

    bool no_space() const { return no_space_.load(); }
    // Records whether `source` waits for space; true if no_space() changed.
    bool set_no_space(NoSpaceSource source, bool waiting) {
        std::lock_guard lock(health_mu_);
        (source == NoSpaceSource::preparation ? preparation_no_space_ : flusher_no_space_) =
            waiting;
        const bool now = preparation_no_space_ || flusher_no_space_;
        const bool changed = now != no_space_.load();
        no_space_.store(now);
        return changed;
    }

private:
    mutable std::mutex health_mu_;
    bool preparation_no_space_ = false;  // under health_mu_
    bool flusher_no_space_ = false;      // under health_mu_
    std::atomic<bool> no_space_{false};

    mutable std::mutex failure_mu_;
    std::atomic<bool> failed_{false};
    Status failure_;  // set once, under failure_mu_, before failed_
};

}  // namespace keel::wal::detail
