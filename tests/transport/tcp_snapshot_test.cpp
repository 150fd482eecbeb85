// TcpTransport snapshot streaming on 127.0.0.1: chunks, limits, aborts,
// and what a receiver refuses.  Everything runs on one io_context in this
// thread; waits are bounded loops over run_one_for, never sleeps.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tcp_support.hpp"

using namespace keel;
using namespace keel::transport;
using namespace keel::transport::testing;  // with its asio and tcp aliases

TEST_CASE("a multi-chunk snapshot arrives intact while messages keep flowing",
          "[transport][tcp][snapshot]") {
    const bool tls = GENERATE(false, true);
    INFO("tls " << tls);
    asio::io_context io;
    TempDir sender_dir, receiver_dir;
    TestOptions oa = with_tls(options_for(1, sender_dir.path()), tls);
    auto [a, b] = start_pair(io, oa, with_tls(options_for(2, receiver_dir.path()), tls));

    const std::string data = random_bytes(oa.snapshot_chunk_bytes * 7 / 2, 42);  // 3.5 chunks
    const std::string source = sender_dir.path() + "/snap.bin";
    write_file(source, data);
    raft::Message msg = snapshot_message(1, 2);
    a->transport->send_snapshot(msg, source);
    a->transport->send(numbered_heartbeats(1, 2, 3));

    REQUIRE(run_until(
        io, [&] { return b->rec.snapshots.size() == 1 && !a->rec.snapshots_sent.empty(); }));
    CHECK(b->rec.snapshots[0].first == msg);
    CHECK(read_file(b->rec.snapshots[0].second) == data);
    CHECK(a->rec.snapshots_sent == std::vector<std::pair<NodeId, bool>>{{2, true}});
    CHECK(receiver_dir.files_with_extension(".part").empty());
    REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 3; }));
    CHECK(in_order(b->rec.messages, 3));
}

TEST_CASE("a new snapshot to the same peer aborts the previous one", "[transport][tcp][snapshot]") {
    asio::io_context io;
    TempDir sender_dir, receiver_dir;
    TestOptions oa = options_for(1, sender_dir.path());
    auto [a, b] = start_pair(io, oa, options_for(2, receiver_dir.path()));

    const std::string old_data = random_bytes(oa.snapshot_chunk_bytes * 3, 1);
    const std::string new_data = random_bytes(oa.snapshot_chunk_bytes * 2 + 5, 2);
    write_file(sender_dir.path() + "/old.bin", old_data);
    write_file(sender_dir.path() + "/new.bin", new_data);
    a->transport->send_snapshot(snapshot_message(1, 2), sender_dir.path() + "/old.bin");
    a->transport->send_snapshot(snapshot_message(1, 2), sender_dir.path() + "/new.bin");

    REQUIRE(run_until(io, [&] { return a->rec.snapshots_sent.size() == 2; }));
    CHECK(a->rec.snapshots_sent == std::vector<std::pair<NodeId, bool>>{{2, false}, {2, true}});
    REQUIRE(run_until(io, [&] { return b->rec.snapshots.size() == 1; }));
    CHECK(read_file(b->rec.snapshots[0].second) == new_data);
    CHECK(receiver_dir.files_with_extension(".part").empty());
}

