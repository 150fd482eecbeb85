// Two Raft groups in each of three simulated processes: each process is one
// runtime::ProcessServices (one I/O thread, one outbox, one background
// thread, one transport over tests/common/memory_transport.hpp), each group
// a runtime::Replica with its own GroupId, state machine and WAL directory.
// Both groups elect and replicate, neither sees the other's entries or
// messages (a message for group 1 reaching group 0's channel would be
// refused as misaddressed and counted), bytes for a group no process serves
// are refused and counted, and one group leaving a process leaves the other
// running there.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>

#include "../common/memory_transport.hpp"
#include "cluster_support.hpp"
#include "runtime/process_services.hpp"
#include "runtime/replica.hpp"
#include "transport/codec.hpp"

using namespace keel;
using keel::test::confirmed_leader;
using keel::test::eventually;
using keel::test::propose_through_leader;
using keel::test::MemoryNetwork;
using keel::test::RecordingStateMachine;

namespace {

constexpr GroupId kGroups[] = {0, 1};
constexpr NodeId kProcesses[] = {1, 2, 3};

struct Process {
    std::shared_ptr<MemoryNetwork::Endpoint> endpoint;
    std::unique_ptr<runtime::ProcessServices> services;
    std::map<GroupId, std::shared_ptr<RecordingStateMachine>> sms;
    std::map<GroupId, std::unique_ptr<runtime::Replica>> groups;
};

class TwoGroups {
public:
    TwoGroups() {
        // Nothing is delivered until every group of every process is open:
        // bytes for a group a process has not opened yet are refused as
        // unknown, and the test counts those.
        net_.deliver = false;
        for (NodeId id : kProcesses) {
            MemberSpec m;
            m.id = id;
            m.raft_address = "memory:" + std::to_string(id);
            members_.push_back(m);
        }
        for (NodeId id : kProcesses) {
            Process& p = processes_[id];
            p.endpoint = net_.endpoint(id);
            p.services = std::make_unique<runtime::ProcessServices>();
            REQUIRE(p.services->start_transport(p.endpoint, nullptr).ok());
            p.services->start_io();
            for (GroupId g : kGroups) open(id, g);
        }
        net_.deliver = true;
    }
    ~TwoGroups() {
        for (auto& [id, p] : processes_) {
            p.groups.clear();  // each group stops, then goes
            p.services->stop();
        }
    }

    void open(NodeId id, GroupId g) {
        Process& p = processes_.at(id);
        NodeOptions o;
        o.id = id;
        o.data_dir = dir_.path() + "/node-" + std::to_string(id) + "/group-" + std::to_string(g);
        o.initial_members = members_;
        o.cluster_id = cluster_id_;
        o.heartbeat_interval_ms = 20;
        o.election_timeout_min_ms = 100;
        o.election_timeout_max_ms = 200;
        // The process's transport is an application's: the port's security
        // is its own (peer_security.hpp).
        o.transport = p.endpoint;
        p.sms[g] = std::make_shared<RecordingStateMachine>();
        auto r = runtime::Replica::open_group(o, p.sms[g], *p.services, g);
        REQUIRE(r.ok());
        REQUIRE(r.value()->group() == g);
        p.groups[g] = std::move(r.value());
    }

    runtime::Replica& group(NodeId id, GroupId g) { return *processes_.at(id).groups.at(g); }
    Process& process(NodeId id) { return processes_.at(id); }
    MemoryNetwork& net() { return net_; }

    // The process whose group `g` leads and answers a read barrier.
    NodeId leader(GroupId g) {
        std::vector<NodeId> ids;
        for (const auto& [id, p] : processes_) ids.push_back(id);
        return confirmed_leader(ids, [this, g](NodeId id) -> Node* {
            auto& groups = processes_.at(id).groups;
            auto it = groups.find(g);
            return it == groups.end() ? nullptr : it->second.get();
        });
    }

    // Proposes `data` to group `g` through its leader until acknowledged.
    bool propose(GroupId g, const std::string& data) {
        return propose_through_leader([this, g] { return leader(g); },
                                      [this, g](NodeId id) { return &group(id, g); }, data, 100)
            .status.ok();
    }

    // The non-empty entries group `g` applied in process `id`.
    std::vector<std::string> applied(NodeId id, GroupId g) {
        std::vector<std::string> out;
        for (const auto& [index, data] : processes_.at(id).sms.at(g)->applied())
            if (!data.empty()) out.push_back(data);
        return out;
    }

private:
    MemoryNetwork net_;  // outlives the processes
    keel::test::TempDir dir_;
    std::vector<MemberSpec> members_;
    std::string cluster_id_ = keel::test::random_cluster_id();
    std::map<NodeId, Process> processes_;
};

std::uint64_t rejections(Node& n) {
    std::uint64_t total = 0;
    for (const auto& [reason, count] : n.status().peer_messages_rejected) total += count;
    return total;
}

std::vector<std::string> entries(const std::string& prefix, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
    return out;
}

}  // namespace

TEST_CASE("two groups share each process's services and stay independent", "[runtime][groups]") {
    TwoGroups c;

    // Both groups elect and replicate, each its own entries.
    for (GroupId g : kGroups) REQUIRE(c.leader(g) != 0);
    for (const std::string& e : entries("g0-", 10)) REQUIRE(c.propose(0, e));
    for (const std::string& e : entries("g1-", 7)) REQUIRE(c.propose(1, e));
    for (NodeId id : kProcesses) {
        REQUIRE(eventually([&] { return c.applied(id, 0) == entries("g0-", 10); }));
        REQUIRE(eventually([&] { return c.applied(id, 1) == entries("g1-", 7); }));
    }

    // No message reached a group it was not for: a channel refuses (and
    // counts) any delivery under another group's id.
    for (NodeId id : kProcesses) {
        for (GroupId g : kGroups) CHECK(rejections(c.group(id, g)) == 0);
        CHECK(c.process(id).services->router().unknown_group_deliveries() == 0);
    }
    CHECK(c.net().refused.load() == 0);

    // Bytes for a group no process serves: refused, counted, nothing stops.
    const std::uint64_t refused_before = c.net().refused.load();
    c.process(1).endpoint->send(7, 2, "not even a frame");
    REQUIRE(eventually(
        [&] { return c.process(2).services->router().unknown_group_deliveries() == 1; }));
    REQUIRE(eventually([&] { return c.net().refused.load() == refused_before + 1; }));
    for (GroupId g : kGroups) CHECK(rejections(c.group(2, g)) == 0);

    // Group 1 leaves process 3: group 0 goes on there, and what group 1's
    // others still send to process 3 is dropped, not refused.
    c.process(3).groups.erase(1);
    // Its members are group 0's too: the process's transport keeps them.
    CHECK(c.process(3).endpoint->knows(1));
    CHECK(c.process(3).endpoint->knows(2));
    REQUIRE(c.propose(0, "after"));
    std::vector<std::string> expected = entries("g0-", 10);
    expected.push_back("after");
    REQUIRE(eventually([&] { return c.applied(3, 0) == expected; }));
    REQUIRE(c.propose(1, "g1-after"));
    CHECK(c.process(3).services->router().unknown_group_deliveries() == 0);
    CHECK(rejections(c.group(3, 0)) == 0);
}
