// HelloGate, the pure decision before a peer has said who it is: every
// outcome of every state, without sockets.
#include <catch2/catch.hpp>

#include <string>

#include "tcp_support.hpp"
#include "transport/hello_gate.hpp"

using namespace keel;
using namespace keel::transport;
using namespace keel::transport::testing;

namespace {

using Action = HelloGate::Action;
using State = HelloGate::State;

constexpr NodeId kSelf = 2;

}  // namespace

TEST_CASE("a hello arriving in pieces identifies its sender once whole", "[transport][hello]") {
    const std::string hello = hello_frame(1);
    for (std::size_t cut = 0; cut < hello.size(); ++cut) {
        INFO("cut at " << cut);
        HelloGate gate(kSelf, false);
        CHECK(gate.on_bytes(hello.substr(0, cut), kCluster).action == Action::wait);
        CHECK(gate.state() == State::awaiting_hello);
        HelloGate::Decision d = gate.on_bytes(hello, kCluster);
        REQUIRE(d.action == Action::identified);
        CHECK(d.consumed == hello.size());
        CHECK(gate.hello().from == 1);
        CHECK(gate.state() == State::identified);
    }
}

TEST_CASE("only the hello is consumed; the frames behind it are the connection's",
          "[transport][hello]") {
    HelloGate gate(kSelf, false);
    std::vector<raft::Message> one{heartbeat(1, 2, 0)};
    const std::string bytes = hello_frame(1) + *encode_messages(one, {});
    HelloGate::Decision d = gate.on_bytes(bytes, kCluster);
    REQUIRE(d.action == Action::identified);
    CHECK(d.consumed == hello_frame(1).size());
}

TEST_CASE("what the gate refuses, and why", "[transport][hello]") {
    auto refused = [](const std::string& bytes, Rejection reason, const std::string& needle) {
        HelloGate gate(kSelf, false);
        HelloGate::Decision d = gate.on_bytes(bytes, kCluster);
        INFO(d.detail);
        CHECK(d.action == Action::refuse);
        CHECK(d.reason == reason);
        CHECK(d.detail.find(needle) != std::string::npos);
        CHECK(gate.state() == State::refused);
    };
    SECTION("a length prefix longer than a hello, before its body is read") {
        std::string prefix = hello_frame(1).substr(0, 4);
        const std::size_t length = kHelloFrameBytes - kFrameLengthBytes + 1;
        prefix[0] = static_cast<char>(length & 0xff);
        prefix[1] = static_cast<char>(length >> 8);
        refused(prefix, Rejection::hello, "(before hello)");
    }
    SECTION("a messages frame first") {
        // Small enough to pass the length check: a hand-sealed tiny payload.
        refused(seal_frame(static_cast<std::uint8_t>(FrameKind::messages), std::string(8, '\0')),
                Rejection::hello, "bad frame");
    }
    SECTION("a corrupted hello") {
        std::string bad = hello_frame(1);
        bad[10] ^= 1;
        refused(bad, Rejection::hello, "bad frame");
    }
    SECTION("another wire version") {
        const std::string hello = hello_frame(1);
        std::string payload = hello.substr(6, hello.size() - 10);
        refused(seal_frame(static_cast<std::uint8_t>(FrameKind::hello), payload, kWireVersion - 1),
                Rejection::hello, "version");
    }
    SECTION("another cluster") {
        refused(hello_frame(1, test_cluster(6)), Rejection::cluster_id, "this is cluster");
    }
    SECTION("our own id") {
        refused(hello_frame(kSelf), Rejection::hello, "our own id");
    }
}

TEST_CASE("a fresh joiner adopts the first valid hello's cluster once it is stored",
          "[transport][hello]") {
    const std::string hello = hello_frame(1);
    HelloGate gate(kSelf, false);
    HelloGate::Decision d = gate.on_bytes(hello, ClusterId{});
    REQUIRE(d.action == Action::adopt);
    CHECK(gate.state() == State::adopting);
    CHECK(gate.hello().cluster_id == kCluster);
    d = gate.on_adopted(Status());
    CHECK(d.action == Action::identified);
    CHECK(d.consumed == hello.size());

    HelloGate failing(kSelf, false);
    REQUIRE(failing.on_bytes(hello, ClusterId{}).action == Action::adopt);
    d = failing.on_adopted(Status(ErrorCode::io_error, "disk full"));
    CHECK(d.action == Action::refuse);
    CHECK(d.reason == Rejection::cluster_id);
    CHECK(d.detail.find("disk full") != std::string::npos);
}

TEST_CASE("with TLS the handshake comes first; its failure is a tls_handshake refusal",
          "[transport][hello]") {
    HelloGate ok(kSelf, true);
    CHECK(ok.state() == State::tls_handshake);
    CHECK(ok.on_tls_handshake(Status()).action == Action::wait);
    CHECK(ok.state() == State::awaiting_hello);
    CHECK(ok.on_bytes(hello_frame(1), kCluster).action == Action::identified);

    HelloGate bad(kSelf, true);
    HelloGate::Decision d =
        bad.on_tls_handshake(Status(ErrorCode::invalid_argument, "TLS handshake failed: x"));
    CHECK(d.action == Action::refuse);
    CHECK(d.reason == Rejection::tls_handshake);
    CHECK(d.detail == "TLS handshake failed: x");
}

TEST_CASE("the deadline and the peer's close before the hello", "[transport][hello]") {
    for (bool tls : {false, true}) {
        INFO("tls " << tls);
        HelloGate late(kSelf, tls);
        HelloGate::Decision d = late.on_deadline();
        CHECK(d.action == Action::refuse);
        CHECK(d.reason == Rejection::hello_timeout);

        HelloGate silent(kSelf, tls);
        CHECK(silent.on_closed(0).action == Action::close);

        HelloGate cut(kSelf, tls);
        d = cut.on_closed(3);
        CHECK(d.action == Action::refuse);
        CHECK(d.reason == (tls ? Rejection::tls_handshake : Rejection::hello));
    }
}
