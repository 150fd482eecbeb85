// Quiescence end to end (NodeOptions::quiesce; docs/groups.md, "Quiescence
// and liveness"): three processes, each one runtime::ProcessServices with
// three groups over tests/common/memory_transport.hpp, or over keel's TCP
// transport on loopback.  Once every group has
// written and gone quiet, nothing but the liveness pings crosses the
// network and no group is ticked, however many more process timer
// intervals pass: the groups' tick and message counters stay flat while the
// process clocks run on (counted, not slept).  Then the process that leads
// a group stops: the others' host liveness declares it down, the groups it
// led wake, elect and accept writes again.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../common/memory_transport.hpp"
#include "cluster_support.hpp"
#include "runtime/peer_transport.hpp"
#include "runtime/process_services.hpp"
#include "runtime/replica.hpp"
#include "transport/cluster_id.hpp"
#include "transport/codec.hpp"

using namespace keel;
using keel::test::confirmed_leader;
using keel::test::eventually;
using keel::test::propose_through_leader;
using keel::test::MemoryNetwork;
using keel::test::RecordingStateMachine;

namespace {

constexpr GroupId kGroups[] = {0, 1, 2};
constexpr NodeId kProcesses[] = {1, 2, 3};
// Process timer intervals the counters must stay flat across.
constexpr std::uint64_t kQuietIntervals = 10;

struct Process {
    std::shared_ptr<MemoryNetwork::Endpoint> endpoint;
    std::unique_ptr<runtime::ProcessServices> services;
    std::map<GroupId, std::shared_ptr<RecordingStateMachine>> sms;
    std::map<GroupId, std::unique_ptr<runtime::Replica>> groups;
};

enum class Wire { memory, tcp };

class QuietCluster {
public:
    explicit QuietCluster(Wire wire = Wire::memory) : wire_(wire) {
        net_.deliver = false;  // until every group of every process is open
        for (NodeId id : kProcesses) {
            MemberSpec m;
            m.id = id;
            m.raft_address = wire == Wire::memory
                                 ? "memory:" + std::to_string(id)
                                 : "127.0.0.1:" + std::to_string(keel::test::free_port());
            members_.push_back(m);
        }
        for (NodeId id : kProcesses) {
            Process& p = processes_[id];
            p.endpoint = net_.endpoint(id);
            p.services = std::make_unique<runtime::ProcessServices>();
            auto count = [this, id](std::string_view reason, std::string_view) {
                std::lock_guard lock(mu_);
                ++rejections_[{id, std::string(reason)}];
            };
            std::shared_ptr<Transport> transport = p.endpoint;
            if (wire == Wire::tcp) {
                auto cid = transport::ClusterId::parse_hex(cluster_id_);
                REQUIRE(cid.ok());
                auto tcp = runtime::make_process_transport(p.services->io(), options(id, 0), *cid,
                                                           members_[id - 1].raft_address, {});
                REQUIRE(tcp.ok());
                transport = *tcp;
            }
            REQUIRE(p.services->start_transport(transport, count).ok());
            p.services->start_io();
            for (GroupId g : kGroups) open(id, g);
        }
        net_.deliver = true;
    }
    ~QuietCluster() {
        for (auto& [id, p] : processes_) stop(id);
    }

    NodeOptions options(NodeId id, GroupId g) {
        NodeOptions o;
        o.id = id;
        o.data_dir = dir_.path() + "/node-" + std::to_string(id) + "/group-" + std::to_string(g);
        o.initial_members = members_;
        o.cluster_id = cluster_id_;
        o.heartbeat_interval_ms = 20;
        o.election_timeout_min_ms = 100;
        o.election_timeout_max_ms = 200;
        o.quiesce = true;
        if (wire_ == Wire::memory) o.transport = processes_.at(id).endpoint;
        if (wire_ == Wire::tcp) o.listen_address = members_[id - 1].raft_address;
        return o;
    }

    void open(NodeId id, GroupId g) {
        Process& p = processes_.at(id);
        const NodeOptions o = options(id, g);
        p.sms[g] = std::make_shared<RecordingStateMachine>();
        auto r = runtime::Replica::open_group(o, p.sms[g], *p.services, g);
        REQUIRE(r.ok());
        p.groups[g] = std::move(r.value());
    }

    // The process stops: its groups, then its services (and transport).
    void stop(NodeId id) {
        Process& p = processes_.at(id);
        if (!p.services) return;
        p.groups.clear();
        p.services->stop();
        p.services.reset();
    }
    bool running(NodeId id) { return processes_.at(id).services != nullptr; }

