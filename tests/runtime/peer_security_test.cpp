// Who may talk to a node on its Raft port, end to end in-process: a member
// with a certificate from another CA, a node of another cluster, plain TCP
// beyond loopback; and the cluster id in the data dir (bootstrap, reopen,
// the data dir of a keel from before cluster ids).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "cluster_support.hpp"
#include "runtime/cluster_identity.hpp"
#include "runtime/peer_security.hpp"

using namespace keel;
using keel::test::eventually;
using keel::test::RecordingStateMachine;
using keel::test::TestCa;
using keel::test::TestCluster;

namespace {

std::uint64_t rejected(Node& node, const std::string& reason) {
    const auto counts = node.status().peer_messages_rejected;
    auto it = counts.find(reason);
    return it == counts.end() ? 0 : it->second;
}

Result<std::unique_ptr<Node>> open(const NodeOptions& o) {
    return Node::open(o, std::make_shared<RecordingStateMachine>());
}

}  // namespace

TEST_CASE("a member with a certificate from another CA is refused, counted and logged") {
    TestCluster c(3);
    c.tls = true;
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    const NodeId leader = c.leader();
    const NodeId impostor = leader == 3 ? 2 : 3;
    const NodeId other = 6 - leader - impostor;
    c.stop(impostor);
    // Restarted with a certificate from a neighbouring CA; it trusts the
    // members' CA too, so only its own certificate is wrong.
    TestCa neighbours(c.directory(), "neighbours");
    TestCa::Member cert = neighbours.issue("impostor");
    const std::string both = c.directory() + "/both.crt";
    {
        std::ofstream out(both);
        out << std::ifstream(neighbours.cert_path()).rdbuf()
            << std::ifstream(c.member_certificate(1).ca_file).rdbuf();
    }
    NodeOptions o = c.options(impostor);
    o.peer_tls = PeerTls{cert.cert_file, cert.key_file, both};
    auto node = open(o);
    REQUIRE(node.ok());
    const std::uint64_t before = c.node(leader).status().commit_index;
    for (int i = 0; i < 5; ++i) c.propose("still-" + std::to_string(i));
    // Its connections are refused by both members, and it hears why.
    REQUIRE(eventually([&] {
        return rejected(c.node(leader), "tls_handshake") > 0 &&
               rejected(c.node(other), "tls_handshake") > 0;
    }));
    // The refusal is counted before it is logged: wait for the log line too.
    CHECK(eventually([&] { return c.warned(leader, "peer refused (tls_handshake)"); }));
    CHECK(eventually([&] { return c.warned(leader, "not signed by our CA"); }));
    REQUIRE(eventually([&] { return c.warned(impostor, "unknown ca"); }));
    CHECK(node.value()->status().commit_index <= before);
    CHECK(c.node(leader).status().commit_index > before);
    node.value()->stop();
}

TEST_CASE("a node of another cluster never reaches this one, whatever ids it claims") {
    TestCluster c(3);
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    const NodeId leader = c.leader();
    const std::uint64_t term = c.node(leader).status().term;
    // A stray: it claims to be node 3 of a cluster with the same members,
    // but was bootstrapped as another cluster (its own data dir and port).
    TestCluster other(3);
    NodeOptions o = other.options(3);
    o.initial_members = {c.spec(1), c.spec(2), other.spec(3)};
    auto stray = open(o);
    REQUIRE(stray.ok());
    REQUIRE(eventually(
        [&] { return rejected(c.node(1), "cluster_id") + rejected(c.node(2), "cluster_id") > 0; }));
    for (int i = 0; i < 5; ++i) c.propose("mine-" + std::to_string(i));
    CHECK(c.node(leader).status().role == Role::leader);
    CHECK(c.node(leader).status().term == term);
    CHECK(stray.value()->status().leader_id == 0);
    stray.value()->stop();
}

