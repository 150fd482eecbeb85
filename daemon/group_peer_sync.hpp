// daemon/group_peer_sync.hpp — raftd --groups: keeps the keel::Host's peer
// processes equal to the processes its groups have as members, so that a
// process added to (or removed from) the groups is reached (or let go) by
// every member, and the list survives a restart (DATA_DIR/raftd.members).
//
// Each group tells it its members as they change (observer(g): keel's
// on_membership_changed, from the moment a change is in the group's log).
// A member some group has and the Host lacks is added at the group's
// address for it.  A peer that no group has is removed (retried until the
// groups have let it go: a group forgets a removed member on keel's I/O
// thread, after its event) when some group had it, or once this process is
// a member of every group: from then on a peer no group has is stale (a
// --member entry, or a raftd.members line, for a process removed while this
// one was away or before it joined).  Two kinds stay: every peer while some
// group still waits to be added (a joiner's --member list is its only way
// in), and a process the add handler made a peer just before its groups add
// it (add_process), until some group has it.  When the union of the
// groups' members changes it is written to raftd.members.
//
// Owns: one thread ("peer-sync") that does the Host calls and the file
// writes, never a keel thread (an observer must not block).
// Threads: observer events on keel's; add_process from an HTTP thread;
// construction and destruction on main's thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "keel/host.hpp"
#include "keel/observer.hpp"

namespace keel::daemon {

class GroupPeerSync {
public:
    using Log = std::function<void(LogLevel, const std::string&)>;

    // `host` must outlive this object; `self` is the Host's id; `groups`
    // the number of groups that will have observers (1..groups); the member
    // list goes to `data_dir`/raftd.members.  Starts the thread.
    GroupPeerSync(Host& host, NodeId self, std::size_t groups, std::string data_dir, Log log);
    // Stops the thread (what is pending is dropped: the next start
    // reconciles again from the groups' first events).
    ~GroupPeerSync();
    GroupPeerSync(const GroupPeerSync&) = delete;
    GroupPeerSync& operator=(const GroupPeerSync&) = delete;

    // Group `group`'s observer (NodeOptions::observer): its membership
    // events reach this object.  It must not outlive it.
    std::shared_ptr<Observer> observer(GroupId group);

    // A process about to be added to the groups (POST /v1/members): the Host
    // reaches it from now on.  invalid_argument when the Host refuses it
    // (host.hpp: itself, an address taken, another address for a peer).
    Status add_process(const MemberSpec& member);

    // Passes of the thread so far (tests wait on it).
    std::uint64_t passes() const;

private:
    class GroupObserver;
    void on_members(GroupId group, const std::vector<MemberSpec>& members);
    void run();
    // One pass: the Host's peers toward the groups' members.  true when
    // something must be tried again (a removal the Host refused for now).
    bool reconcile();

    Host& host_;
    const NodeId self_;
    const std::size_t groups_;
    const std::string data_dir_;
    const Log log_;

    mutable std::mutex mu_;
    std::condition_variable wake_;
    bool stop_ = false;     // GUARDED_BY(mu_)
    bool changed_ = false;  // GUARDED_BY(mu_): an event since the last pass
    // GUARDED_BY(mu_): each group's members (by id) as its last event gave them.
    std::map<GroupId, std::map<NodeId, MemberSpec>> members_;
    std::uint64_t passes_ = 0;  // GUARDED_BY(mu_)
    // GUARDED_BY(mu_): processes add_process made peers that no group has had yet.
    std::set<NodeId> pending_;

    // The thread's own.
    std::set<NodeId> seen_;            // peers some group had
    std::vector<MemberSpec> written_;  // raftd.members as last written
    std::thread thread_;               // last: starts once the rest is set
};

}  // namespace keel::daemon
