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

#include "harness.hpp"
#include "sample_messages.hpp"
#include "transport/codec.hpp"
#include "transport/tcp_transport.hpp"

namespace keel::transport::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

inline constexpr std::uint64_t kCluster = 0xC105;

struct Node {
    Recorder rec;
    std::unique_ptr<TcpTransport> transport;

    std::string address() const { return "127.0.0.1:" + std::to_string(transport->bound_port()); }
};

inline TcpTransportOptions options_for(NodeId id, const std::string& staging_dir,
                                       const std::string& listen = "127.0.0.1:0") {
    TcpTransportOptions o;
    o.self = id;
    o.cluster_id = kCluster;
    o.listen_address = listen;
    o.staging_dir = staging_dir;
    o.snapshot_chunk_bytes = 64 * 1024;
    return o;
}

inline std::unique_ptr<Node> start_node(asio::io_context& io, TcpTransportOptions o) {
    auto node = std::make_unique<Node>();
    node->transport = std::make_unique<TcpTransport>(io, std::move(o), node->rec.handler());
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

inline SenderAndReceiver start_pair(asio::io_context& io_a, TcpTransportOptions oa,
                                    asio::io_context& io_b, TcpTransportOptions ob) {
    SenderAndReceiver p{start_node(io_a, std::move(oa)), start_node(io_b, std::move(ob))};
    p.a->transport->set_peer(2, p.b->address());
    return p;
}

inline SenderAndReceiver start_pair(asio::io_context& io, TcpTransportOptions oa,
                                    TcpTransportOptions ob) {
    return start_pair(io, std::move(oa), io, std::move(ob));
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

inline std::string hello_frame(NodeId from, std::uint64_t cluster = kCluster) {
    return encode_hello(Hello{cluster, from});
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