    runtime::Replica& group(NodeId id, GroupId g) { return *processes_.at(id).groups.at(g); }
    runtime::ProcessServices& services(NodeId id) { return *processes_.at(id).services; }
    // Refusals process `id` counted before any group saw the input.
    int rejections(NodeId id, const std::string& reason) {
        std::lock_guard lock(mu_);
        return rejections_[{id, reason}];
    }
    MemoryNetwork& net() { return net_; }

    // The running process whose group `g` leads and answers a read barrier.
    NodeId leader(GroupId g) {
        return confirmed_leader(
            {std::begin(kProcesses), std::end(kProcesses)},
            [this, g](NodeId id) -> Node* { return running(id) ? &group(id, g) : nullptr; });
    }

    bool propose(GroupId g, const std::string& data) {
        return propose_through_leader([this, g] { return leader(g); },
                                      [this, g](NodeId id) { return &group(id, g); }, data, 100)
            .status.ok();
    }

    bool all_quiescent() {
        for (NodeId id : kProcesses) {
            if (!running(id)) continue;
            for (GroupId g : kGroups)
                if (!group(id, g).status().quiescent) return false;
        }
        return true;
    }

    // What the groups cost: every replica's ticks and every group's
    // messages on the network.
    struct Costs {
        std::map<std::pair<NodeId, GroupId>, std::uint64_t> ticks;
        std::map<GroupId, std::uint64_t> buffers;
        friend bool operator==(const Costs&, const Costs&) = default;
    };
    Costs costs() {
        Costs c;
        for (NodeId id : kProcesses)
            if (running(id))
                for (GroupId g : kGroups) c.ticks[{id, g}] = group(id, g).status().timer_wakeups;
        for (GroupId g : kGroups) c.buffers[g] = net_.delivered_in(g);  // 0 over TCP
        return c;
    }

private:
    const Wire wire_;
    MemoryNetwork net_;  // outlives the processes
    keel::test::TempDir dir_;
    std::vector<MemberSpec> members_;
    std::string cluster_id_ = keel::test::random_cluster_id();
    std::map<NodeId, Process> processes_;
    std::mutex mu_;
    std::map<std::pair<NodeId, std::string>, int> rejections_;
};

}  // namespace

TEST_CASE("quiescent groups cost no tick and no message; a dead leader's process is noticed",
          "[runtime][quiescence]") {
    const Wire wire = GENERATE(Wire::memory, Wire::tcp);
    INFO((wire == Wire::memory ? "memory transport" : "TCP transport"));
    QuietCluster c(wire);
    for (GroupId g : kGroups) REQUIRE(c.propose(g, "warm-" + std::to_string(g)));

    // Warm-up: every replica of every group goes quiet, and every process
    // clock is disarmed (a group's last set_needed reaches the I/O thread a
    // moment after its status says quiescent).
    REQUIRE(eventually([&] { return c.all_quiescent(); }));
    REQUIRE(eventually([&] {
        for (NodeId id : kProcesses)
            if (c.services(id).clock().armed()) return false;
        return true;
    }));

    // Across kQuietIntervals more liveness rounds of every process, nothing
    // but liveness pings: no group ticked, no group message delivered, and
    // no tick of the process clock (disarmed: the rounds have their own
    // timer).
    const QuietCluster::Costs before = c.costs();
    std::map<NodeId, std::uint64_t> clock, rounds_before, pings;
    for (NodeId id : kProcesses) {
        clock[id] = c.services(id).clock().wakeups();
        rounds_before[id] = c.services(id).liveness().rounds();
        pings[id] = c.services(id).liveness().pings_sent();
    }
    REQUIRE(eventually([&] {
        for (NodeId id : kProcesses)
            if (c.services(id).liveness().rounds() < rounds_before[id] + kQuietIntervals)
                return false;
        return true;
    }));
    CHECK(c.costs() == before);
    CHECK(c.all_quiescent());
    for (NodeId id : kProcesses) {
        CHECK(c.services(id).clock().wakeups() == clock[id]);
        CHECK_FALSE(c.services(id).clock().armed());
        // At most one ping per peer process per round, whatever the number
        // of groups (two peers; reading the two counters apart may add a
        // round).  A late expiry may skip one, so no lower bound but that
        // pings flow.
        const std::uint64_t rounds = c.services(id).liveness().rounds() - rounds_before[id];
        const std::uint64_t sent = c.services(id).liveness().pings_sent() - pings[id];
        CHECK(sent > 0);
        CHECK(sent <= 2 * (rounds + 1));
    }
    if (wire == Wire::memory) CHECK(c.net().delivered_in(runtime::kLivenessGroup) > 0);

    // The process leading group 0 stops.  Its peers' liveness declares it
    // down; the quiescent followers of every group it led campaign.
    const NodeId gone = c.leader(0);
    REQUIRE(gone != 0);
    c.stop(gone);
    for (NodeId id : kProcesses) {
        if (id == gone) continue;
        REQUIRE(eventually([&] { return c.services(id).liveness().verdicts() >= 1; }));
    }
    for (GroupId g : kGroups) {
        INFO("group " << g);
        const NodeId l = c.leader(g);
        REQUIRE(l != 0);
        CHECK(l != gone);
        REQUIRE(c.propose(g, "after-" + std::to_string(g)));
    }
}

