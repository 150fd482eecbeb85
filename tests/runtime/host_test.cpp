// keel::Host: three processes, each one runtime::HostImpl (one shared WAL,
// one transport over tests/common/memory_transport.hpp), serving three
// groups together.  Each group elects and replicates its own entries; the
// groups' writes share the WAL's batches (a batch made writes of two groups
// durable at once); every group comes back exactly after every Host
// restarts; snapshots of every group let the shared WAL's old segments go;
// and the public calls refuse what they must.
#include <catch2/catch.hpp>

#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../common/memory_transport.hpp"
#include "cluster_support.hpp"
#include "runtime/host.hpp"

using namespace keel;
using keel::test::confirmed_leader;
using keel::test::eventually;
using keel::test::MemoryNetwork;
using keel::test::propose_through_leader;
using keel::test::RecordingStateMachine;

namespace {

constexpr GroupId kGroups[] = {0, 1, 2};
constexpr NodeId kProcesses[] = {1, 2, 3};

struct Process {
    std::unique_ptr<runtime::HostImpl> host;
    std::map<GroupId, std::shared_ptr<RecordingStateMachine>> sms;
    std::map<GroupId, std::unique_ptr<Node>> groups;
};

class Hosts {
public:
    Hosts() {
        for (NodeId id : kProcesses) {
            MemberSpec m;
            m.id = id;
            m.raft_address = "memory:" + std::to_string(id);
            members_.push_back(m);
        }
        for (GroupId g : kGroups) cluster_ids_[g] = keel::test::random_cluster_id();
        start();
    }
    ~Hosts() { stop(); }

    void start() {
        // Nothing is delivered until every group is open (a group not open
        // yet would count the bytes for it as refused).
        net_.deliver = false;
        for (NodeId id : kProcesses) {
            Process& p = processes_[id];
            HostOptions ho;
            ho.data_dir = dir_.path() + "/host-" + std::to_string(id);
            ho.transport = net_.endpoint(id);
            ho.wal_segment_bytes = 4096;
            ho.wal_direct_io = false;
            auto host = runtime::HostImpl::open(ho);
            REQUIRE(host.ok());
            p.host = std::move(host.value());
            for (GroupId g : kGroups) {
                NodeOptions o;
                o.id = id;
                o.initial_members = members_;
                o.cluster_id = cluster_ids_[g];
                o.heartbeat_interval_ms = 20;
                o.election_timeout_min_ms = 100;
                o.election_timeout_max_ms = 200;
                o.snapshot_every_entries = 0;
                o.snapshot_trailing_entries = 0;
                p.sms[g] = std::make_shared<RecordingStateMachine>();
                auto group = p.host->open_group(g, o, p.sms[g]);
                REQUIRE(group.ok());
                p.groups[g] = std::move(group.value());
            }
        }
        net_.deliver = true;
    }

    void stop() {
        for (auto& [id, p] : processes_) {
            p.groups.clear();
            p.host.reset();
        }
    }

    Node& group(NodeId id, GroupId g) { return *processes_.at(id).groups.at(g); }
    runtime::HostImpl& host(NodeId id) { return *processes_.at(id).host; }

    NodeId leader(GroupId g) {
        return confirmed_leader({std::begin(kProcesses), std::end(kProcesses)},
                                [this, g](NodeId id) { return &group(id, g); });
    }

    // Proposes to group `g` through its leader until acknowledged.
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

private:
    MemoryNetwork net_;  // outlives the processes
    keel::test::TempDir dir_;
    std::vector<MemberSpec> members_;
    std::map<GroupId, std::string> cluster_ids_;
    std::map<NodeId, Process> processes_;
};

std::vector<std::string> entries(const std::string& prefix, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
    return out;
}

std::string prefix(GroupId g) {
    return "g" + std::to_string(g) + "-";
}

// Proposes `n` entries to every group at once (one thread per group).
void propose_everywhere(Hosts& c, int from, int n) {
    std::vector<std::thread> threads;
    std::atomic<bool> ok{true};
    for (GroupId g : kGroups) {
        threads.emplace_back([&, g] {
            for (int i = from; i < from + n; ++i)
                if (!c.propose(g, prefix(g) + std::to_string(i))) ok = false;
        });
    }
    for (std::thread& t : threads) t.join();
    REQUIRE(ok);
}

}  // namespace

