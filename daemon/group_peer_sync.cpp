// raftd --groups: the Host's peers follow the groups' members.  See
// group_peer_sync.hpp.
#include "group_peer_sync.hpp"

#include <chrono>
#include <utility>

#include <fmt/format.h>

#include "identity.hpp"

namespace keel::daemon {

namespace {

// How soon a pass is tried again when the Host refused a removal because a
// group had not let the peer go yet (it does on keel's I/O thread, soon).
constexpr auto kRetryInterval = std::chrono::milliseconds(50);

}  // namespace

class GroupPeerSync::GroupObserver final : public Observer {
public:
    GroupObserver(GroupPeerSync& sync, GroupId group) : sync_(sync), group_(group) {}
    void on_membership_changed(const std::vector<MemberSpec>& members) override {
        sync_.on_members(group_, members);
    }

private:
    GroupPeerSync& sync_;
    const GroupId group_;
};

GroupPeerSync::GroupPeerSync(Host& host, NodeId self, std::size_t groups, std::string data_dir,
                             Log log)
    : host_(host),
      self_(self),
      groups_(groups),
      data_dir_(std::move(data_dir)),
      log_(std::move(log)) {
    thread_ = std::thread([this] { run(); });
}

GroupPeerSync::~GroupPeerSync() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

std::shared_ptr<Observer> GroupPeerSync::observer(GroupId group) {
    return std::make_shared<GroupObserver>(*this, group);
}

Status GroupPeerSync::add_process(const MemberSpec& member) {
    if (member.id == self_) return Status::ok_status();  // the Host checks its own address
    {
        // Before the Host has it: a pass in between must not prune it.
        std::lock_guard lock(mu_);
        pending_.insert(member.id);
    }
    return host_.add_peer(member.id, member.raft_address);
}

std::uint64_t GroupPeerSync::passes() const {
    std::lock_guard lock(mu_);
    return passes_;
}

void GroupPeerSync::on_members(GroupId group, const std::vector<MemberSpec>& members) {
    {
        std::lock_guard lock(mu_);
        std::map<NodeId, MemberSpec>& now = members_[group];
        now.clear();
        for (const MemberSpec& m : members) now[m.id] = m;
        changed_ = true;
    }
    wake_.notify_all();
}

void GroupPeerSync::run() {
    bool retry = false;
    std::unique_lock lock(mu_);
    while (true) {
        if (retry) {
            wake_.wait_for(lock, kRetryInterval, [this] { return stop_ || changed_; });
        } else {
            wake_.wait(lock, [this] { return stop_ || changed_; });
        }
        if (stop_) return;
        changed_ = false;
        lock.unlock();
        retry = reconcile();
        lock.lock();
        ++passes_;
    }
}

bool GroupPeerSync::reconcile() {
    // Every group's members, and the union's spec for each (the first
    // group's, in group order).
    std::map<NodeId, MemberSpec> wanted;
    std::set<NodeId> pending;
    // Whether this process is a member of every group: then a peer no group
    // has is stale, whether or not a group had it in this run.
    bool member_everywhere = false;
    {
        std::lock_guard lock(mu_);
        member_everywhere = members_.size() == groups_;
        for (const auto& [group, members] : members_) {
            member_everywhere = member_everywhere && members.count(self_) != 0;
            for (const auto& [id, spec] : members) wanted.try_emplace(id, spec);
        }
        for (const auto& [id, spec] : wanted) pending_.erase(id);
        pending = pending_;
    }
    const std::map<NodeId, std::string> peers = host_.peers();
    bool retry = false;
    for (const auto& [id, spec] : wanted) {
        if (id == self_) continue;
        seen_.insert(id);
        auto it = peers.find(id);
        if (it != peers.end() && it->second == spec.raft_address) continue;
        if (Status s = host_.add_peer(id, spec.raft_address); !s.ok())
            log_(LogLevel::error,
                 fmt::format("cannot reach member {} of the groups: {}", id, s.to_string()));
    }
    for (const auto& [id, address] : peers) {
        if (wanted.count(id) != 0 || pending.count(id) != 0) continue;
        if (seen_.count(id) == 0 && !member_everywhere) continue;
        Status s = host_.remove_peer(id);
        if (s.ok() || s.code() == ErrorCode::not_found) {
            seen_.erase(id);
        } else {
            retry = true;  // a group has not let it go yet
        }
    }
    // The members for the next start (group_peers in main.cpp).
    std::vector<MemberSpec> members;
    for (const auto& [id, spec] : wanted) members.push_back(spec);
    auto same = [](const std::vector<MemberSpec>& a, const std::vector<MemberSpec>& b) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (a[i].id != b[i].id || a[i].raft_address != b[i].raft_address ||
                a[i].metadata != b[i].metadata)
                return false;
        return true;
    };
    if (!members.empty() && !same(members, written_)) {
        if (Status s = write_members(data_dir_, members); !s.ok()) {
            log_(LogLevel::error, fmt::format("cannot save the members: {}", s.to_string()));
            retry = true;
        } else {
            written_ = std::move(members);
        }
    }
    return retry;
}

}  // namespace keel::daemon
