// TcpTransport on 127.0.0.1: batches, framing, bad input from strangers,
// limits, connects and reconnects (snapshots: tcp_snapshot_test.cpp;
// send_now: tcp_send_now_test.cpp).  Everything runs on one io_context in
// this thread; waits are bounded loops over run_one_for, never sleeps.
#include <catch2/catch.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <string>
#include <vector>

#include "tcp_support.hpp"

using namespace keel;
using namespace keel::transport;
using namespace keel::transport::testing;  // with its asio and tcp aliases

TEST_CASE("three transports exchange message batches, in order per peer", "[transport][tcp]") {
    const bool tls = GENERATE(false, true);
    INFO("tls " << tls);
    asio::io_context io;
    TempDir dir;
    std::vector<std::unique_ptr<Node>> nodes;
    for (NodeId id = 1; id <= 3; ++id)
        nodes.push_back(start_node(io, with_tls(options_for(id, dir.path()), tls)));
    for (NodeId a = 1; a <= 3; ++a)
        for (NodeId b = 1; b <= 3; ++b)
            if (a != b) nodes[a - 1]->transport->set_peer(b, nodes[b - 1]->address());

    // Every field set: the full message survives the trip.
    raft::Message full = sample_message(raft::MessageType::append);
    full.from = 1;
    full.to = 2;
    nodes[0]->transport->send({full});
    REQUIRE(run_until(io, [&] { return nodes[1]->rec.messages.size() == 1; }));
    CHECK(nodes[1]->rec.messages[0] == full);
    nodes[1]->rec.messages.clear();

    // 1 -> 2 and 3 -> 2 in several calls; 2 -> 1 in one call.
    const std::size_t n = 300;
    for (std::size_t i = 0; i < n; i += 100) {
        nodes[0]->transport->send(numbered_heartbeats(1, 2, 100, i));
        nodes[2]->transport->send(numbered_heartbeats(3, 2, 100, i));
    }
    nodes[1]->transport->send(numbered_heartbeats(2, 1, n));
    REQUIRE(run_until(io, [&] {
        return nodes[1]->rec.messages.size() == 2 * n && nodes[0]->rec.messages.size() == n;
    }));
    std::vector<raft::Message> from1, from3;
    for (const auto& m : nodes[1]->rec.messages) (m.from == 1 ? from1 : from3).push_back(m);
    CHECK(in_order(from1, n));
    CHECK(in_order(from3, n));
    CHECK(in_order(nodes[0]->rec.messages, n));
    // Batching: many messages shared few frames.
    CHECK(nodes[1]->tcp->stats().buffers_sent < n / 10);
    for (const auto& node : nodes) {
        CHECK(node->rec.unreachable.empty());
        CHECK(node->rec.rejections.empty());
    }
}

TEST_CASE("a hello says where its sender listens: its bound address, or the one advertised",
          "[transport][tcp]") {
    const bool tls = GENERATE(false, true);
    INFO("tls " << tls);
    asio::io_context io;
    TempDir dir;
    auto [a, b] = start_pair(io, with_tls(options_for(1, dir.path()), tls),
                             with_tls(options_for(2, dir.path()), tls));
    a->transport->send(numbered_heartbeats(1, 2, 1));
    REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 1; }));
    // Reported once per connection, before what it carries.
    REQUIRE(b->rec.hellos.size() == 1);
    CHECK(b->rec.hellos[0] == std::pair<NodeId, std::string>{1, a->address()});

    TestOptions advertised = with_tls(options_for(3, dir.path()), tls);
    advertised.advertised_address = "node3.example:7080";
    auto c = start_node(io, advertised);
    c->transport->set_peer(2, b->address());
    c->transport->send(numbered_heartbeats(3, 2, 1));
    REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 2; }));
    REQUIRE(b->rec.hellos.size() == 2);
    CHECK(b->rec.hellos[1] == std::pair<NodeId, std::string>{3, "node3.example:7080"});
}

TEST_CASE("an advertised address a hello cannot carry is refused at start", "[transport][tcp]") {
    asio::io_context io;
    TempDir dir;
    for (const std::string& bad :
         {std::string(kHelloAddressBytesMax + 1, 'h'), std::string("with space:1")}) {
        TestOptions o = options_for(1, dir.path());
        o.advertised_address = bad;
        Node node;
        make_transport(io, node, o);
        CHECK(node.transport->start().code() == ErrorCode::invalid_argument);
    }
    TestOptions longest = options_for(1, dir.path());
    longest.advertised_address = std::string(kHelloAddressBytesMax, 'h');
    Node node;
    make_transport(io, node, longest);
    CHECK(node.transport->start().ok());
}

