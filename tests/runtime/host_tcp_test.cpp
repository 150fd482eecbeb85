// keel::Host on keel's TCP transport (HostOptions::listen_address, peers,
// cluster_id; docs/groups.md, "keel's TCP transport in a Host"): three
// Hosts on loopback serve four groups each over one connection per peer
// process, every group writes, a Host restarts on its port and catches up,
// a group grows onto a third Host with add_member; bytes from a stranger
// (another cluster, garbage, a group no Host serves) are refused and
// counted while the groups go on; and the options that contradict each
// other, or a group's members that are not the Host's processes, are
// refused with invalid_argument.
#include <catch2/catch.hpp>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cluster_support.hpp"
#include "runtime/host.hpp"
#include "transport/codec.hpp"
#include "transport/tcp_transport.hpp"

using namespace keel;
using keel::test::confirmed_leader;
using keel::test::eventually;
using keel::test::propose_through_leader;
using keel::test::RecordingStateMachine;

namespace {

constexpr GroupId kGroups[] = {1, 2, 3, 4};
constexpr NodeId kProcesses[] = {1, 2, 3};

struct Process {
    std::unique_ptr<runtime::HostImpl> host;
    std::map<GroupId, std::shared_ptr<RecordingStateMachine>> sms;
    std::map<GroupId, std::unique_ptr<Node>> groups;
};

class TcpHosts {
public:
    TcpHosts() {
        for (NodeId id : kProcesses)
            addresses_[id] = "127.0.0.1:" + std::to_string(keel::test::free_port());
        for (NodeId id : kProcesses) {
            MemberSpec m;
            m.id = id;
            m.raft_address = addresses_[id];
            members_.push_back(m);
        }
    }
    ~TcpHosts() {
        for (NodeId id : kProcesses) stop(id);
    }

    HostOptions host_options(NodeId id) const {
        HostOptions ho;
        ho.data_dir = dir_.path() + "/host-" + std::to_string(id);
        ho.id = id;
        ho.listen_address = addresses_.at(id);
        for (const auto& [peer, address] : addresses_)
            if (peer != id) ho.peers[peer] = address;
        ho.cluster_id = cluster_id;
        ho.wal_direct_io = false;
        return ho;
    }

    NodeOptions group_options(NodeId id) const {
        NodeOptions o;
        o.id = id;
        o.initial_members = members_;
        o.heartbeat_interval_ms = 20;
        o.election_timeout_min_ms = 100;
        o.election_timeout_max_ms = 200;
        return o;
    }

    void open_host(NodeId id) {
        auto host = runtime::HostImpl::open(host_options(id));
        REQUIRE(host.ok());
        processes_[id].host = std::move(host.value());
    }

    void open_group(NodeId id, GroupId g, const NodeOptions& o) {
        Process& p = processes_.at(id);
        p.sms[g] = std::make_shared<RecordingStateMachine>();
        auto group = p.host->open_group(g, o, p.sms[g]);
        REQUIRE(group.ok());
        p.groups[g] = std::move(group.value());
    }

    void start(NodeId id) {
        open_host(id);
        for (GroupId g : kGroups) open_group(id, g, group_options(id));
    }

    void stop(NodeId id) {
        Process& p = processes_[id];
        p.groups.clear();
        p.host.reset();
    }
    bool running(NodeId id, GroupId g) {
        auto it = processes_.find(id);
        return it != processes_.end() && it->second.groups.count(g) != 0;
    }

    Node& group(NodeId id, GroupId g) { return *processes_.at(id).groups.at(g); }
    runtime::HostImpl& host(NodeId id) { return *processes_.at(id).host; }
    const std::string& address(NodeId id) const { return addresses_.at(id); }
    const std::vector<MemberSpec>& members() const { return members_; }

