// keel::Host's peer processes at run time (Host::add_peer, remove_peer,
// peers; docs/groups.md, "keel's TCP transport in a Host"): three Hosts on
// loopback, the first alone at first; its groups grow onto the other two
// once it has them as peers (and not before), lead from a process added at
// run time, shrink back, and the processes go again; add_peer and
// remove_peer refuse what is not a process (id 0, itself, an address taken,
// another address for a peer, an unknown id, a process a group still has).
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster_support.hpp"
#include "runtime/host.hpp"

using namespace keel;
using keel::test::confirmed_leader;
using keel::test::eventually;
using keel::test::propose_through_leader;
using keel::test::RecordingStateMachine;

namespace {

constexpr GroupId kGroups[] = {1, 2};
constexpr NodeId kProcesses[] = {1, 2, 3};

class GrowingHosts {
public:
    GrowingHosts() {
        for (NodeId id : kProcesses)
            addresses_[id] = "127.0.0.1:" + std::to_string(keel::test::free_port());
    }
    ~GrowingHosts() {
        for (auto& [id, p] : processes_) p.groups.clear();
        processes_.clear();
    }

    // Host `id` with `peers` as its processes when it opens.
    void open_host(NodeId id, const std::vector<NodeId>& peers) {
        HostOptions ho;
        ho.data_dir = dir_.path() + "/host-" + std::to_string(id);
        ho.id = id;
        ho.listen_address = addresses_.at(id);
        for (NodeId peer : peers) ho.peers[peer] = addresses_.at(peer);
        ho.cluster_id = cluster_id_;
        ho.wal_direct_io = false;
        auto host = runtime::HostImpl::open(ho);
        REQUIRE(host.ok());
        processes_[id].host = std::move(host.value());
    }

    // Every group on Host `id`: a lone voter (the first), or joining.
    void open_groups(NodeId id, bool join) {
        Process& p = processes_.at(id);
        for (GroupId g : kGroups) {
            NodeOptions o;
            o.id = id;
            o.heartbeat_interval_ms = 20;
            o.election_timeout_min_ms = 100;
            o.election_timeout_max_ms = 200;
            o.join = join;
            if (!join) o.initial_members = {member(id)};
            p.sms[g] = std::make_shared<RecordingStateMachine>();
            auto group = p.host->open_group(g, o, p.sms[g]);
            REQUIRE(group.ok());
            p.groups[g] = std::move(group.value());
        }
    }

    MemberSpec member(NodeId id, bool voter = true) const {
        return MemberSpec{id, addresses_.at(id), "", voter};
    }
    const std::string& address(NodeId id) const { return addresses_.at(id); }
    runtime::HostImpl& host(NodeId id) { return *processes_.at(id).host; }
    Node& group(NodeId id, GroupId g) { return *processes_.at(id).groups.at(g); }

    NodeId leader(GroupId g) {
        std::vector<NodeId> ids;
        for (const auto& [id, p] : processes_) ids.push_back(id);
        return confirmed_leader(ids, [this, g](NodeId id) { return &group(id, g); });
    }
    bool propose(GroupId g, const std::string& data) {
        return propose_through_leader([this, g] { return leader(g); },
                                      [this, g](NodeId id) { return &group(id, g); }, data, 100)
            .status.ok();
    }
    std::vector<std::string> applied(NodeId id, GroupId g) {
        std::vector<std::string> out;
        for (const auto& [index, data] : processes_.at(id).sms.at(g)->applied())
            if (!data.empty()) out.push_back(data);
        return out;
    }

    // A membership change in group `g` through its leader, retried while
    // leadership moves.
    Status change(GroupId g, const std::function<Status(Node&)>& call) {
        Status s;
        eventually([&] {
            s = call(group(leader(g), g));
            return s.code() != ErrorCode::not_leader && s.code() != ErrorCode::aborted &&
                   s.code() != ErrorCode::busy;
        });
        return s;
    }

private:
    struct Process {
        std::unique_ptr<runtime::HostImpl> host;
        std::map<GroupId, std::shared_ptr<RecordingStateMachine>> sms;
        std::map<GroupId, std::unique_ptr<Node>> groups;
    };
    keel::test::TempDir dir_;
    std::string cluster_id_ = keel::test::random_cluster_id();
    std::map<NodeId, std::string> addresses_;
    std::map<NodeId, Process> processes_;
};

}  // namespace