TEST_CASE("a transfer its core gave up ends for the caller even once the group is quiet again",
          "[runtime][quiescence]") {
    // The balancer of raftd --groups waits for each transfer's end before it
    // asks for more (daemon/group_balancer.hpp): a transfer whose
    // timeout_now was lost (the target restarting, a link down for a
    // moment) is given up by the core after an election timeout, and the
    // group may quiesce before the runtime's bound, counted in ticks, runs
    // out (decision 0045).
    QuietCluster c;
    const GroupId g = 1;
    REQUIRE(c.propose(g, "x"));
    const NodeId leader = c.leader(g);
    REQUIRE(leader != 0);
    REQUIRE(eventually([&] { return c.all_quiescent(); }));
    const NodeId target = leader == 1 ? 2 : 1;
    c.net().cut(leader, target);
    const std::uint64_t cut = c.net().cut_in(g);
    auto done = std::make_shared<std::promise<Status>>();
    std::future<Status> ended = done->get_future();
    c.group(leader, g).transfer_leadership_async(target, [done](Status s) { done->set_value(s); });
    REQUIRE(eventually([&] { return c.net().cut_in(g) > cut; }));  // the timeout_now
    // Healed once the core gave the transfer up (it takes proposals again),
    // or the target's answers would bring a second timeout_now.
    REQUIRE(
        eventually([&] { return c.group(leader, g).propose(std::string("y")).get().status.ok(); }));
    c.net().heal();
    REQUIRE(eventually(
        [&] { return ended.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }));
    CHECK_FALSE(ended.get().ok());
    CHECK(c.group(leader, g).status().role == Role::leader);
    CHECK(eventually([&] { return c.all_quiescent(); }));
}

TEST_CASE("a liveness ping that is not one is refused and counted; no group takes its id",
          "[runtime][quiescence]") {
    QuietCluster c;
    runtime::GroupRouter& two = c.services(2).router();
    auto ping_frame = [](const std::vector<raft::Message>& messages) {
        auto frame = transport::encode_messages(messages, {}, runtime::kLivenessGroup);
        REQUIRE(frame.ok());
        return *frame;
    };
    raft::Message ping;
    ping.type = raft::MessageType::heartbeat;
    ping.from = 1;
    ping.to = 2;
    raft::Message vote = ping;
    vote.type = raft::MessageType::vote;
    raft::Message forged = ping;
    forged.from = 3;  // delivered as from node 1
    raft::Message elsewhere = ping;
    elsewhere.to = 3;

    CHECK_FALSE(two.on_messages(runtime::kLivenessGroup, 1, "not a frame").ok());
    CHECK_FALSE(two.on_messages(runtime::kLivenessGroup, 1, ping_frame({vote})).ok());
    CHECK_FALSE(two.on_messages(runtime::kLivenessGroup, 1, ping_frame({ping, ping})).ok());
    CHECK_FALSE(two.on_messages(runtime::kLivenessGroup, 1, ping_frame({forged})).ok());
    CHECK_FALSE(two.on_messages(runtime::kLivenessGroup, 1, ping_frame({elsewhere})).ok());
    CHECK(c.rejections(2, "malformed") == 3);
    CHECK(c.rejections(2, "misaddressed") == 2);
    // The real thing.
    CHECK(two.on_messages(runtime::kLivenessGroup, 1, ping_frame({ping})).ok());
    CHECK(c.rejections(2, "malformed") == 3);
    CHECK(c.rejections(2, "misaddressed") == 2);

    // No group may use the process's reserved id.
    struct NullSink final : TransportSink {
        Status on_messages(GroupId, NodeId, std::string_view) override { return Status(); }
        Status on_snapshot_chunk(GroupId, NodeId, std::string_view) override { return Status(); }
        void on_unreachable(GroupId, NodeId) override {}
        void on_disconnected(GroupId, NodeId) override {}
    } sink;
    CHECK(two.link(runtime::kLivenessGroup)->start(sink).code() == ErrorCode::invalid_argument);
}