TEST_CASE("snapshot size limits: exactly the limit is sent, one byte more is refused",
          "[transport][tcp][snapshot][limits]") {
    asio::io_context io;
    TempDir sender_dir, receiver_dir;
    TestOptions oa = options_for(1, sender_dir.path());
    oa.snapshot_bytes_max = 100 * 1024;
    TestOptions ob = options_for(2, receiver_dir.path());
    ob.snapshot_bytes_max = 100 * 1024;
    auto [a, b] = start_pair(io, oa, ob);

    write_file(sender_dir.path() + "/at.bin", random_bytes(oa.snapshot_bytes_max, 3));
    write_file(sender_dir.path() + "/over.bin", random_bytes(oa.snapshot_bytes_max + 1, 4));
    a->transport->send_snapshot(snapshot_message(1, 2), sender_dir.path() + "/at.bin");
    REQUIRE(run_until(
        io, [&] { return !a->rec.snapshots_sent.empty() && b->rec.snapshots.size() == 1; }));
    CHECK(a->rec.snapshots_sent.back() == std::pair<NodeId, bool>{2, true});

    a->transport->send_snapshot(snapshot_message(1, 2), sender_dir.path() + "/over.bin");
    REQUIRE(run_until(io, [&] { return a->rec.snapshots_sent.size() == 2; }));
    CHECK(a->rec.snapshots_sent.back() == std::pair<NodeId, bool>{2, false});

    SECTION("the receiver enforces its own limit") {
        TestOptions big = options_for(3, sender_dir.path());
        big.snapshot_bytes_max = oa.snapshot_bytes_max + 1;
        auto c = start_node(io, big);
        c->transport->set_peer(2, b->address());
        c->transport->send_snapshot(snapshot_message(3, 2), sender_dir.path() + "/over.bin");
        // "Sent" only means handed to the network; the refusal shows as the
        // receiver closing the connection, which the sender reports.
        REQUIRE(run_until(io, [&] {
            return !c->rec.unreachable.empty() && b->rec.logged("exceeds snapshot_bytes_max");
        }));
        REQUIRE(run_until(io, [&] { return !c->rec.snapshots_sent.empty(); }));
        CHECK(b->rec.snapshots.size() == 1);
        CHECK(receiver_dir.files_with_extension(".part").empty());
        // The stream is refused, not the node: counted, and the sender's
        // next messages arrive on a new connection.
        CHECK(b->rec.rejected(Rejection::snapshot) == 1);
        c->transport->send(numbered_heartbeats(3, 2, 1));
        REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 1; }));
    }
}

TEST_CASE("snapshot chunks out of order are refused and leave no partial file",
          "[transport][tcp][snapshot]") {
    asio::io_context io;
    TempDir dir;
    auto b = start_node(io, options_for(2, dir.path()));
    auto chunk = [](std::uint64_t id, std::uint64_t offset, std::size_t bytes) {
        return *encode_snapshot_chunk(
            transport::SnapshotChunk{id, offset, 100, std::string(bytes, 'c'), std::nullopt},
            CodecLimits{});
    };
    SECTION("a stream that does not start at 0") {
        RawClient client(io, b->tcp->bound_port());
        client.send(hello_frame(1) + chunk(1, 10, 10));
        CHECK(client.wait_closed(io));
        CHECK(b->rec.logged("starts at offset 10, not 0"));
    }
    SECTION("a gap in the stream") {
        RawClient client(io, b->tcp->bound_port());
        client.send(hello_frame(1) + chunk(1, 0, 10) + chunk(1, 20, 10));
        CHECK(client.wait_closed(io));
        CHECK(b->rec.logged("expected offset 10 of 100"));
    }
    SECTION("the sender goes away mid-stream") {
        RawClient client(io, b->tcp->bound_port());
        client.send(hello_frame(1) + chunk(1, 0, 10));
        REQUIRE(run_until(io, [&] { return dir.files_with_extension(".part").size() == 1; }));
        client.socket.close();
        REQUIRE(run_until(io, [&] { return b->rec.logged("dropped with its connection"); }));
    }
    SECTION("a new stream from the same sender replaces the partial one") {
        RawClient client(io, b->tcp->bound_port());
        client.send(hello_frame(1) + chunk(1, 0, 10));
        REQUIRE(run_until(io, [&] { return dir.files_with_extension(".part").size() == 1; }));
        client.send(chunk(2, 0, 10));
        REQUIRE(run_until(io, [&] { return b->rec.logged("aborts its partial one"); }));
        CHECK(dir.files_with_extension(".part").size() == 1);
    }
    CHECK(b->rec.snapshots.empty());
    if (!b->rec.logged("aborts its partial one")) CHECK(dir.files_with_extension(".part").empty());
}

TEST_CASE("removing a peer aborts its snapshot stream", "[transport][tcp][snapshot]") {
    asio::io_context io;
    TempDir dir;
    auto [a, b] = start_pair(io, options_for(1, dir.path()), options_for(2, dir.path()));
    write_file(dir.path() + "/s.bin", random_bytes(1000, 9));
    a->transport->send_snapshot(snapshot_message(1, 2), dir.path() + "/s.bin");
    a->transport->remove_peer(2);
    REQUIRE(run_until(io, [&] { return !a->rec.snapshots_sent.empty(); }));
    CHECK(a->rec.snapshots_sent == std::vector<std::pair<NodeId, bool>>{{2, false}});
}