TEST_CASE("a garbage client is disconnected and the transport keeps serving", "[transport][tcp]") {
    asio::io_context io;
    TempDir dir;
    auto [a, b] = start_pair(io, options_for(1, dir.path()), options_for(2, dir.path()));

    SECTION("text instead of frames") {
        RawClient junk(io, b->tcp->bound_port());
        junk.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(junk.wait_closed(io));
        CHECK(b->rec.logged("before hello"));
        CHECK(b->rec.rejection_names() == std::vector<std::string>{"hello"});
    }
    SECTION("random bytes behind a plausible length") {
        RawClient junk(io, b->tcp->bound_port());
        std::string bytes = random_bytes(kHelloFrameBytes, 7);
        const std::size_t length = kHelloFrameBytes - kFrameLengthBytes;
        bytes[0] = static_cast<char>(length & 0xff);
        bytes[1] = static_cast<char>(length >> 8);
        bytes[2] = bytes[3] = 0;
        junk.send(bytes);
        CHECK(junk.wait_closed(io));
        CHECK(b->rec.logged("bad frame"));
        CHECK(b->rec.rejection_names() == std::vector<std::string>{"hello"});
    }
    SECTION("a frame before the hello") {
        RawClient junk(io, b->tcp->bound_port());
        std::vector<raft::Message> one{heartbeat(1, 2, 0)};
        junk.send(*encode_messages(one, {}));
        CHECK(junk.wait_closed(io));
        CHECK(b->rec.rejection_names() == std::vector<std::string>{"hello"});
    }
    SECTION("a hello from another cluster") {
        RawClient junk(io, b->tcp->bound_port());
        junk.send(hello_frame(1, test_cluster(6)));
        CHECK(junk.wait_closed(io));
        CHECK(b->rec.logged("of cluster"));
        CHECK(b->rec.rejection_names() == std::vector<std::string>{"cluster_id"});
    }
    SECTION("a message claiming another sender") {
        RawClient junk(io, b->tcp->bound_port());
        std::vector<raft::Message> one{heartbeat(3, 2, 0)};
        junk.send(hello_frame(1) + *encode_messages(one, {}));
        CHECK(junk.wait_closed(io));
        CHECK(b->rec.logged("on the link of node 1"));
        CHECK(b->rec.rejection_names() == std::vector<std::string>{"misaddressed"});
    }
    SECTION("a message addressed to another node") {
        RawClient junk(io, b->tcp->bound_port());
        std::vector<raft::Message> one{heartbeat(1, 3, 0)};
        junk.send(hello_frame(1) + *encode_messages(one, {}));
        CHECK(junk.wait_closed(io));
        CHECK(b->rec.logged("message for node 3, this is node 2"));
        CHECK(b->rec.rejection_names() == std::vector<std::string>{"misaddressed"});
    }
    SECTION("a snapshot message in a frame of messages (its data never comes)") {
        RawClient junk(io, b->tcp->bound_port());
        raft::Message snap = heartbeat(1, 2, 1);
        snap.type = raft::MessageType::snapshot;
        snap.snapshot = raft::SnapshotMeta{10, 3, {}};
        std::vector<raft::Message> one{heartbeat(1, 2, 0), snap};
        junk.send(hello_frame(1) + *encode_messages(one, {}));
        CHECK(junk.wait_closed(io));
        CHECK(b->rec.logged("a snapshot message in a frame of messages"));
        CHECK(b->rec.rejection_names() == std::vector<std::string>{"wrong_frame_kind"});
    }
    CHECK(b->rec.messages.empty());
    CHECK(b->tcp->stats().inbound_rejected >= 1);

    a->transport->send(numbered_heartbeats(1, 2, 10));
    REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 10; }));
    CHECK(in_order(b->rec.messages, 10));
}