    NodeId leader(GroupId g) {
        return confirmed_leader(
            {std::begin(kProcesses), std::end(kProcesses)},
            [this, g](NodeId id) -> Node* { return running(id, g) ? &group(id, g) : nullptr; });
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

    // The Host's outbound connections established so far.
    std::uint64_t connects(NodeId id) {
        auto* tcp = dynamic_cast<transport::TcpTransport*>(host(id).transport().get());
        REQUIRE(tcp != nullptr);
        return tcp->stats().connects;
    }

    std::string cluster_id = keel::test::random_cluster_id();

private:
    keel::test::TempDir dir_;
    std::map<NodeId, std::string> addresses_;
    std::vector<MemberSpec> members_;
    std::map<NodeId, Process> processes_;
};

std::vector<std::string> entries(GroupId g, int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i)
        out.push_back("g" + std::to_string(g) + "-" + std::to_string(i));
    return out;
}

// Writes entries [from, to) to every group at once (one thread per group).
void write_everywhere(TcpHosts& c, int from, int to) {
    std::vector<std::thread> threads;
    std::atomic<bool> ok{true};
    for (GroupId g : kGroups)
        threads.emplace_back([&, g] {
            for (const std::string& e : entries(g, from, to))
                if (!c.propose(g, e)) ok = false;
        });
    for (std::thread& t : threads) t.join();
    REQUIRE(ok);
}

void check_applied(TcpHosts& c, NodeId id, int to) {
    for (GroupId g : kGroups)
        REQUIRE(eventually([&] { return c.applied(id, g) == entries(g, 0, to); }));
}

// Bytes on a connection of our own to a Host's Raft port.
void send_raw(const std::string& address, const std::string& bytes) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    const auto colon = address.rfind(':');
    socket.connect(boost::asio::ip::tcp::endpoint(
        boost::asio::ip::make_address(address.substr(0, colon)),
        static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1)))));
    boost::asio::write(socket, boost::asio::buffer(bytes));
    // Closed by the Host (it refuses) or by us: either way the bytes went.
    boost::system::error_code ec;
    char c;
    socket.read_some(boost::asio::buffer(&c, 1), ec);
}

std::string heartbeat_frame(GroupId group) {
    raft::Message m;
    m.type = raft::MessageType::heartbeat;
    m.from = 9;
    m.to = 1;
    m.term = 1;
    auto frame = transport::encode_messages({&m, 1}, transport::CodecLimits{}, group);
    REQUIRE(frame.ok());
    return frame.value();
}

std::uint64_t rejected(TcpHosts& c, NodeId id, const std::string& reason) {
    const HostStatus s = c.host(id).status();
    auto it = s.peer_rejections.find(reason);
    return it == s.peer_rejections.end() ? 0 : it->second;
}

}  // namespace

TEST_CASE("three Hosts serve several groups over keel's TCP transport, one connection per peer",
          "[runtime][host][tcp]") {
    TcpHosts c;
    for (NodeId id : kProcesses) c.start(id);
    constexpr int kFirst = 20;
    write_everywhere(c, 0, kFirst);
    for (NodeId id : kProcesses) check_applied(c, id, kFirst);

    // Four groups, and each Host dialled each of its two peers once at
    // most (a follower dials only the processes leading its groups): every
    // group's messages share the connection.
    for (NodeId id : kProcesses) CHECK(c.connects(id) <= 2);
    CHECK(c.connects(c.leader(kGroups[0])) == 2);

    // A Host restarts on its port while the others write: its groups come
    // back from the shared WAL and catch up over the new connections.
    c.stop(2);
    write_everywhere(c, kFirst, kFirst + 10);
    c.start(2);
    check_applied(c, 2, kFirst + 10);
    write_everywhere(c, kFirst + 10, kFirst + 20);
    for (NodeId id : kProcesses) check_applied(c, id, kFirst + 20);
    for (NodeId id : kProcesses) CHECK(c.host(id).status().groups == std::size(kGroups));
}

TEST_CASE("a group of two Hosts grows onto the third with add_member", "[runtime][host][tcp]") {
    TcpHosts c;
    constexpr GroupId kGrowing = 9;
    for (NodeId id : kProcesses) c.open_host(id);
    std::vector<MemberSpec> two(c.members().begin(), c.members().begin() + 2);
    for (NodeId id : {NodeId{1}, NodeId{2}}) {
        NodeOptions o = c.group_options(id);
        o.initial_members = two;
        c.open_group(id, kGrowing, o);
    }
    NodeOptions joiner = c.group_options(3);
    joiner.join = true;
    joiner.initial_members.clear();
    c.open_group(3, kGrowing, joiner);
    REQUIRE(c.propose(kGrowing, "before"));

    const NodeId leader = c.leader(kGrowing);
    REQUIRE(leader != 0);
    // Not one of the Hosts' processes, or at another address: refused.
    MemberSpec stranger{4, "127.0.0.1:1", "", false};
    CHECK(c.group(leader, kGrowing).add_member(stranger).get().code() ==
          ErrorCode::invalid_argument);
    MemberSpec moved = c.members()[2];
    moved.raft_address = "127.0.0.1:1";
    moved.voter = false;
    CHECK(c.group(leader, kGrowing).add_member(moved).get().code() == ErrorCode::invalid_argument);

    MemberSpec third = c.members()[2];
    third.voter = false;
    REQUIRE(c.group(leader, kGrowing).add_member(third).get().ok());
    REQUIRE(c.group(leader, kGrowing).promote_member(3).get().ok());
    REQUIRE(c.propose(kGrowing, "after"));
    REQUIRE(eventually([&] {
        return c.applied(3, kGrowing) == std::vector<std::string>{"before", "after"};
    }));
}

