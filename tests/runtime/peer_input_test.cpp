// What other processes send to a node's peer port, hand-built frame by
// frame: refused, counted in NodeStatus::peer_messages_rejected, and never
// an abort, a fail-stop the sender could cause, or a term a stranger chose.
// And a data dir that an older keel let a forged message brick opens with an
// error, not an abort.
#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "cluster_support.hpp"
#include "keel/wal/wal.hpp"
#include "runtime/member_context.hpp"
#include "runtime/snapshot_store.hpp"
#include "transport/cluster_id.hpp"
#include "transport/codec.hpp"

using namespace keel;
using keel::test::eventually;
using keel::test::TestCluster;

namespace {

namespace asio = boost::asio;
namespace tp = keel::transport;

// A connection to `target`'s peer port that says hello as `from`, with the
// target's own cluster id: what a process that learnt the id, or a member
// gone rogue, can send.
class RawPeer {
public:
    RawPeer(Node& target, const std::string& address, raft::NodeId from)
        : RawPeer(address, cluster_of(target), from, "") {}
    // Says hello in `cluster`, from `from` listening at `hello_address`.
    RawPeer(const std::string& address, const tp::ClusterId& cluster, raft::NodeId from,
            const std::string& hello_address)
        : socket_(io_) {
        const std::size_t colon = address.rfind(':');
        socket_.connect(asio::ip::tcp::endpoint(
            asio::ip::make_address(address.substr(0, colon)),
            static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1)))));
        send(tp::encode_hello(tp::Hello{cluster, from, hello_address}));
    }
    static tp::ClusterId cluster_of(Node& target) {
        auto cluster = tp::ClusterId::parse_hex(target.status().cluster_id);
        REQUIRE(cluster.ok());
        return cluster.value();
    }
    void send(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }
    void send_messages(std::vector<raft::Message> messages) {
        send(*tp::encode_messages(messages, tp::CodecLimits{}));
    }
    // The snapshot file `data` in two chunks, `message` with the last.
    void send_snapshot(const std::string& data, raft::Message message) {
        const std::size_t half = data.size() / 2;
        tp::SnapshotChunk first{7, 0, data.size(), data.substr(0, half), std::nullopt};
        tp::SnapshotChunk last{7, half, data.size(), data.substr(half), std::move(message)};
        send(*tp::encode_snapshot_chunk(first, tp::CodecLimits{}));
        send(*tp::encode_snapshot_chunk(last, tp::CodecLimits{}));
    }

private:
    asio::io_context io_;
    asio::ip::tcp::socket socket_;
};

std::uint64_t rejected(Node& n, const std::string& reason) {
    const NodeStatus s = n.status();
    auto it = s.peer_messages_rejected.find(reason);
    return it == s.peer_messages_rejected.end() ? 0 : it->second;
}

raft::Message message(raft::MessageType type, raft::NodeId from, raft::NodeId to,
                      std::uint64_t term) {
    raft::Message m;
    m.type = type;
    m.from = from;
    m.to = to;
    m.term = term;
    return m;
}

// The configuration the cluster's nodes hold (their member contexts).
raft::Configuration configuration_of(TestCluster& c, std::vector<NodeId> ids) {
    raft::Configuration config;
    for (NodeId id : ids) {
        MemberSpec spec = c.spec(id);
        config.members[id] = raft::MemberInfo{true, runtime::encode_member_context(spec)};
    }
    return config;
}

