// What the observer hears.  See announcer.hpp.
#include "runtime/announcer.hpp"

#include "runtime/status_board.hpp"

namespace keel::runtime {

Announcer::Announcer(std::shared_ptr<Observer> observer, std::function<void()> on_overflow,
                     StrandPool* pool)
    : observer_(std::move(observer)), on_overflow_(std::move(on_overflow)) {
    if (observer_) events_ = std::make_unique<EventQueue>(kMaxQueuedObserverEvents, pool);
}

void Announcer::announce(std::function<void(Observer&)> event, bool last) {
    if (!events_) return;
    auto deliver = [observer = observer_, event = std::move(event)] { event(*observer); };
    if (!events_->push_event(std::move(deliver), last)) on_overflow_();
}

void Announcer::announce_soft_state(const raft::SoftState& ss) {
    if (!events_) return;
    const Role role = public_role(ss.role);
    // The leader first: a node that becomes leader knows itself as leader
    // when it is told of its role; one that steps down has forgotten it.
    if (ss.leader != leader_ || (ss.leader != 0 && ss.term != term_)) {
        announce([leader = ss.leader, term = ss.term](Observer& o) {
            o.on_leader_changed(leader, term);
        });
    }
    leader_ = ss.leader;
    term_ = ss.term;
    if (role != role_) {
        announce([role, term = ss.term](Observer& o) { o.on_role_changed(role, term); });
        role_ = role;
    }
}

void Announcer::announce_members(std::vector<MemberSpec> members) {
    if (!events_) return;
    auto same = [](const std::vector<MemberSpec>& a, const std::vector<MemberSpec>& b) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (a[i].id != b[i].id || a[i].voter != b[i].voter ||
                a[i].raft_address != b[i].raft_address || a[i].metadata != b[i].metadata)
                return false;
        return true;
    };
    if (members_ && same(*members_, members)) return;
    members_ = members;
    announce([members = std::move(members)](Observer& o) { o.on_membership_changed(members); });
}

void Announcer::complete_after_events(std::function<void()> complete) {
    if (!events_) return complete();
    events_->push_completion(std::move(complete));
}

}  // namespace keel::runtime
