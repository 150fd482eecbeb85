// What the replica tells the application's observer (keel/observer.hpp):
// each change is queued for the observer's thread (event_queue.hpp) under
// the core lock, in the step that makes it, and refusals that follow from
// it are completed behind it on the same thread.
#include "keel/observer.hpp"
#include "runtime/replica.hpp"

namespace keel::runtime {

Role public_role(raft::Role role) {
    switch (role) {
        case raft::Role::follower:
            return Role::follower;
        case raft::Role::pre_candidate:
            return Role::pre_candidate;
        case raft::Role::candidate:
            return Role::candidate;
        case raft::Role::leader:
            return Role::leader;
    }
    KEEL_ASSERT(false, "a core role has a public name");
    return Role::follower;
}

void Replica::announce(std::function<void(Observer&)> event, bool last) {
    if (!events_) return;
    auto deliver = [observer = options_.observer, event = std::move(event)] { event(*observer); };
    if (events_->push_event(std::move(deliver), last)) return;
    // The observer has not returned for kMaxQueuedObserverEvents events: it
    // blocks.  Dropping one would break the promise that it hears of every
    // change before the refusals that follow from it; stopping keeps it.
    fail_stop(Status(ErrorCode::failed, "the observer fell " +
                                            std::to_string(kMaxQueuedObserverEvents) +
                                            " events behind (its callbacks must not block)"));
}

void Replica::announce_soft_state(const raft::SoftState& ss) {
    if (!events_) return;
    const Role role = public_role(ss.role);
    // The leader first: a node that becomes leader knows itself as leader
    // when it is told of its role; one that steps down has forgotten it.
    if (ss.leader != announced_leader_ || (ss.leader != 0 && ss.term != announced_term_)) {
        announce([leader = ss.leader, term = ss.term](Observer& o) {
            o.on_leader_changed(leader, term);
        });
    }
    announced_leader_ = ss.leader;
    announced_term_ = ss.term;
    if (role != announced_role_) {
        announce([role, term = ss.term](Observer& o) { o.on_role_changed(role, term); });
        announced_role_ = role;
    }
}

void Replica::announce_members(std::vector<MemberSpec> members) {
    if (!events_) return;
    auto same = [](const std::vector<MemberSpec>& a, const std::vector<MemberSpec>& b) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (a[i].id != b[i].id || a[i].voter != b[i].voter ||
                a[i].raft_address != b[i].raft_address || a[i].metadata != b[i].metadata)
                return false;
        return true;
    };
    if (announced_members_ && same(*announced_members_, members)) return;
    announced_members_ = members;
    announce([members = std::move(members)](Observer& o) { o.on_membership_changed(members); });
}

void Replica::complete_after_events(std::function<void()> complete) {
    if (!events_) return complete();
    events_->push_completion(std::move(complete));
}

void Replica::refuse_proposal(std::function<void(ProposeResult)> done, ProposeResult r) {
    // Counted until the caller hears: refusals waiting behind a slow
    // observer stay bounded by max_pending_proposals.
    complete_after_events([this, done = std::move(done), r = std::move(r)]() mutable {
        pending_proposals_.fetch_sub(1, std::memory_order_relaxed);
        done(std::move(r));
    });
}

}  // namespace keel::runtime
