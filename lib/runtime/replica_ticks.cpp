// Ticks of an awake replica, handed over when due.  See replica.hpp
// ("ticks") and docs/decisions/0041-idle-ticks.md.
//
// The process clock counts its expiries; the core is handed every one that
// elapsed while it needed ticks, in order with its other inputs: each
// holder of the core lock first brings it up to the clock's count
// (catch_up_ticks, in one Core::tick(n) call), and before letting go tells
// the clock at which count the core is next due (schedule_next_tick).  The
// clock steps the group only then.  Between, the clock's expiries pass the
// group by: a follower that hears from its leader is stepped by messages
// only, never by its clock, and ticked one extra addition per message.
// What the core does is what one tick() per expiry would have made it do
// (Core::ticks_until_due); the expiries that would have found the lock
// held are the only ones that may now come a little earlier or later.
#include <algorithm>

#include "runtime/replica.hpp"

namespace keel::runtime {

void Replica::catch_up_ticks() {
    if (!locked_.ticks_needed || halted()) return;
    // The process's clock, shared by its groups (its line is hot), rather
    // than through this group's subscription (read at every lock).
    const std::uint64_t now = seat_.services.clock().ticks();
    if (now <= locked_.ticks_seen) return;
    const std::uint64_t ticks = now - locked_.ticks_seen;
    locked_.ticks_seen = now;
    const bool core_due = ticks >= core_->ticks_until_due();
    core_->tick(ticks);
    if (locked_.transfer) {
        if (locked_.transfer->ticks_left <= ticks) {
            auto done = std::move(locked_.transfer->done);
            locked_.transfer.reset();
            done(Status(ErrorCode::timeout, "leadership transfer did not complete"));
        } else {
            locked_.transfer->ticks_left -= ticks;
        }
    }
    // Ticks that only counted left nothing to carry out.
    if (core_due) run_core();
}

void Replica::schedule_next_tick() {
    // Bounded: an expiry comes once per tick period, and one catch-up takes
    // the core to the clock's count.
    for (int round = 0; round < 2; ++round) {
        if (!locked_.ticks_needed || halted()) return;
        std::uint64_t until = core_->ticks_until_due();
        if (locked_.transfer) until = std::min(until, locked_.transfer->ticks_left);
        const std::uint64_t due =
            until == raft::Core::kNeverDue ? until : locked_.ticks_seen + until;
        if (due != locked_.due_tick) {
            locked_.due_tick = due;
            timers_.tick->set_due(due);
        }
        // An expiry that read the old due meanwhile passed this group by:
        // its tick is owed now (ProcessClock::Subscription::set_due).
        if (due > seat_.services.clock().ticks()) return;
        catch_up_ticks();
    }
}

}  // namespace keel::runtime
