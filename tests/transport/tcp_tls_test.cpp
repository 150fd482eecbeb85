// TcpTransport's gate on the peer port: mutual TLS (who may connect), the
// cluster id (which cluster), and the limits on connections (how many, how
// long before and after the hello).  Message flow under TLS is covered by
// the tests in the other tcp_*_test.cpp files, which run with and without it.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tcp_support.hpp"

using namespace keel;
using namespace keel::transport;
using namespace keel::transport::testing;  // with its asio and tcp aliases

TEST_CASE("a member with a certificate from another CA delivers nothing and is refused",
          "[transport][tcp][tls]") {
    asio::io_context io;
    TempDir dir;
    TestOptions oa = options_for(1, dir.path());
    oa.tls = pki().stranger;
    auto [a, b] = start_pair(io, oa, with_tls(options_for(2, dir.path())));
    a->transport->send(numbered_heartbeats(1, 2, 3));
    REQUIRE(run_until(io, [&] { return b->rec.rejected(Rejection::tls_handshake) >= 1; }));
    INFO(b->rec.all_logs());
    CHECK(b->rec.logged("unable to get local issuer certificate"));
    // The sender finishes its side of a TLS 1.3 handshake first, then hears
    // the alert: it says why, as an error.
    REQUIRE(run_until(io, [&] { return a->rec.logged("unknown ca"); }));
    CHECK(run_until(io, [&] { return !a->rec.unreachable.empty(); }));
    CHECK(b->rec.messages.empty());
}

TEST_CASE("a plaintext client on a TLS port, and a TLS client on a plaintext port, are refused",
          "[transport][tcp][tls]") {
    asio::io_context io;
    TempDir dir;
    SECTION("plaintext hello to TLS") {
        auto b = start_node(io, with_tls(options_for(2, dir.path())));
        RawClient plain(io, b->tcp->bound_port());
        std::vector<raft::Message> one{heartbeat(1, 2, 0)};
        plain.send(hello_frame(1) + *encode_messages(one, {}));
        CHECK(plain.wait_closed(io));
        CHECK(b->rec.rejected(Rejection::tls_handshake) == 1);
        CHECK(b->rec.messages.empty());
    }
    SECTION("TLS to plaintext") {
        auto [a, b] =
            start_pair(io, with_tls(options_for(1, dir.path())), options_for(2, dir.path()));
        a->transport->send(numbered_heartbeats(1, 2, 1));
        REQUIRE(run_until(io, [&] { return b->rec.rejected(Rejection::hello) >= 1; }));
        CHECK(b->rec.logged("(before hello)"));
        CHECK(b->rec.messages.empty());
    }
}

TEST_CASE("the hello deadline covers the TLS handshake", "[transport][tcp][tls][limits]") {
    asio::io_context io;
    TempDir dir;
    TestOptions ob = with_tls(options_for(2, dir.path()));
    ob.hello_timeout = std::chrono::milliseconds(30);
    auto b = start_node(io, ob);
    RawClient silent(io, b->tcp->bound_port());
    CHECK(silent.wait_closed(io));
    CHECK(b->rec.rejected(Rejection::hello_timeout) == 1);
    CHECK(b->rec.logged("no TLS handshake in time (hello_timeout 30 ms)"));
}

TEST_CASE("an identified connection that goes quiet for idle_timeout is closed",
          "[transport][tcp][limits]") {
    asio::io_context io;
    TempDir dir;
    TestOptions ob = options_for(2, dir.path());
    ob.idle_timeout = std::chrono::milliseconds(50);
    auto b = start_node(io, ob);
    RawClient quiet(io, b->tcp->bound_port());
    quiet.send(hello_frame(1));
    REQUIRE(run_until(io, [&] { return b->rec.logged("is node 1"); }));
    CHECK(quiet.wait_closed(io));
    CHECK(b->rec.logged("nothing received for 50 ms (idle_timeout)"));
    // A timeout, not a refusal.
    CHECK(b->rec.rejections.empty());
}