TEST_CASE("groups of three Hosts share each Host's WAL and come back after restarts",
          "[runtime][host]") {
    Hosts c;
    constexpr int kFirst = 30;
    propose_everywhere(c, 0, kFirst);
    for (NodeId id : kProcesses)
        for (GroupId g : kGroups)
            REQUIRE(eventually([&] { return c.applied(id, g) == entries(prefix(g), kFirst); }));

    // One WAL per Host: every group's entries went into it (with a WAL per
    // group the Host's would hold none).  Whether a batch carried several
    // groups' writes depends on thread timing here; runtime_shared_wal shows
    // two groups' appends sharing one fdatasync deterministically.
    for (NodeId id : kProcesses) {
        const HostStatus s = c.host(id).status();
        CHECK(s.groups == 3);
        CHECK(s.wal_records >= std::size(kGroups) * kFirst);
    }

    // Every Host restarts: every group comes back exactly, and goes on.
    c.stop();
    c.start();
    for (NodeId id : kProcesses)
        for (GroupId g : kGroups)
            REQUIRE(eventually([&] { return c.applied(id, g) == entries(prefix(g), kFirst); }));
    for (GroupId g : kGroups) REQUIRE(c.propose(g, prefix(g) + std::to_string(kFirst)));
    for (NodeId id : kProcesses)
        for (GroupId g : kGroups)
            REQUIRE(eventually([&] { return c.applied(id, g) == entries(prefix(g), kFirst + 1); }));
}

TEST_CASE("snapshots of every group let the shared WAL's old segments go", "[runtime][host]") {
    Hosts c;
    constexpr int kPerRound = 40;
    constexpr std::uint64_t kSegmentBytes = 4096;  // Hosts' wal_segment_bytes
    // Each Host's WAL position once a round is durable everywhere.
    struct Mark {
        std::uint64_t next_index = 0;
        std::uint64_t bytes_written = 0;
    };
    std::map<NodeId, Mark> after_round0, after_round2;
    auto mark = [&](std::map<NodeId, Mark>& marks) {
        for (NodeId id : kProcesses) {
            const wal::Wal& wal = c.host(id).services().wal()->wal();
            marks[id] = Mark{wal.next_index(), wal.stats().bytes_written};
        }
    };
    int written = 0;
    // Three snapshots of every group: each compacts the log behind the
    // older kept one, so after round 2 every record of rounds 0 and 1 is
    // released by every group.
    for (int round = 0; round < 3; ++round) {
        propose_everywhere(c, written, kPerRound);
        written += kPerRound;
        for (NodeId id : kProcesses)
            for (GroupId g : kGroups) {
                REQUIRE(
                    eventually([&] { return c.applied(id, g) == entries(prefix(g), written); }));
                REQUIRE(c.group(id, g).snapshot_now().get().ok());
            }
        if (round == 0) mark(after_round0);
        if (round == 2) mark(after_round2);
    }
    // Rounds 1 and 2 wrote more than a segment, so the segment holding the
    // end of round 0 ends before round 3: all it holds is released, and it
    // and every segment before it go.  (A bound on the number of segments
    // would depend on where their edges fall.)
    for (NodeId id : kProcesses) {
        const wal::Wal& wal = c.host(id).services().wal()->wal();
        INFO("process " << id << ": round 0 ended before index " << after_round0[id].next_index
                        << "; first index " << wal.first_index() << ", next " << wal.next_index()
                        << ", " << wal.stats().segments << " segments");
        REQUIRE(after_round2[id].bytes_written - after_round0[id].bytes_written > kSegmentBytes);
        REQUIRE(eventually([&] { return wal.first_index() >= after_round0[id].next_index; }));
    }
    // Restarted, every group starts from its snapshot and the log after it.
    c.stop();
    c.start();
    for (NodeId id : kProcesses)
        for (GroupId g : kGroups)
            REQUIRE(eventually([&] { return c.applied(id, g) == entries(prefix(g), written); }));
}

TEST_CASE("a Host refuses a group open twice, another transport, a larger entry limit",
          "[runtime][host]") {
    keel::test::TempDir dir;
    HostOptions ho;
    ho.data_dir = dir.path();
    ho.wal_direct_io = false;
    auto host = Host::open(ho);
    REQUIRE(host.ok());
    NodeOptions o;
    o.id = 1;
    auto sm = std::make_shared<RecordingStateMachine>();
    auto g = host.value()->open_group(5, o, sm);
    REQUIRE(g.ok());
    // A lone voter on the Host: ready at once, proposals durable and applied.
    REQUIRE(g.value()->propose("x").get().status.ok());
    CHECK(host.value()->open_group(5, o, sm).status().code() == ErrorCode::busy);
    NodeOptions bigger = o;
    bigger.max_entry_bytes = ho.max_entry_bytes + 1;
    CHECK(host.value()->open_group(6, bigger, sm).status().code() == ErrorCode::invalid_argument);
    NodeOptions other = o;
    MemoryNetwork net;
    other.transport = net.endpoint(1);
    CHECK(host.value()->open_group(6, other, sm).status().code() == ErrorCode::invalid_argument);
    CHECK(host.value()->status().groups == 1);
    g.value().reset();
    CHECK(host.value()->status().groups == 0);
    // Reopened: the group's entry is there again.
    auto again = host.value()->open_group(5, o, std::make_shared<RecordingStateMachine>());
    REQUIRE(again.ok());
    CHECK(again.value()->status().commit_index >= 2);
}