// A complete snapshot file as SnapshotStore writes it, holding `data`.
std::string snapshot_file(const std::string& data, const raft::SnapshotMeta& meta) {
    keel::test::TempDir dir;
    auto store = runtime::SnapshotStore::open(dir.path(), *wal::default_file_system());
    REQUIRE(store.ok());
    auto writer = store.value()->begin();
    REQUIRE(writer.ok());
    REQUIRE(writer.value()->write(data).ok());
    auto file = store.value()->publish(*writer.value(), meta);
    REQUIRE(file.ok());
    std::ifstream in(file.value().path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// A fail-stopped node refuses every call with `failed`; a live follower
// answers a proposal with not_leader.
bool fail_stopped(Node& n) {
    return n.propose("probe").get().status.code() == ErrorCode::failed;
}

NodeId follower_of(NodeId leader, std::vector<NodeId> ids) {
    for (NodeId id : ids)
        if (id != leader) return id;
    return 0;
}

}  // namespace

TEST_CASE("strangers and out-of-range fields are refused and counted; no term moves to theirs") {
    TestCluster c(3);
    for (NodeId id : {1, 2, 3}) c.start(id);
    const NodeId leader = c.leader();
    REQUIRE(leader != 0);
    const NodeId f = follower_of(leader, {1, 2, 3});
    const std::uint64_t term = c.node(f).status().term;
    // Far above any term an election in this test can reach.
    const std::uint64_t forged = term + 1000;
    {
        RawPeer stranger(c.node(f), c.spec(f).raft_address, 9);
        raft::Message append = message(raft::MessageType::append, 9, f, forged);
        append.log_index = 1;
        append.log_term = 1;
        stranger.send_messages({message(raft::MessageType::heartbeat, 9, f, forged), append,
                                message(raft::MessageType::vote, 9, f, forged),
                                message(raft::MessageType::timeout_now, 9, f, forged)});
        // 2^64 - 2 and 2^64 - 1 used to brick or abort the node.
        stranger.send_messages({message(raft::MessageType::heartbeat, 9, f,
                                        std::numeric_limits<std::uint64_t>::max() - 1),
                                message(raft::MessageType::timeout_now, 9, f,
                                        std::numeric_limits<std::uint64_t>::max())});
        REQUIRE(eventually([&] {
            return rejected(c.node(f), "not_a_member") == 4 &&
                   rejected(c.node(f), "term_out_of_range") == 2;
        }));
    }
    {
        // A snapshot's metadata without its data, in the leader's name (it
        // used to abort the node: the core installed what was never staged).
        RawPeer impostor(c.node(f), c.spec(f).raft_address, leader);
        raft::Message snap = message(raft::MessageType::snapshot, leader, f, term);
        snap.snapshot = raft::SnapshotMeta{1000, term, configuration_of(c, {1, 2, 3})};
        impostor.send_messages({snap});
        REQUIRE(eventually([&] { return rejected(c.node(f), "wrong_frame_kind") == 1; }));
    }
    for (NodeId id : {1, 2, 3}) {
        CHECK(c.node(id).status().term < forged);
        CHECK_FALSE(fail_stopped(c.node(id)));
    }
    CHECK(c.propose("after the attack") > 0);
}

TEST_CASE("a joiner answers a leader it knows only from its hello, where the hello said") {
    // No configuration, no initial_members: the hello alone says where node 7 is.
    TestCluster c(0, 1);
    Node& joiner = c.start(1, /*join=*/true);
    asio::io_context io;
    asio::ip::tcp::acceptor leader_port(
        io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    leader_port.non_blocking(true);
    const std::string leader_address =
        "127.0.0.1:" + std::to_string(leader_port.local_endpoint().port());
    const tp::ClusterId cluster = *tp::ClusterId::parse_hex(keel::test::random_cluster_id());
    RawPeer leader(c.spec(1).raft_address, cluster, 7, leader_address);
    // Sequence number 1, as a leader's first heartbeat: one of context 0 is a
    // commit notice, which is not answered (decision 0042).
    raft::Message heartbeat = message(raft::MessageType::heartbeat, 7, 1, 2);
    heartbeat.context = 1;
    leader.send_messages({heartbeat});

    asio::ip::tcp::socket answers(io);
    REQUIRE(eventually([&] {
        boost::system::error_code ec;
        leader_port.accept(answers, ec);
        return !ec;
    }));
    answers.non_blocking(true);
    std::string received;
    std::vector<tp::Frame> frames;
    auto heartbeat_answered = [&] {
        char buf[4096];
        boost::system::error_code ec;
        const std::size_t n = answers.read_some(asio::buffer(buf), ec);
        if (!ec) received.append(buf, n);
        while (received.size() >= tp::kFrameLengthBytes) {
            auto length = tp::decode_frame_length(received.substr(0, tp::kFrameLengthBytes),
                                                  tp::CodecLimits{}.frame_bytes_max);
            REQUIRE(length.ok());
            if (received.size() < tp::kFrameLengthBytes + *length) break;
            auto frame = tp::decode_frame_body(
                std::string_view(received).substr(tp::kFrameLengthBytes, *length), {});
            REQUIRE(frame.ok());
            frames.push_back(*frame);
            received.erase(0, tp::kFrameLengthBytes + *length);
        }
        for (const tp::Frame& f : frames)
            if (auto* batch = std::get_if<tp::MessageBatch>(&f))
                for (const raft::Message& m : batch->messages)
                    if (m.type == raft::MessageType::heartbeat_response && m.to == 7) return true;
        return false;
    };
    REQUIRE(eventually(heartbeat_answered));
    const tp::Hello& hello = std::get<tp::Hello>(frames.front());
    CHECK(hello.from == 1);
    CHECK(hello.cluster_id == cluster);
    CHECK(hello.address == c.spec(1).raft_address);  // the joiner's bound listen address
    CHECK(joiner.status().cluster_id == cluster.hex());
    CHECK(joiner.status().term == 2);
}

TEST_CASE("a snapshot whose file does not match its message is refused; the node keeps serving") {
    // It used to be installed first and found wrong after: a fail-stop.
    TestCluster c(3);
    c.start(1);
    c.start(2);  // 3 is a member that is not running: the stream claims to be it
    const NodeId leader = c.leader();
    const NodeId f = follower_of(leader, {1, 2});
    const std::uint64_t term = c.node(f).status().term;
    raft::Message snap = message(raft::MessageType::snapshot, 3, f, term);
    snap.snapshot = raft::SnapshotMeta{1000, term, configuration_of(c, {1, 2, 3})};
    RawPeer three(c.node(f), c.spec(f).raft_address, 3);
    SECTION("not a snapshot file") {
        three.send_snapshot(std::string(5000, 'x'), snap);
    }
    SECTION("a snapshot file of other metadata") {
        raft::SnapshotMeta other = *snap.snapshot;
        other.index = 999;
        three.send_snapshot(snapshot_file("data", other), snap);
    }
    SECTION("a snapshot file whose data fails its checksum") {
        std::string file = snapshot_file(std::string(3000, 'd'), *snap.snapshot);
        file[100] ^= 1;
        three.send_snapshot(file, snap);
    }
    REQUIRE(eventually([&] { return rejected(c.node(f), "malformed") == 1; }));
    CHECK_FALSE(fail_stopped(c.node(f)));
    CHECK(c.node(f).status().snapshot_index < 1000);
    const std::string incoming = c.options(f).data_dir + "/snapshots/incoming";
    CHECK(eventually([&] { return std::filesystem::is_empty(incoming); }));
    CHECK(c.propose("still serving") > 0);
}

TEST_CASE("a snapshot the state machine cannot restore fail-stops the node, never aborts") {
    // The file is intact but its data is not what this state machine writes.
    TestCluster c(3);
    c.start(1);
    c.start(2);
    const NodeId leader = c.leader();
    const NodeId f = follower_of(leader, {1, 2});
    const std::uint64_t term = c.node(f).status().term;
    raft::Message snap = message(raft::MessageType::snapshot, 3, f, term);
    snap.snapshot = raft::SnapshotMeta{1000, term, configuration_of(c, {1, 2, 3})};
    RawPeer three(c.node(f), c.spec(f).raft_address, 3);
    three.send_snapshot(snapshot_file("not records", *snap.snapshot), snap);
    REQUIRE(eventually([&] { return fail_stopped(c.node(f)); }));
    CHECK(eventually([&] { return c.warned(f, "snapshot restore failed"); }));
}

TEST_CASE("a follower writes the appends one delivery brings with one fdatasync") {
    // One read of the leader's socket often brings several appends; each
    // used to cost the follower's I/O thread a write and an fdatasync.
    TestCluster c(3);
    for (NodeId id : {1, 2, 3}) c.start(id);
    const NodeId leader = c.leader();
    REQUIRE(leader != 0);
    REQUIRE(c.propose("before") > 0);
    const NodeId f = follower_of(leader, {1, 2, 3});
    const std::uint64_t last = c.node(leader).status().last_index;
    REQUIRE(eventually([&] { return c.node(f).status().last_index == last; }));
    const NodeStatus before = c.node(f).status();
    REQUIRE(before.term == c.node(leader).status().term);  // "before" is of this term
    // Three appends of two entries each (within the I/O thread's bound), in
    // one frame, in the leader's name: delivered to the follower together.
    std::vector<raft::Message> appends;
    std::uint64_t index = last;
    for (int k = 0; k < 3; ++k) {
        raft::Message m = message(raft::MessageType::append, leader, f, before.term);
        m.log_index = index;
        m.log_term = before.term;
        m.commit = before.commit_index;
        for (int e = 0; e < 2; ++e)
            m.entries.push_back(raft::Entry{before.term, ++index, raft::EntryType::normal,
                                            SharedBytes(std::string("batched"))});
        appends.push_back(std::move(m));
    }
    RawPeer impostor(c.node(f), c.spec(f).raft_address, leader);
    impostor.send_messages(std::move(appends));
    REQUIRE(eventually([&] { return c.node(f).status().wal.records == before.wal.records + 6; }));
    CHECK(c.node(f).status().wal.fsyncs == before.wal.fsyncs + 1);
}

TEST_CASE("a data dir whose term a forged message pushed near 2^64 fails to open, unchanged") {
    // What keel before admission checks left behind: a lone voter that took
    // a stranger's heartbeat at 2^64 - 2 saved term 2^64 - 1, and every start
    // then aborted on term + 1.
    keel::test::TempDir dir;
    NodeOptions o;
    o.id = 1;
    o.data_dir = dir.path();
    {
        auto n = Node::open(o, std::make_shared<keel::test::RecordingStateMachine>());
        REQUIRE(n.ok());
        REQUIRE(n.value()->propose("x").get().status.ok());
        n.value()->stop();
    }
    wal::Metadata bricked;
    {
        auto w = wal::Wal::open(dir.path() + "/wal");
        REQUIRE(w.ok());
        bricked = w.value()->metadata();
        bricked.term = std::numeric_limits<std::uint64_t>::max();
        bricked.vote = 1;
        REQUIRE(w.value()->save_metadata(bricked).ok());
    }
    auto n = Node::open(o, std::make_shared<keel::test::RecordingStateMachine>());
    REQUIRE_FALSE(n.ok());
    INFO(n.status().to_string());
    CHECK(n.status().code() == ErrorCode::corruption);
    CHECK(n.status().message().find("cannot be opened") != std::string::npos);
    CHECK(n.status().message().find("18446744073709551615") != std::string::npos);
    auto w = wal::Wal::open(dir.path() + "/wal");
    REQUIRE(w.ok());
    CHECK(w.value()->metadata() == bricked);
}