TEST_CASE("frames split at every byte, many in one write, or larger than the buffer arrive whole",
          "[transport][tcp]") {
    asio::io_context io;
    TempDir dir;
    auto b = start_node(io, options_for(2, dir.path()));
    RawClient client(io, b->tcp->bound_port());
    std::uint64_t next = 0;
    auto frame_of = [&](std::size_t messages, std::size_t payload_bytes) {
        std::vector<raft::Message> batch;
        for (std::size_t i = 0; i < messages; ++i) {
            raft::Message m = heartbeat(1, 2, next++);
            if (payload_bytes != 0) {
                m.type = raft::MessageType::append;
                m.entries.push_back(raft::Entry{
                    1, m.context + 1, raft::EntryType::normal,
                    std::string(payload_bytes, static_cast<char>('a' + m.context % 26))});
            }
            batch.push_back(std::move(m));
        }
        return *encode_messages(batch, {});
    };
    // Five frames in one write, behind the hello.
    std::string burst = hello_frame(1);
    for (int i = 0; i < 5; ++i) burst += frame_of(1 + i % 3, 0);
    client.send(burst);
    // Five frames a byte at a time, each byte given a chance to be read alone.
    std::string trickle;
    for (int i = 0; i < 5; ++i) trickle += frame_of(2, 10);
    for (char c : trickle) {
        client.send(std::string(1, c));
        drain(io);
    }
    // A frame of 3 MiB (the buffer starts at 64 KiB and grows), in three
    // uneven writes, then small frames again (the buffer shrinks back).
    // Large writes go asynchronously, the receiver reading meanwhile: the
    // loopback buffers need not hold them whole.
    auto write_all = [&](const std::string& bytes) {
        bool written = false;
        asio::async_write(client.socket, asio::buffer(bytes),
                          [&](boost::system::error_code ec, std::size_t) { written = !ec; });
        REQUIRE(run_until(io, [&] { return written; }));
    };
    const std::string big = frame_of(1, 3 << 20);
    client.send(big.substr(0, 5));
    drain(io);
    write_all(big.substr(5, 100000));
    const std::string after = frame_of(3, 0);
    write_all(big.substr(100005) + after + frame_of(1, 0));
    // ~400 KiB of small frames in one write: reads end inside frames, whose
    // start moves to the front of the buffer before the next read.
    std::string many;
    for (int i = 0; i < 2000; ++i) many += frame_of(1 + i % 4, 97);
    write_all(many);
    REQUIRE(run_until(io, [&] { return b->rec.messages.size() == next; }));
    CHECK(in_order(b->rec.messages, next));
    const raft::Message& got_big = b->rec.messages[19];
    REQUIRE(got_big.entries.size() == 1);
    CHECK(got_big.entries[0].data.size() == std::size_t{3} << 20);
    CHECK(b->rec.unreachable.empty());
    CHECK(b->tcp->stats().inbound_rejected == 0);
}

TEST_CASE("a truncated frame closes the connection with the reason logged", "[transport][tcp]") {
    asio::io_context io;
    TempDir dir;
    auto b = start_node(io, options_for(2, dir.path()));
    std::vector<raft::Message> batch = numbered_heartbeats(1, 2, 5);
    std::string frame = *encode_messages(batch, {});

    RawClient client(io, b->tcp->bound_port());
    client.send(hello_frame(1) + frame.substr(0, frame.size() / 2));
    client.half_close();
    CHECK(client.wait_closed(io));
    INFO(b->rec.all_logs());
    CHECK(b->rec.logged("truncated frame: connection closed after " +
                        std::to_string(frame.size() / 2 - kFrameLengthBytes) + " of " +
                        std::to_string(frame.size() - kFrameLengthBytes) + " body bytes"));
    CHECK(b->rec.messages.empty());

    RawClient cut_prefix(io, b->tcp->bound_port());
    cut_prefix.send(hello_frame(1) + frame.substr(0, 2));
    cut_prefix.half_close();
    CHECK(cut_prefix.wait_closed(io));
    CHECK(b->rec.logged("truncated frame length prefix: connection closed after 2 of 4 bytes"));
}

TEST_CASE("an oversized length prefix closes the connection before any allocation",
          "[transport][tcp][limits]") {
    asio::io_context io;
    TempDir dir;
    TestOptions o = options_for(2, dir.path());
    o.limits.frame_bytes_max = 128 * 1024;
    o.batch_bytes_max = 64 * 1024;
    auto b = start_node(io, o);

    RawClient client(io, b->tcp->bound_port());
    std::uint32_t body =
        static_cast<std::uint32_t>(o.limits.frame_bytes_max - kFrameLengthBytes + 1);
    std::string prefix(4, '\0');
    for (int i = 0; i < 4; ++i) prefix[i] = static_cast<char>((body >> (8 * i)) & 0xff);
    client.send(hello_frame(1) + prefix);
    CHECK(client.wait_closed(io));
    INFO(b->rec.all_logs());
    CHECK(b->rec.logged("frame length " + std::to_string(body) + " exceeds the limit of " +
                        std::to_string(o.limits.frame_bytes_max)));
}