TEST_CASE("a Host's groups grow onto processes added at run time and shrink back",
          "[runtime][host][tcp]") {
    GrowingHosts c;
    c.open_host(1, {});
    c.open_groups(1, false);
    for (GroupId g : kGroups) REQUIRE(c.propose(g, "before"));

    // The joiners know the first process; it knows neither of them yet, so
    // its groups refuse them as members.
    c.open_host(2, {1});
    c.open_host(3, {1});
    c.open_groups(2, true);
    c.open_groups(3, true);
    for (GroupId g : kGroups)
        CHECK(c.group(1, g).add_member(c.member(2, false)).get().code() ==
              ErrorCode::invalid_argument);

    // The processes meet at run time (a second add is a retry), then every
    // group grows onto them.
    for (NodeId id : {NodeId{2}, NodeId{3}}) {
        REQUIRE(c.host(1).add_peer(id, c.address(id)).ok());
        REQUIRE(c.host(1).add_peer(id, c.address(id)).ok());
    }
    REQUIRE(c.host(2).add_peer(3, c.address(3)).ok());
    REQUIRE(c.host(3).add_peer(2, c.address(2)).ok());
    CHECK(c.host(1).peers() == std::map<NodeId, std::string>{{2, c.address(2)}, {3, c.address(3)}});
    for (GroupId g : kGroups) {
        for (NodeId id : {NodeId{2}, NodeId{3}}) {
            REQUIRE(
                c.change(g, [&](Node& n) { return n.add_member(c.member(id, false)).get(); }).ok());
            REQUIRE(c.change(g, [&](Node& n) { return n.promote_member(id).get(); }).ok());
        }
        REQUIRE(c.propose(g, "three"));
    }
    for (NodeId id : kProcesses)
        for (GroupId g : kGroups)
            REQUIRE(eventually([&] {
                return c.applied(id, g) == std::vector<std::string>{"before", "three"};
            }));

    // A process added at run time leads, and reaches the other one added
    // at run time: process 2 commits only with process 1 or 3 answering it.
    for (GroupId g : kGroups)
        REQUIRE(c.change(g, [&](Node& n) { return n.transfer_leadership(2).get(); }).ok());
    for (GroupId g : kGroups) {
        REQUIRE(eventually([&] { return c.leader(g) == 2; }));
        REQUIRE(c.propose(g, "led by 2"));
    }

    // A process a group still has cannot go.
    CHECK(c.host(2).remove_peer(3).code() == ErrorCode::invalid_argument);

    // Back to one: every group removes 3, then 2 (leadership back on 1 first).
    for (GroupId g : kGroups) {
        REQUIRE(c.change(g, [&](Node& n) { return n.remove_member(3).get(); }).ok());
        REQUIRE(c.change(g, [&](Node& n) { return n.transfer_leadership(1).get(); }).ok());
        REQUIRE(eventually([&] { return c.leader(g) == 1; }));
        REQUIRE(c.change(g, [&](Node& n) { return n.remove_member(2).get(); }).ok());
        REQUIRE(c.propose(g, "alone again"));
        CHECK(c.group(1, g).status().members.size() == 1);
    }
    // The groups forget a removed member on the I/O thread: the Host lets
    // the processes go once no group has them.
    for (NodeId id : {NodeId{2}, NodeId{3}})
        REQUIRE(eventually([&] { return c.host(1).remove_peer(id).code() == ErrorCode::ok; }));
    CHECK(c.host(1).peers().empty());
    CHECK(c.host(1).remove_peer(2).code() == ErrorCode::not_found);
    for (GroupId g : kGroups) REQUIRE(c.propose(g, "after"));
}

TEST_CASE("a Host refuses peers that are not processes of its cluster", "[runtime][host][tcp]") {
    GrowingHosts c;
    c.open_host(1, {2});
    runtime::HostImpl& host = c.host(1);
    auto invalid = [](const Status& s) { return s.code() == ErrorCode::invalid_argument; };
    CHECK(invalid(host.add_peer(0, c.address(3))));
    CHECK(invalid(host.add_peer(1, c.address(3))));  // itself
    CHECK(invalid(host.add_peer(3, c.address(1))));  // its own address
    CHECK(invalid(host.add_peer(3, c.address(2))));  // process 2's address
    CHECK(invalid(host.add_peer(2, c.address(3))));  // 2 is elsewhere
    CHECK(invalid(host.add_peer(3, "")));
    CHECK(invalid(host.add_peer(3, "10.0.0.3:7000")));  // plain TCP, not loopback
    CHECK(host.remove_peer(3).code() == ErrorCode::not_found);
    CHECK(host.peers() == std::map<NodeId, std::string>{{2, c.address(2)}});

    // Once 2 is gone, its address may name another process.
    REQUIRE(host.remove_peer(2).ok());
    REQUIRE(host.add_peer(3, c.address(2)).ok());
    CHECK(host.peers() == std::map<NodeId, std::string>{{3, c.address(2)}});

    // Without keel's TCP transport a Host has no peer processes.
    keel::test::TempDir dir;
    HostOptions lone;
    lone.data_dir = dir.path();
    lone.wal_direct_io = false;
    auto plain = runtime::HostImpl::open(lone);
    REQUIRE(plain.ok());
    CHECK(invalid(plain.value()->add_peer(2, c.address(2))));
    CHECK(invalid(plain.value()->remove_peer(2)));
    CHECK(plain.value()->peers().empty());
}