TEST_CASE("plain TCP is allowed on loopback only, unless peer_insecure says otherwise") {
    CHECK(runtime::is_loopback_address("127.0.0.1:7000"));
    CHECK(runtime::is_loopback_address("127.8.9.10:1"));
    CHECK(runtime::is_loopback_address("[::1]:7000"));
    CHECK(runtime::is_loopback_address("[::ffff:127.0.0.1]:7000"));
    CHECK(runtime::is_loopback_address("localhost:7000"));
    CHECK_FALSE(runtime::is_loopback_address("0.0.0.0:7000"));
    CHECK_FALSE(runtime::is_loopback_address("10.1.2.3:7000"));
    CHECK_FALSE(runtime::is_loopback_address("[::]:7000"));
    CHECK_FALSE(runtime::is_loopback_address("db1.example:7000"));
    CHECK_FALSE(runtime::is_loopback_address("128.0.0.1:7000"));

    keel::test::TempDir dir;
    NodeOptions o;
    o.id = 1;
    o.data_dir = dir.sub("n1");
    std::vector<std::string> warnings;
    o.logger = [&warnings](LogLevel level, const std::string& m) {
        if (level == LogLevel::warn) warnings.push_back(m);
    };
    SECTION("this node's own address") {
        o.listen_address = "0.0.0.0:0";
        auto refused = open(o);
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.status().message().find("0.0.0.0:0 (this node) is not loopback") !=
              std::string::npos);
        o.peer_insecure = true;
        auto node = open(o);
        REQUIRE(node.ok());
        bool warned = false;
        for (const std::string& w : warnings)
            warned = warned || w.find("plain TCP although 0.0.0.0:0") != std::string::npos;
        CHECK(warned);
        node.value()->stop();
    }
    SECTION("a member's address") {
        o.listen_address = "127.0.0.1:0";
        o.cluster_id = keel::test::random_cluster_id();
        o.initial_members = {{1, "127.0.0.1:1", "", true}, {2, "192.0.2.7:7000", "", true}};
        auto refused = open(o);
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.status().message().find("192.0.2.7:7000 is not loopback") !=
              std::string::npos);
        // Refused before anything was written.
        CHECK_FALSE(std::filesystem::exists(o.data_dir + "/cluster_id"));
    }
    SECTION("a member added later") {
        o.listen_address = "127.0.0.1:0";
        auto node = open(o);
        REQUIRE(node.ok());
        Status s = node.value()->add_member({2, "192.0.2.7:7000", "", false}).get();
        CHECK(s.code() == ErrorCode::invalid_argument);
        CHECK(s.message().find("not loopback and this cluster talks plain TCP") !=
              std::string::npos);
        CHECK(node.value()->add_member({2, "127.0.0.1:7000", "", false}).get().ok());
        node.value()->stop();
    }
    SECTION("half a TLS configuration, or TLS and insecure at once") {
        o.listen_address = "127.0.0.1:0";
        o.peer_tls.cert_file = "member.crt";
        CHECK(open(o).status().message() ==
              "peer_tls needs cert_file, key_file and ca_file together");
        o.peer_tls = PeerTls{"a", "b", "c"};
        o.peer_insecure = true;
        CHECK(open(o).status().message() == "peer_insecure contradicts peer_tls");
    }
}

TEST_CASE("the cluster id: made at bootstrap, kept, checked, and set explicitly for old data") {
    keel::test::TempDir dir;
    NodeOptions o;
    o.id = 1;
    o.data_dir = dir.sub("n1");
    o.listen_address = "127.0.0.1:0";
    std::string id;
    {
        auto node = open(o);
        REQUIRE(node.ok());
        id = node.value()->status().cluster_id;
        CHECK(id.size() == 32);
        REQUIRE(node.value()->propose("x").get().status.ok());
        node.value()->stop();
    }
    auto stored = runtime::read_cluster_id(*wal::default_file_system(), o.data_dir);
    REQUIRE(stored.ok());
    REQUIRE(stored->has_value());
    CHECK((*stored)->hex() == id);
    {
        auto again = open(o);
        REQUIRE(again.ok());
        CHECK(again.value()->status().cluster_id == id);
        again.value()->stop();
    }
    NodeOptions wrong = o;
    wrong.cluster_id = keel::test::random_cluster_id();
    CHECK(open(wrong).status().message().find("belongs to cluster " + id) != std::string::npos);

    // A data dir written before cluster ids: a log, no id.  Refused until
    // the operator gives the id, which is then kept.
    std::filesystem::remove(o.data_dir + "/cluster_id");
    auto refused = open(o);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().message().find("holds a log but no cluster id") != std::string::npos);
    NodeOptions given = o;
    given.cluster_id = id;
    {
        auto node = open(given);
        REQUIRE(node.ok());
        CHECK(node.value()->status().cluster_id == id);
        node.value()->stop();
    }
    {
        auto reopened = open(o);
        REQUIRE(reopened.ok());
        CHECK(reopened.value()->status().cluster_id == id);
        reopened.value()->stop();
    }

    // Several founders cannot agree on a random id: they must be given one.
    NodeOptions founder;
    founder.id = 1;
    founder.data_dir = dir.sub("f1");
    founder.listen_address = "127.0.0.1:0";
    founder.initial_members = {{1, "127.0.0.1:1", "", true}, {2, "127.0.0.1:2", "", true}};
    CHECK(open(founder).status().message().find("needs the same cluster id on each") !=
          std::string::npos);

    // A damaged id file is refused, not guessed around.
    {
        std::ofstream out(o.data_dir + "/cluster_id");
        out << "not an id\n";
    }
    CHECK(open(o).status().code() == ErrorCode::corruption);
}