TEST_CASE("a frame of exactly the size limit is delivered, one byte more is never sent",
          "[transport][tcp][limits]") {
    asio::io_context io;
    TempDir dir;
    TestOptions oa = options_for(1, dir.path());
    TestOptions ob = options_for(2, dir.path());
    for (auto* o : {&oa, &ob}) {
        o->limits.frame_bytes_max = 256 * 1024;
        o->batch_bytes_max = 64 * 1024;
    }
    auto [a, b] = start_pair(io, oa, ob);

    raft::Message m = heartbeat(1, 2, 0);
    m.type = raft::MessageType::append;
    m.entries.push_back(raft::Entry{1, 1, raft::EntryType::normal, ""});
    std::size_t empty_frame = kMessagesFrameFixedBytes + encoded_message_bytes(m);
    m.entries[0].data = std::string(oa.limits.frame_bytes_max - empty_frame, 'x');
    REQUIRE(encode_messages(std::vector{m}, oa.limits)->size() == oa.limits.frame_bytes_max);
    a->transport->send({m});
    REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 1; }));
    CHECK(b->rec.messages[0] == m);

    m.entries[0].data = m.entries[0].data.str() + 'y';
    a->transport->send({m, heartbeat(1, 2, 1)});
    REQUIRE(
        run_until(io, [&] { return b->rec.messages.size() == 2 && !a->rec.unreachable.empty(); }));
    CHECK(b->rec.messages[1].context == 1);  // the oversized one was dropped, not the rest
    CHECK(a->rec.unreachable == std::vector<NodeId>{2});
    CHECK(a->rec.logged("too_large"));
}

TEST_CASE("a peer queue takes exactly its limit; one more buffer is dropped and reported",
          "[transport][tcp][limits]") {
    asio::io_context io;
    TempDir dir;
    TestOptions oa = options_for(1, dir.path());
    oa.peer_queue_buffers_max = 8;
    auto [a, b] = start_pair(io, oa, options_for(2, dir.path()));

    // Nine buffers (one per send), queued before any connect completes.
    for (std::size_t i = 0; i < 9; ++i) a->transport->send(numbered_heartbeats(1, 2, 1, i));
    REQUIRE(
        run_until(io, [&] { return b->rec.messages.size() == 8 && !a->rec.unreachable.empty(); }));
    CHECK(in_order(b->rec.messages, 8));
    CHECK(a->rec.unreachable == std::vector<NodeId>{2});
    CHECK(a->tcp->stats().buffers_dropped == 1);
}

TEST_CASE("a batch of exactly batch_bytes_max goes in one frame, one more message starts another",
          "[transport][tcp][limits]") {
    const std::size_t per_message = encoded_message_bytes(heartbeat(1, 2, 0));
    for (std::size_t n : {10u, 11u}) {
        asio::io_context io;
        TempDir dir;
        TestOptions oa = options_for(1, dir.path());
        oa.batch_bytes_max = 10 * per_message;
        auto [a, b] = start_pair(io, oa, options_for(2, dir.path()));
        a->transport->send(numbered_heartbeats(1, 2, n));  // all queued before the connect
        // One frame (one buffer) per batch.
        const std::uint64_t frames = n == 10 ? 1 : 2;
        REQUIRE(run_until(io, [&] {
            return b->rec.messages.size() == n && a->tcp->stats().buffers_sent >= frames;
        }));
        CHECK(in_order(b->rec.messages, n));
        CHECK(a->tcp->stats().buffers_sent == frames);
    }
}

TEST_CASE("messages to an unknown peer are dropped and reported", "[transport][tcp]") {
    asio::io_context io;
    TempDir dir;
    auto a = start_node(io, options_for(1, dir.path()));
    a->transport->send({heartbeat(1, 9, 0)});
    CHECK(a->rec.unreachable.empty());  // never reported from inside send()
    drain(io);
    CHECK(a->rec.unreachable == std::vector<NodeId>{9});
}

TEST_CASE("the inbound connection limit: exactly the limit is served, one more is closed",
          "[transport][tcp][limits]") {
    asio::io_context io;
    TempDir dir;
    TestOptions ob = options_for(2, dir.path());
    ob.inbound_connections_max = 1;
    auto b = start_node(io, ob);
    RawClient first(io, b->tcp->bound_port());
    first.send(hello_frame(1));
    REQUIRE(run_until(io, [&] { return b->tcp->stats().inbound_accepted == 1; }));
    RawClient second(io, b->tcp->bound_port());
    CHECK(second.wait_closed(io));
    CHECK(b->tcp->stats().inbound_accepted == 1);
    CHECK(b->tcp->stats().inbound_rejected == 1);
}

