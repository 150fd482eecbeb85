// runtime/announcer.hpp — what the replica tells the application's observer
// (keel/observer.hpp): each change is queued for the observer's thread
// (event_queue.hpp) in the step that makes it, under the core lock, and
// only when it is news (the leader, role and members last announced are
// remembered).  Refusals that follow from a change are completed behind it
// on the same thread (complete_after_events).
//
// Without an observer there is no thread: nothing is announced, and
// completions run at once.
//
// Threads: every call but queued() and stop() under the replica's core lock.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "keel/observer.hpp"
#include "raft/core.hpp"
#include "runtime/event_queue.hpp"

namespace keel::runtime {

class Announcer {
public:
    // `observer` may be null.  `on_overflow` is called (under the core lock,
    // then no more events are queued but the last) when the observer falls
    // kMaxQueuedObserverEvents events behind: it blocks, and dropping an
    // event would break the promise that it hears of every change before
    // the refusals that follow from it.  The replica fail-stops.
    // `pool`: where the callbacks run (null: a thread of the announcer's own;
    // strand_pool.hpp); must outlive the announcer.
    Announcer(std::shared_ptr<Observer> observer, std::function<void()> on_overflow,
              StrandPool* pool = nullptr);

    // Queues `event`; `last` (a fail-stop's): queued even beyond the limit.
    void announce(std::function<void(Observer&)> event, bool last = false);
    // The leader, then the role, if either changed.
    void announce_soft_state(const raft::SoftState& ss);
    // The configuration's members, if they changed.
    void announce_members(std::vector<MemberSpec> members);
    // Runs `complete` after every event queued so far (on the observer's
    // thread), or now without an observer: a refusal never overtakes the
    // event that explains it.
    void complete_after_events(std::function<void()> complete);

    // Events and completions not yet run (0 without an observer); any thread.
    std::size_t queued() const { return events_ ? events_->queued() : 0; }
    // Delivers what is queued, then stops the observer's thread.
    void stop() {
        if (events_) events_->stop();
    }

private:
    std::shared_ptr<Observer> observer_;
    std::function<void()> on_overflow_;
    std::unique_ptr<EventQueue> events_;  // null without an observer
    // What the observer was last told.
    raft::NodeId leader_ = 0;
    raft::Term term_ = 0;
    Role role_ = Role::follower;
    std::optional<std::vector<MemberSpec>> members_;
};

}  // namespace keel::runtime
