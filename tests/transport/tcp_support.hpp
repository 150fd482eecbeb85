// tests/transport/tcp_support.hpp — what the TcpTransport tests share: a
// transport with its recorder, a hand-driven raw client, numbered messages.
// Catch2 macros inside: include from test files only.
#pragma once

#include <catch2/catch.hpp>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../common/test_certs.hpp"
#include "harness.hpp"
#include "sample_messages.hpp"
#include "transport/codec.hpp"
#include "transport/tcp_transport.hpp"
#include "transport/tls.hpp"

namespace keel::transport::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Cluster ids for tests: `n` in the last byte.
inline ClusterId test_cluster(std::uint8_t n) {
    ClusterId id;
    id.bytes[0] = 0xC1;
    id.bytes[ClusterId::kBytes - 1] = n;
    return id;
}
inline const ClusterId kCluster = test_cluster(5);

// The options of both halves of a member's transport: the TCP transport's
// and its MessageChannel's (limits, batching, snapshots).
struct TestOptions : TcpTransportOptions, MessageChannelOptions {
    using TcpTransportOptions::self;
};

struct Node {
    Recorder rec;
    std::shared_ptr<TcpTransport> tcp;
    std::unique_ptr<MessageChannel> transport;

    std::string address() const { return "127.0.0.1:" + std::to_string(tcp->bound_port()); }
};

inline TestOptions options_for(NodeId id, const std::string& staging_dir,
                               const std::string& listen = "127.0.0.1:0") {
    TestOptions o;
    o.self = id;
    o.cluster_id = kCluster;
    o.listen_address = listen;
    o.staging_dir = staging_dir;
    o.snapshot_chunk_bytes = 64 * 1024;
    return o;
}

// Each half's options.
inline TcpTransportOptions tcp_options(const TestOptions& o) {
    TcpTransportOptions tcp = o;
    tcp.frame_bytes_max = o.limits.frame_bytes_max;
    return tcp;
}
inline MessageChannelOptions channel_options(const TestOptions& o) {
    MessageChannelOptions channel = o;
    channel.self = o.self;
    return channel;
}

// Builds the node's TcpTransport and MessageChannel (not started).
inline void make_transport(asio::io_context& io, Node& node, const TestOptions& o,
                           TcpTransportHooks hooks) {
    node.tcp = std::make_shared<TcpTransport>(io, tcp_options(o), std::move(hooks));
    node.transport =
        std::make_unique<MessageChannel>(node.tcp, channel_options(o), node.rec.handler());
}
inline void make_transport(asio::io_context& io, Node& node, const TestOptions& o) {
    make_transport(io, node, o, node.rec.hooks());
}

// Certificates for the whole test process, made once: the members' CA and
// a member certificate; another CA (a neighbouring cluster's) and a member
// of it, whose CA file also trusts the members' CA (so that it accepts a
// member's certificate and is refused only for its own).
struct TestPki {
    TempDir dir{"keel-pki"};
    keel::test::TestCa ca{dir.path(), "members"};
    keel::test::TestCa other_ca{dir.path(), "neighbours"};
    TlsFiles member_files;
    TlsFiles stranger_files;
    std::shared_ptr<const TlsContext> member;
    std::shared_ptr<const TlsContext> stranger;

    TestPki() {
        auto m = ca.issue("member");
        member_files = TlsFiles{m.cert_file, m.key_file, ca.cert_path()};
        member = TlsContext::load(member_files).value();
        auto s = other_ca.issue("stranger");
        const std::string both = dir.sub("both-ca.crt");
        write_file(both, read_file(other_ca.cert_path()) + read_file(ca.cert_path()));
        stranger_files = TlsFiles{s.cert_file, s.key_file, both};
        stranger = TlsContext::load(stranger_files).value();
    }
};
inline TestPki& pki() {
    static TestPki instance;
    return instance;
}

// `o` with mutual TLS as a member (tls = true), or as it is.
inline TestOptions with_tls(TestOptions o, bool tls = true) {
    if (tls) o.tls = pki().member;
    return o;
}

inline std::unique_ptr<Node> start_node(asio::io_context& io, const TestOptions& o) {
    auto node = std::make_unique<Node>();
    make_transport(io, *node, o);
    Status s = node->transport->start();
    INFO(s.to_string());
    REQUIRE(s.ok());
    return node;
}

// The setup of most tests: node 1 (`a`) started with `oa` and told where
// node 2 (`b`, started with `ob`) listens.  Each may run on its own io_context.
struct SenderAndReceiver {
    std::unique_ptr<Node> a;
    std::unique_ptr<Node> b;
};

inline SenderAndReceiver start_pair(asio::io_context& io_a, const TestOptions& oa,
                                    asio::io_context& io_b, const TestOptions& ob) {
    SenderAndReceiver p{start_node(io_a, oa), start_node(io_b, ob)};
    p.a->transport->set_peer(2, p.b->address());
    return p;
}

inline SenderAndReceiver start_pair(asio::io_context& io, const TestOptions& oa,
                                    const TestOptions& ob) {
    return start_pair(io, oa, io, ob);
}

// A hand-driven client for feeding a transport bytes it never should get.
struct RawClient {
    explicit RawClient(asio::io_context& io, std::uint16_t port) : socket(io) {
        socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    }
    void send(const std::string& bytes) { asio::write(socket, asio::buffer(bytes)); }
    void half_close() { socket.shutdown(tcp::socket::shutdown_send); }
    // Waits for the server to close the connection (read returns an error).
    bool wait_closed(asio::io_context& io) {
        bool closed = false;
        std::function<void()> read_more = [&] {
            socket.async_read_some(asio::buffer(buf),
                                   [&](boost::system::error_code ec, std::size_t) {
                                       if (ec) {
                                           closed = true;
                                       } else {
                                           read_more();
                                       }
                                   });
        };
        read_more();
        bool ok = run_until(io, [&] { return closed; });
        return ok;
    }
    tcp::socket socket;
    std::array<char, 256> buf{};
};

inline std::string hello_frame(NodeId from, const ClusterId& cluster = kCluster) {
    return encode_hello(Hello{cluster, from, ""});
}

inline std::vector<raft::Message> numbered_heartbeats(NodeId from, NodeId to, std::size_t n,
                                                      std::uint64_t first = 0) {
    std::vector<raft::Message> out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(heartbeat(from, to, first + i));
    return out;
}

inline bool in_order(const std::vector<raft::Message>& got, std::size_t n) {
    if (got.size() != n) return false;
    for (std::size_t i = 0; i < n; ++i)
        if (got[i].context != i) return false;
    return true;
}

}  // namespace keel::transport::testing
