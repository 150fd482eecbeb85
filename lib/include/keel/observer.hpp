// keel/observer.hpp — what a node tells the application as it happens:
// leadership, role, membership, snapshots, a fail-stop.
//
//   struct Controller : keel::Observer {
//       void on_role_changed(keel::Role role, std::uint64_t term) override {
//           if (role == keel::Role::leader) start_duties(term); else stop_duties();
//       }
//   };
//   options.observer = std::make_shared<Controller>();
//
// Delivery (NodeOptions::observer):
//   - on one thread of the node's own, "keel-events", one call at a time, in
//     the order the changes happened, and never while keel holds any lock of
//     its own: a callback may call the node (propose, status, ...);
//   - never late: keel queues an event in the same step (under the same
//     lock) that makes the change, and a proposal refused because of a later
//     state (not_leader, or aborted because leadership was lost) completes on
//     this same thread after the events queued before it.  So a controller
//     that stops its duties in on_role_changed has stopped them before any
//     of its later proposals fails with not_leader.  (Read barriers are not
//     ordered this way: a read refused with not_leader completes where the
//     refusal is decided.)
//   - a callback must not block (the node queues at most
//     kMaxQueuedObserverEvents events behind it, then fail-stops, since it
//     can no longer keep its promise of ordering) and must not call stop().
//
// What the node starts from is announced too: the first event after open()
// is on_membership_changed with the configuration it opened with (empty for
// a node joining a cluster).  It opens as a follower with no leader known;
// only changes from there are announced (a lone voter elects itself at once,
// so its observer hears on_role_changed(leader) during open()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "keel/options.hpp"
#include "keel/status.hpp"
#include "keel/status_report.hpp"

namespace keel {

// Events queued behind a callback that has not returned, before the node
// fail-stops (the observer breaks its contract: it blocks).
inline constexpr std::size_t kMaxQueuedObserverEvents = 4096;

class Observer {
public:
    virtual ~Observer() = default;

    // The leader this node knows of changed: `leader` in `term`, or 0 when
    // none is known (an election is under way).  Announced when the leader
    // changes, and when a known leader is elected again in a later term.
    virtual void on_leader_changed(NodeId leader, std::uint64_t term) {
        (void)leader;
        (void)term;
    }
    // This node's role changed (as NodeStatus::role shows it); `term` is the
    // term it has the role in.
    virtual void on_role_changed(Role role, std::uint64_t term) {
        (void)role;
        (void)term;
    }
    // The configuration this node acts on changed: the members in force, as
    // Raft uses them, from the moment the change is appended to this node's
    // log (before it commits; a configuration entry that a new leader
    // overwrites is followed by the one restored).  Sorted by id.
    virtual void on_membership_changed(const std::vector<MemberSpec>& members) { (void)members; }
    // The state up to `index` is in a snapshot on this node: one it took (of
    // its state machine), or one it installed from the leader (its state
    // machine is restored from it before any later entry is applied).  One
    // taken automatically may not be flushed yet: after a power loss the
    // node may restart from an older one and the log after it.
    virtual void on_snapshot(std::uint64_t index) { (void)index; }
    // The node fail-stopped (NodeStatus::failure says the same); the last
    // event.  NodeOptions::on_failure is called too.
    virtual void on_failed(const Status& why) { (void)why; }
};

}  // namespace keel
