// InProcessTransport and its hub: delivery, faults, limits and snapshots.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"
#include "sample_messages.hpp"
#include "transport/inprocess_transport.hpp"

using namespace keel;
using namespace keel::transport;
using namespace keel::transport::testing;
namespace asio = boost::asio;

namespace {

struct Node {
    Recorder rec;
    std::unique_ptr<InProcessTransport> transport;
};

// Three nodes on one hub; node i runs on ios[i] (distinct io_contexts,
// driven from this thread).
struct Cluster {
    explicit Cluster(std::size_t in_flight_max = 4096) {
        for (NodeId id = 1; id <= 3; ++id) {
            ios.push_back(std::make_unique<asio::io_context>());
            auto node = std::make_unique<Node>();
            InProcessTransportOptions o;
            o.self = id;
            o.staging_dir = dirs[id - 1].path();
            o.in_flight_messages_max = in_flight_max;
            node->transport =
                std::make_unique<InProcessTransport>(hub, *ios.back(), o, node->rec.handler());
            REQUIRE(node->transport->start().ok());
            nodes.push_back(std::move(node));
        }
        for (NodeId a = 1; a <= 3; ++a)
            for (NodeId b = 1; b <= 3; ++b)
                if (a != b) nodes[a - 1]->transport->set_peer(b, "node" + std::to_string(b));
    }
    void run() {
        for (auto& io : ios) drain(*io);
    }
    Node& operator[](NodeId id) { return *nodes[id - 1]; }

    InProcessHub hub{7};
    TempDir dirs[3];
    std::vector<std::unique_ptr<asio::io_context>> ios;
    std::vector<std::unique_ptr<Node>> nodes;
};

std::vector<raft::Message> heartbeats(NodeId from, NodeId to, std::size_t n) {
    std::vector<raft::Message> out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(heartbeat(from, to, i));
    return out;
}

}  // namespace

TEST_CASE("in-process messages arrive intact, in order, on the receiver's io_context",
          "[transport][inprocess]") {
    Cluster c;
    raft::Message full = sample_message(raft::MessageType::append);
    full.from = 1;
    full.to = 2;
    std::vector<raft::Message> batch = heartbeats(1, 2, 50);
    batch.insert(batch.begin(), full);
    c[1].transport->send(batch);
    CHECK(c[2].rec.messages.empty());  // never delivered inline
    drain(*c.ios[0]);
    CHECK(c[2].rec.messages.empty());  // only the receiver's io_context delivers
    drain(*c.ios[1]);
    CHECK(c[2].rec.messages == batch);
    CHECK(c.hub.delivered() == 51);
}

TEST_CASE("a partition cuts both ways and heals", "[transport][inprocess]") {
    Cluster c;
    c.hub.isolate(1);
    c[1].transport->send(heartbeats(1, 2, 1));
    c[2].transport->send(heartbeats(2, 1, 1));
    c[2].transport->send(heartbeats(2, 3, 1));
    c.run();
    CHECK(c[2].rec.messages.empty());
    CHECK(c[1].rec.messages.empty());
    CHECK(c[3].rec.messages.size() == 1);  // the majority side still talks
    CHECK(c[1].rec.unreachable.empty());   // lost silently, like a dead link
    CHECK(c.hub.lost() == 2);

    c.hub.partition({1, 2});
    c[1].transport->send(heartbeats(1, 2, 1));
    c[1].transport->send(heartbeats(1, 3, 1));
    c.run();
    CHECK(c[2].rec.messages.size() == 1);
    CHECK(c[3].rec.messages.size() == 1);

    c.hub.heal();
    c[1].transport->send(heartbeats(1, 3, 1));
    c.run();
    CHECK(c[3].rec.messages.size() == 2);
}

TEST_CASE("a blocked link drops one direction only", "[transport][inprocess]") {
    Cluster c;
    c.hub.block(1, 2);
    c[1].transport->send(heartbeats(1, 2, 1));
    c[2].transport->send(heartbeats(2, 1, 1));
    c.run();
    CHECK(c[2].rec.messages.empty());
    CHECK(c[1].rec.messages.size() == 1);
    c.hub.unblock(1, 2);
    c[1].transport->send(heartbeats(1, 2, 1));
    c.run();
    CHECK(c[2].rec.messages.size() == 1);
}

