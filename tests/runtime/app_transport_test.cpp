// keel::Node over an application's own transport (NodeOptions::transport):
// a 3-node cluster carried by an in-memory keel::Transport
// (tests/common/memory_transport.hpp) through an election, replication, a
// member isolated and reconnected, and a snapshot to a member that fell
// behind the leader's compacted log; and bytes such a transport delivers
// treated as untrusted: refused, counted, never an abort.
#include <catch2/catch.hpp>

#include <random>

#include "../common/memory_transport.hpp"
#include "cluster_support.hpp"
#include "transport/codec.hpp"

using namespace keel;
using keel::test::eventually;
using keel::test::MemoryNetwork;
using keel::test::TestCluster;

namespace {

namespace tp = keel::transport;

// Whether every running node applied exactly `data` at the same indexes as
// node `reference`.
bool same_state(TestCluster& c, std::initializer_list<NodeId> ids, NodeId reference) {
    const auto expected = c.sm(reference).applied();
    for (NodeId id : ids)
        if (c.sm(id).applied() != expected) return false;
    return true;
}

std::uint64_t rejected(Node& n, const std::string& reason) {
    const NodeStatus s = n.status();
    auto it = s.peer_messages_rejected.find(reason);
    return it == s.peer_messages_rejected.end() ? 0 : it->second;
}

NodeId other_than(NodeId a, NodeId b) {
    for (NodeId id : {1, 2, 3})
        if (id != a && id != b) return id;
    return 0;
}

}  // namespace

TEST_CASE(
    "an application transport carries a cluster through elections, replication, "
    "isolation and a snapshot",
    "[runtime][transport]") {
    MemoryNetwork net;  // outlives the nodes
    TestCluster c(3);
    c.transport_for = [&net](NodeId id) { return net.endpoint(id); };
    c.snapshot_every = 20;
    c.snapshot_trailing = 5;
    for (NodeId id : {1, 2, 3}) c.start(id);

    // Election and replication.
    const NodeId first = c.leader();
    REQUIRE(first != 0);
    for (int i = 0; i < 10; ++i) c.propose("a" + std::to_string(i));
    REQUIRE(eventually([&] { return same_state(c, {1, 2, 3}, first); }));
    CHECK(c.sm(1).applied().size() >= 10);

    // The leader isolated: the other two elect one of theirs and go on; back,
    // the old leader steps down and catches up.
    net.isolate(first, {1, 2, 3});
    NodeId second = 0;
    REQUIRE(eventually([&] {
        for (NodeId id : {1, 2, 3})
            if (id != first && c.node(id).status().role == Role::leader) second = id;
        return second != 0;
    }));
    const NodeId third = other_than(first, second);
    for (int i = 0; i < 5; ++i) {
        ProposeResult r;
        REQUIRE(eventually([&] {
            r = c.node(second).propose("b" + std::to_string(i)).get();
            return r.status.ok();
        }));
    }
    net.heal();
    REQUIRE(eventually([&] {
        return c.node(first).status().role != Role::leader && c.sm(first).has_data("b4") &&
               same_state(c, {1, 2, 3}, second);
    }));

    // A follower isolated while the leader writes past two snapshots and
    // compacts its log behind them: back, it gets the leader's snapshot.
    const NodeId lagging = c.leader() == third ? first : third;
    const NodeId leader = c.leader();
    REQUIRE(lagging != leader);
    net.isolate(lagging, {1, 2, 3});
    for (int i = 0; i < 60; ++i) {
        ProposeResult r;
        REQUIRE(eventually([&] {
            r = c.node(leader).propose("c" + std::to_string(i)).get();
            return r.status.ok();
        }));
    }
    REQUIRE(eventually([&] { return c.node(leader).status().snapshot_index > 40; }));
    CHECK(c.sm(lagging).restores() == 0);
    net.heal();
    REQUIRE(eventually([&] {
        return c.sm(lagging).restores() >= 1 && c.sm(lagging).has_data("c59") &&
               same_state(c, {1, 2, 3}, leader);
    }));
    CHECK(net.snapshots_done.load() >= 1);
    CHECK(c.node(lagging).status().snapshot_index > 0);
    for (NodeId id : {1, 2, 3}) {
        INFO("node " << id);
        CHECK(c.node(id).status().peer_messages_rejected.empty());
        CHECK(c.sm(id).duplicate_applies() == 0);
    }
}