TEST_CASE("an idle outbound connection is closed quietly and dialled again for the next message",
          "[transport][tcp][limits]") {
    const bool tls = GENERATE(false, true);
    INFO("tls " << tls);
    asio::io_context io;
    TempDir dir;
    TestOptions oa = with_tls(options_for(1, dir.path()), tls);
    oa.outbound_idle_close = std::chrono::milliseconds(30);
    auto [a, b] = start_pair(io, oa, with_tls(options_for(2, dir.path()), tls));
    a->transport->send(numbered_heartbeats(1, 2, 1));
    REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 1; }));
    REQUIRE(run_until(io, [&] { return a->rec.logged("closing the idle connection to node 2"); }));
    REQUIRE(run_until(io, [&] { return b->rec.logged("closed by peer"); }));
    CHECK(a->rec.unreachable.empty());
    a->transport->send(numbered_heartbeats(1, 2, 1, 1));
    REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 2; }));
    CHECK(in_order(b->rec.messages, 2));
    CHECK(a->tcp->stats().connects == 2);
    CHECK(b->rec.rejections.empty());
}

TEST_CASE("connections before their hello: exactly the per-address limit, one more is closed",
          "[transport][tcp][limits]") {
    asio::io_context io;
    TempDir dir;
    TestOptions ob = options_for(2, dir.path());
    ob.inbound_pending_per_address_max = 2;
    auto b = start_node(io, ob);
    RawClient first(io, b->tcp->bound_port());
    RawClient second(io, b->tcp->bound_port());
    REQUIRE(run_until(io, [&] { return b->tcp->stats().inbound_accepted == 2; }));
    RawClient third(io, b->tcp->bound_port());
    CHECK(third.wait_closed(io));
    CHECK(b->rec.rejected(Rejection::connection_limit) == 1);
    CHECK(b->rec.logged("inbound_pending_per_address_max"));
    // Once one has said hello it no longer counts: a new one is served.
    first.send(hello_frame(1));
    REQUIRE(run_until(io, [&] { return b->rec.logged("is node 1"); }));
    RawClient fourth(io, b->tcp->bound_port());
    REQUIRE(run_until(io, [&] { return b->tcp->stats().inbound_accepted == 3; }));
    fourth.send(hello_frame(3));
    REQUIRE(run_until(io, [&] { return b->rec.logged("is node 3"); }));
    CHECK(b->rec.rejected(Rejection::connection_limit) == 1);
}

TEST_CASE("a transport without a cluster id adopts the first valid hello's, once stored",
          "[transport][tcp][cluster_id]") {
    asio::io_context io;
    TempDir dir;
    // b is a fresh joiner: no id; it already has something for node 1.
    auto b = std::make_unique<Node>();
    std::vector<std::pair<ClusterId, NodeId>> adopted;
    Status store_result;
    TcpTransportHooks hb = b->rec.hooks();
    hb.on_cluster_id = [&](const ClusterId& id, NodeId from) {
        adopted.emplace_back(id, from);
        return store_result;
    };
    TestOptions ob = options_for(2, dir.path());
    ob.cluster_id = ClusterId{};
    make_transport(io, *b, ob, std::move(hb));
    REQUIRE(b->transport->start().ok());
    auto a = start_node(io, options_for(1, dir.path()));
    a->transport->set_peer(2, b->address());
    b->transport->set_peer(1, a->address());
    b->transport->send(numbered_heartbeats(2, 1, 1));
    drain(io);
    CHECK(b->tcp->stats().connects == 0);  // no hello to say yet

    SECTION("stored: adopted, and the held message goes") {
        a->transport->send(numbered_heartbeats(1, 2, 2));
        REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 2; }));
        REQUIRE(adopted.size() == 1);
        CHECK(adopted[0] == std::make_pair(kCluster, NodeId{1}));
        REQUIRE(run_until(io, [&] { return a->rec.messages.size() == 1; }));
        // Now it is b's cluster: another one is refused.
        RawClient other(io, b->tcp->bound_port());
        other.send(hello_frame(3, test_cluster(6)));
        CHECK(other.wait_closed(io));
        CHECK(b->rec.rejected(Rejection::cluster_id) == 1);
        CHECK(adopted.size() == 1);
    }
    SECTION("not stored: refused, nothing delivered, still without an id") {
        store_result = Status(ErrorCode::io_error, "disk full");
        RawClient client(io, b->tcp->bound_port());
        std::vector<raft::Message> one{heartbeat(1, 2, 0)};
        client.send(hello_frame(1) + *encode_messages(one, {}));
        CHECK(client.wait_closed(io));
        CHECK(b->rec.rejected(Rejection::cluster_id) == 1);
        CHECK(b->rec.logged("disk full"));
        CHECK(b->rec.messages.empty());
        CHECK(b->tcp->stats().connects == 0);
    }
}