TEST_CASE("a connection that never says hello is closed", "[transport][tcp][limits]") {
    asio::io_context io;
    TempDir dir;
    TestOptions ob = options_for(2, dir.path());
    ob.hello_timeout = std::chrono::milliseconds(20);
    auto b = start_node(io, ob);
    RawClient silent(io, b->tcp->bound_port());
    CHECK(silent.wait_closed(io));
    CHECK(b->rec.logged("no hello in time (hello_timeout 20 ms)"));
    CHECK(b->rec.rejected(Rejection::hello_timeout) == 1);
}

TEST_CASE("a newer connection from the same node replaces the older one", "[transport][tcp]") {
    asio::io_context io;
    TempDir dir;
    auto b = start_node(io, options_for(2, dir.path()));
    RawClient old_connection(io, b->tcp->bound_port());
    old_connection.send(hello_frame(1));
    REQUIRE(run_until(io, [&] { return b->rec.logged("is node 1"); }));
    RawClient new_connection(io, b->tcp->bound_port());
    new_connection.send(hello_frame(1));
    CHECK(old_connection.wait_closed(io));
    CHECK(b->rec.logged("replaced by a newer connection"));
    std::vector<raft::Message> one{heartbeat(1, 2, 0)};
    new_connection.send(*encode_messages(one, {}));
    REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 1; }));
}

TEST_CASE("a connect that never completes times out and is reported", "[transport][tcp]") {
    asio::io_context io;
    TempDir dir;
    // A listener that never accepts, with its backlog filled: Linux then
    // drops further SYNs, so the transport's connect hangs.
    tcp::acceptor stuck(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    stuck.listen(0);
    const std::uint16_t port = stuck.local_endpoint().port();
    std::vector<std::unique_ptr<tcp::socket>> fillers;
    for (int i = 0; i < 2; ++i) {
        fillers.push_back(std::make_unique<tcp::socket>(io));
        fillers.back()->async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                      [](boost::system::error_code) {});
    }
    TestOptions oa = options_for(1, dir.path());
    oa.connect_timeout = std::chrono::milliseconds(50);
    auto a = start_node(io, oa);
    a->transport->set_peer(2, "127.0.0.1:" + std::to_string(port));
    a->transport->send({heartbeat(1, 2, 0)});
    REQUIRE(run_until(io, [&] { return !a->rec.unreachable.empty(); }));
    INFO(a->rec.all_logs());
    if (a->rec.logged("cannot connect")) {
        // A kernel set to reset on accept-queue overflow (tcp_abort_on_overflow)
        // refuses instead: still reported, but the timeout was not exercised.
        WARN("connect was refused, not left hanging; connect_timeout not exercised");
        return;
    }
    CHECK(a->rec.logged("timed out after 50 ms"));
    CHECK(a->tcp->stats().connect_failures >= 1);
}

TEST_CASE("a sender reconnects after its peer restarts", "[transport][tcp]") {
    asio::io_context io;
    TempDir dir;
    auto a = start_node(io, options_for(1, dir.path()));
    auto b = start_node(io, options_for(2, dir.path()));
    const std::string b_address = b->address();
    a->transport->set_peer(2, b_address);

    a->transport->send({heartbeat(1, 2, 0)});
    REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 1; }));

    b.reset();  // the peer goes away: A notices and reports it unreachable
    REQUIRE(run_until(io, [&] { return !a->rec.unreachable.empty(); }));

    // Send while down: dropped (Raft retries); then the peer comes back on
    // the same port and a later message gets through on a new connection.
    a->transport->send({heartbeat(1, 2, 1)});
    b = start_node(io, options_for(2, dir.path(), b_address));
    std::uint64_t next = 2;
    int rounds = 0;
    REQUIRE(run_until(io, [&] {
        if (++rounds % 20 == 0) a->transport->send({heartbeat(1, 2, next++)});
        return !b->rec.messages.empty();
    }));
    CHECK(b->rec.messages.back().context >= 1);
    CHECK(a->tcp->stats().connects >= 2);
}

TEST_CASE("no callback runs after stop", "[transport][tcp]") {
    asio::io_context io;
    TempDir dir;
    auto a = start_node(io, options_for(1, dir.path()));
    a->transport->send({heartbeat(1, 9, 0)});  // posts on_unreachable
    a->transport->stop();
    drain(io);
    CHECK(a->rec.unreachable.empty());
    a.reset();
    drain(io);  // pending handlers complete harmlessly after destruction
}