TEST_CASE(
    "bytes an application transport delivers are refused and counted when malformed, "
    "truncated, oversized or misaddressed",
    "[runtime][transport]") {
    MemoryNetwork net;
    TestCluster c(3);
    std::shared_ptr<MemoryNetwork::Endpoint> endpoint;
    c.transport_for = [&](NodeId id) {
        auto e = net.endpoint(id);
        if (id == 1) endpoint = e;
        return e;
    };
    for (NodeId id : {1, 2, 3}) c.start(id);
    REQUIRE(c.leader() != 0);
    Node& node = c.node(1);

    // Delivered from this thread (not keel's I/O thread, as any transport
    // may): taken over to the I/O thread, decoded and checked there.
    auto messages = [&](NodeId from, const std::string& bytes, GroupId group = 0) {
        REQUIRE(endpoint->with_sink([&](TransportSink& s) {
            // A group the process does not serve is refused at once; the
            // rest is checked on the I/O thread.
            CHECK(s.on_messages(group, from, bytes).ok() == (group == 0));
        }));
    };
    auto chunk = [&](NodeId from, const std::string& bytes) {
        REQUIRE(endpoint->with_sink(
            [&](TransportSink& s) { CHECK(s.on_snapshot_chunk(0, from, bytes).ok()); }));
    };
    raft::Message heartbeat;
    heartbeat.type = raft::MessageType::heartbeat;
    heartbeat.from = 2;
    heartbeat.to = 1;
    heartbeat.term = 0;  // an old term: harmless if it got through
    const std::string valid = *tp::encode_messages(std::vector{heartbeat}, tp::CodecLimits{});

    std::mt19937_64 rng(26);
    std::string noise(4096, '\0');
    for (char& ch : noise) ch = static_cast<char>(rng());
    messages(2, noise);                              // malformed
    messages(2, valid.substr(0, valid.size() - 3));  // truncated: malformed
    messages(2, valid.substr(0, 2));                 // a cut length prefix: malformed
    messages(2, "");                                 // empty: malformed
    std::string bad_crc = valid;
    bad_crc.back() = static_cast<char>(bad_crc.back() ^ 1);
    messages(2, bad_crc);  // malformed
    std::string huge_prefix = valid;
    huge_prefix[3] = '\x7f';                                      // announces ~2 GiB
    messages(2, huge_prefix);                                     // oversized: malformed
    messages(2, std::string(kTransportBufferBytesMax + 1, 'x'));  // oversized: malformed
    messages(3, valid);                                           // from 2, said 3: misaddressed
    messages(2, valid, 7);                                        // another group: unknown_group
    tp::ClusterId cluster;
    cluster.bytes[0] = 1;
    messages(2, tp::encode_hello(tp::Hello{cluster, 2, ""}));  // a hello: wrong_frame_kind
    chunk(2, noise);                                           // malformed
    tp::SnapshotChunk late{9, 100, 300, std::string(100, 's'), std::nullopt};
    chunk(2, *tp::encode_snapshot_chunk(late, tp::CodecLimits{}));  // offset 100 first: snapshot

    REQUIRE(eventually([&] {
        return rejected(node, "malformed") == 8 && rejected(node, "misaddressed") == 1 &&
               rejected(node, "unknown_group") == 1 && rejected(node, "wrong_frame_kind") == 1 &&
               rejected(node, "snapshot") == 1;
    }));
    // Still a working member.
    c.propose("after the garbage");
    REQUIRE(eventually([&] { return c.sm(1).has_data("after the garbage"); }));
    CHECK(node.status().failure.empty());
}