TEST_CASE("a seeded drop rate loses some messages and accounts for all", "[transport][inprocess]") {
    Cluster c;
    c.hub.set_drop_rate(0.5);
    for (int i = 0; i < 200; ++i) c[1].transport->send(heartbeats(1, 2, 1));
    c.run();
    CHECK(c[2].rec.messages.size() + c.hub.lost() == 200);
    CHECK(c.hub.lost() > 0);
    CHECK(c.hub.lost() < 200);
    c.hub.set_drop_rate(1.0);
    c[1].transport->send(heartbeats(1, 3, 1));
    c.run();
    CHECK(c[3].rec.messages.empty());
}

TEST_CASE("unknown or stopped peers are reported unreachable", "[transport][inprocess]") {
    Cluster c;
    c[1].transport->send({heartbeat(1, 9, 0)});  // never set_peer'd
    c[3].transport->stop();
    c[1].transport->send({heartbeat(1, 3, 0)});  // known, but gone from the hub
    CHECK(c[1].rec.unreachable.empty());         // never inline
    c.run();
    CHECK(c[1].rec.unreachable == std::vector<NodeId>{9, 3});
    c[1].transport->remove_peer(2);
    c[1].transport->send({heartbeat(1, 2, 0)});
    c.run();
    CHECK(c[2].rec.messages.empty());
    CHECK(c[1].rec.unreachable.back() == 2);
}

TEST_CASE("in-flight messages: exactly the limit is delivered, one more is dropped",
          "[transport][inprocess][limits]") {
    Cluster c(8);
    c[1].transport->send(heartbeats(1, 2, 9));
    c.run();
    CHECK(c[2].rec.messages.size() == 8);
    CHECK(c[1].rec.unreachable == std::vector<NodeId>{2});
    // Once handled, they no longer count.
    c[1].transport->send(heartbeats(1, 2, 8));
    c.run();
    CHECK(c[2].rec.messages.size() == 16);
}

TEST_CASE("a message the codec refuses is dropped in-process too", "[transport][inprocess]") {
    Cluster c;
    raft::Message m = heartbeat(1, 2, 0);
    m.entries.resize(CodecLimits{}.entries_per_message_max + 1);
    c[1].transport->send({m});
    c.run();
    CHECK(c[2].rec.messages.empty());
    CHECK(c[1].rec.unreachable == std::vector<NodeId>{2});
    CHECK(c[1].rec.logged("too_large"));
}

TEST_CASE("an in-process snapshot is copied to the receiver's staging directory",
          "[transport][inprocess][snapshot]") {
    Cluster c;
    TempDir source_dir;
    const std::string data = random_bytes(300 * 1024 + 17, 5);
    const std::string source = source_dir.path() + "/snap.bin";
    write_file(source, data);
    raft::Message msg = snapshot_message(1, 2);
    c[1].transport->send_snapshot(msg, SnapshotSource{source});
    c.run();
    REQUIRE(c[2].rec.snapshots.size() == 1);
    CHECK(c[2].rec.snapshots[0].first == msg);
    CHECK(read_file(c[2].rec.snapshots[0].second) == data);
    CHECK(c[1].rec.snapshots_sent == std::vector<std::pair<NodeId, bool>>{{2, true}});

    c.hub.isolate(2);
    c[1].transport->send_snapshot(msg, SnapshotSource{source});
    c[1].transport->send_snapshot(snapshot_message(1, 3), SnapshotSource{source + ".missing"});
    c.run();
    CHECK(c[2].rec.snapshots.size() == 1);
    CHECK(c[1].rec.snapshots_sent ==
          std::vector<std::pair<NodeId, bool>>{{2, true}, {2, false}, {3, false}});
}

TEST_CASE("no in-process callback runs after stop", "[transport][inprocess]") {
    Cluster c;
    c[1].transport->send(heartbeats(1, 2, 3));
    c[2].transport->stop();
    c.run();
    CHECK(c[2].rec.messages.empty());
}