TEST_CASE("a Host refuses and counts a stranger's bytes and goes on", "[runtime][host][tcp]") {
    TcpHosts c;
    for (NodeId id : kProcesses) c.start(id);
    write_everywhere(c, 0, 5);

    // Another cluster's hello.
    auto other = transport::ClusterId::parse_hex(keel::test::random_cluster_id());
    REQUIRE(other.ok());
    send_raw(c.address(1), transport::encode_hello({other.value(), 9, ""}));
    REQUIRE(eventually([&] { return rejected(c, 1, "cluster_id") >= 1; }));

    // Garbage where a hello belongs.
    send_raw(c.address(1), std::string(64, '\xff'));
    REQUIRE(eventually([&] { return rejected(c, 1, "hello") + rejected(c, 1, "malformed") >= 1; }));

    // This cluster's hello, then a frame for a group no Host serves.
    auto ours = transport::ClusterId::parse_hex(c.cluster_id);
    REQUIRE(ours.ok());
    send_raw(c.address(1),
             transport::encode_hello({ours.value(), 9, ""}) + heartbeat_frame(GroupId{77}));
    REQUIRE(eventually([&] { return rejected(c, 1, "unknown_group") >= 1; }));

    write_everywhere(c, 5, 10);
    for (NodeId id : kProcesses) check_applied(c, id, 10);
}

TEST_CASE("a Host refuses contradictory transport options", "[runtime][host][tcp]") {
    TcpHosts c;
    auto refused = [](const HostOptions& o) {
        auto host = runtime::HostImpl::open(o);
        return !host.ok() && host.status().code() == ErrorCode::invalid_argument;
    };
    HostOptions o = c.host_options(1);
    {
        HostOptions bad = o;
        bad.id = 0;
        CHECK(refused(bad));
    }
    {
        HostOptions bad = o;
        bad.peers[1] = o.listen_address;  // itself
        CHECK(refused(bad));
    }
    {
        HostOptions bad = o;
        bad.listen_address.clear();  // peers without a port
        CHECK(refused(bad));
    }
    {
        HostOptions bad = o;
        bad.cluster_id.clear();  // peers and no cluster id on a first start
        CHECK(refused(bad));
    }
    {
        // Plain TCP to a peer that is not loopback needs peer_insecure, as
        // for keel::Node (the Host dials no one until a group sends).
        HostOptions exposed = o;
        exposed.peers[2] = "10.0.0.2:7000";
        CHECK(refused(exposed));
        exposed.peer_insecure = true;
        auto host = runtime::HostImpl::open(exposed);
        CHECK(host.ok());
    }
    {
        HostOptions half_tls = o;
        half_tls.peer_tls.cert_file = "cert.pem";
        CHECK(refused(half_tls));
    }

    // The stored cluster id wins; another one is refused.
    {
        auto host = runtime::HostImpl::open(o);
        REQUIRE(host.ok());
    }
    HostOptions other = o;
    other.cluster_id = keel::test::random_cluster_id();
    CHECK(refused(other));
}

TEST_CASE("a group on a TCP Host must name the Host's processes", "[runtime][host][tcp]") {
    TcpHosts c;
    c.open_host(1);
    runtime::HostImpl& host = c.host(1);
    auto refused = [&](const NodeOptions& o) {
        auto group = host.open_group(5, o, std::make_shared<RecordingStateMachine>());
        return !group.ok() && group.status().code() == ErrorCode::invalid_argument;
    };
    const NodeOptions o = c.group_options(1);
    {
        NodeOptions bad = o;
        bad.id = 2;  // another process's id
        CHECK(refused(bad));
    }
    {
        NodeOptions bad = o;
        bad.initial_members[1].raft_address = "127.0.0.1:1";  // not where the Host has it
        CHECK(refused(bad));
    }
    {
        NodeOptions bad = o;
        bad.initial_members.push_back(MemberSpec{7, "127.0.0.1:2", "", true});  // no such process
        CHECK(refused(bad));
    }
    {
        NodeOptions bad = o;
        bad.listen_address = c.address(1);  // the Host's, not a group's
        CHECK(refused(bad));
    }
    {
        NodeOptions bad = o;
        bad.cluster_id = keel::test::random_cluster_id();
        CHECK(refused(bad));
    }
    // The Host's own cluster id, spelled out, is fine.
    NodeOptions same = o;
    same.cluster_id = c.cluster_id;
    auto group = host.open_group(5, same, std::make_shared<RecordingStateMachine>());
    CHECK(group.ok());
}
