// Several Raft groups over one TCP connection: every frame reaches the
// receiver's sink under the group its sender gave (the group travels in the
// frame, wire version 4), a snapshot stream's loss is reported to its group,
// and frames that cannot say their group, or say another one, are refused.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tcp_support.hpp"

using namespace keel;
using namespace keel::transport;
using namespace keel::transport::testing;

namespace {

// A sink that decodes what it is given and keeps it with its group.
struct GroupSink : TransportSink {
    std::vector<std::pair<GroupId, MessageBatch>> batches;
    std::vector<std::pair<GroupId, transport::SnapshotChunk>> chunks;
    std::vector<std::pair<GroupId, NodeId>> unreachable;
    std::vector<std::pair<GroupId, NodeId>> disconnected;

    Status on_messages(GroupId group, NodeId, std::string_view bytes) override {
        Result<Frame> frame = decode_frame(bytes, {});
        REQUIRE(frame.ok());
        batches.emplace_back(group, std::get<MessageBatch>(*frame));
        return Status();
    }
    Status on_snapshot_chunk(GroupId group, NodeId, std::string_view bytes) override {
        Result<Frame> frame = decode_frame(bytes, {});
        REQUIRE(frame.ok());
        chunks.emplace_back(group, std::get<transport::SnapshotChunk>(*frame));
        return Status();
    }
    void on_unreachable(GroupId group, NodeId to) override { unreachable.emplace_back(group, to); }
    void on_disconnected(GroupId group, NodeId from) override {
        disconnected.emplace_back(group, from);
    }
};

// A one-chunk snapshot whose chunk is a prepared frame.
struct OneChunkSnapshot : OutgoingSnapshot {
    explicit OneChunkSnapshot(std::string frame) : frame_(std::move(frame)) {}
    std::uint64_t size_bytes() const override { return 4; }
    Result<keel::SnapshotChunk> next_chunk() override {
        return keel::SnapshotChunk{frame_, 0, true};
    }
    void done(bool delivered) override { delivered_ = delivered; }
    std::string frame_;
    std::optional<bool> delivered_;
};

std::string heartbeats_of_group(GroupId group, std::uint64_t context) {
    std::vector<raft::Message> one{heartbeat(1, 2, context)};
    return *encode_messages(one, {}, group);
}

struct RawPair {
    GroupSink sink_a, sink_b;
    std::shared_ptr<TcpTransport> a, b;
};

std::unique_ptr<RawPair> raw_pair(asio::io_context& io, Recorder& rec) {
    auto p = std::make_unique<RawPair>();
    TempDir unused;
    TestOptions oa = options_for(1, unused.path(), "");
    TestOptions ob = options_for(2, unused.path());
    p->a = std::make_shared<TcpTransport>(io, tcp_options(oa), rec.hooks());
    p->b = std::make_shared<TcpTransport>(io, tcp_options(ob), rec.hooks());
    REQUIRE(p->b->start(p->sink_b).ok());
    REQUIRE(p->a->start(p->sink_a).ok());
    p->a->set_peer(2, "127.0.0.1:" + std::to_string(p->b->bound_port()));
    return p;
}

}  // namespace

TEST_CASE("two groups' messages and a snapshot chunk cross one connection under their ids",
          "[transport][tcp][groups]") {
    asio::io_context io;
    Recorder rec;
    auto p = raw_pair(io, rec);
    const GroupId kFirst = 5, kSecond = 0x1234'5678'9abc'def0;
    p->a->send(kFirst, 2, heartbeats_of_group(kFirst, 1));
    p->a->send(kSecond, 2, heartbeats_of_group(kSecond, 2));
    p->a->send(kFirst, 2, heartbeats_of_group(kFirst, 3));
    transport::SnapshotChunk chunk{1, 0, 4, "snap", snapshot_message(1, 2), kSecond};
    auto snapshot = std::make_shared<OneChunkSnapshot>(*encode_snapshot_chunk(chunk, {}));
    p->a->send_snapshot(kSecond, 2, snapshot);
    REQUIRE(run_until(io, [&] {
        return p->sink_b.batches.size() == 3 && p->sink_b.chunks.size() == 1 &&
               snapshot->delivered_.has_value();
    }));

    const std::vector<std::pair<GroupId, std::uint64_t>> want{
        {kFirst, 1}, {kSecond, 2}, {kFirst, 3}};
    for (std::size_t i = 0; i < want.size(); ++i) {
        INFO("batch " << i);
        CHECK(p->sink_b.batches[i].first == want[i].first);
        CHECK(p->sink_b.batches[i].second.group == want[i].first);
        CHECK(p->sink_b.batches[i].second.messages.at(0).context == want[i].second);
    }
    CHECK(p->sink_b.chunks[0].first == kSecond);
    CHECK(p->sink_b.chunks[0].second == chunk);
    CHECK(*snapshot->delivered_);
    // One connection carried both groups.
    CHECK(p->a->stats().connects == 1);
    CHECK(p->b->stats().inbound_accepted == 1);

    // The connection's loss is reported to the group whose snapshot came on it.
    p->a->stop();
    REQUIRE(run_until(io, [&] { return !p->sink_b.disconnected.empty(); }));
    CHECK(p->sink_b.disconnected == std::vector<std::pair<GroupId, NodeId>>{{kSecond, NodeId{1}}});
    p->b->stop();
}

TEST_CASE("a buffer whose frames name another group than its send is dropped and reported",
          "[transport][tcp][groups]") {
    asio::io_context io;
    Recorder rec;
    auto p = raw_pair(io, rec);
    p->a->send(5, 2, heartbeats_of_group(6, 1));
    p->a->send(5, 2, "not a frame");
    REQUIRE(run_until(io, [&] { return p->sink_a.unreachable.size() == 2; }));
    CHECK(p->sink_a.unreachable[0] == std::pair<GroupId, NodeId>{5, 2});
    CHECK(p->a->stats().buffers_dropped == 2);
    CHECK(rec.logged("that is not that group's frames"));
    p->a->stop();
    p->b->stop();
}

TEST_CASE("a buffer on kCoalescedGroup goes out frame by frame, each under its own group",
          "[transport][tcp][groups]") {
    asio::io_context io;
    Recorder rec;
    auto p = raw_pair(io, rec);
    // A Host's router coalesced three groups' frames for one peer.
    p->a->send(kCoalescedGroup, 2,
               heartbeats_of_group(5, 1) + heartbeats_of_group(6, 2) + heartbeats_of_group(5, 3));
    REQUIRE(run_until(io, [&] { return p->sink_b.batches.size() == 3; }));
    const std::vector<std::pair<GroupId, std::uint64_t>> want{{5, 1}, {6, 2}, {5, 3}};
    for (std::size_t i = 0; i < want.size(); ++i) {
        INFO("batch " << i);
        CHECK(p->sink_b.batches[i].first == want[i].first);
        CHECK(p->sink_b.batches[i].second.messages.at(0).context == want[i].second);
    }
    // A coalesced buffer holding a frame of the reserved group is ours and wrong: dropped.
    p->a->send(kCoalescedGroup, 2,
               heartbeats_of_group(5, 4) + heartbeats_of_group(kCoalescedGroup, 5));
    REQUIRE(run_until(io, [&] { return p->sink_a.unreachable.size() == 1; }));
    CHECK(p->sink_a.unreachable[0] == std::pair<GroupId, NodeId>{kCoalescedGroup, 2});
    CHECK(p->a->stats().buffers_dropped == 1);
    p->a->stop();
    p->b->stop();
}

TEST_CASE("a failed link is reported unreachable to every group that used it",
          "[transport][tcp][groups]") {
    asio::io_context io;
    Recorder rec;
    GroupSink sink;
    TempDir unused;
    TestOptions o = options_for(1, unused.path(), "");
    o.connect_timeout = std::chrono::milliseconds(200);
    auto a = std::make_shared<TcpTransport>(io, tcp_options(o), rec.hooks());
    REQUIRE(a->start(sink).ok());
    // Nobody listens there (port 1 is privileged and unused in tests).
    a->set_peer(2, "127.0.0.1:1");
    a->send(3, 2, heartbeats_of_group(3, 1));
    a->send(4, 2, heartbeats_of_group(4, 2));
    REQUIRE(run_until(io, [&] { return sink.unreachable.size() >= 2; }));
    std::vector<GroupId> groups;
    for (const auto& [group, to] : sink.unreachable) {
        CHECK(to == 2);
        groups.push_back(group);
    }
    CHECK(groups == std::vector<GroupId>{3, 4});
    a->stop();
}

TEST_CASE("channels of one group talk over TCP; a frame for another group is refused",
          "[transport][tcp][groups]") {
    asio::io_context io;
    TempDir dir;
    TestOptions oa = options_for(1, dir.path());
    TestOptions ob = options_for(2, dir.path());
    oa.group = 3;
    SECTION("the same group on both sides") {
        ob.group = 3;
        auto [a, b] = start_pair(io, oa, ob);
        a->transport->send(numbered_heartbeats(1, 2, 5));
        REQUIRE(run_until(io, [&] { return b->rec.messages.size() == 5; }));
        CHECK(in_order(b->rec.messages, 5));
    }
    SECTION("a receiver that serves another group") {
        auto [a, b] = start_pair(io, oa, ob);
        a->transport->send(numbered_heartbeats(1, 2, 5));
        REQUIRE(run_until(io, [&] { return b->rec.rejected(Rejection::misaddressed) == 1; }));
        CHECK(b->rec.logged("messages for group 3, this node serves group 0"));
        CHECK(b->rec.messages.empty());
    }
}

TEST_CASE("a frame too short to hold its group id closes the connection", "[transport][tcp]") {
    asio::io_context io;
    TempDir dir;
    auto [a, b] = start_pair(io, options_for(1, dir.path()), options_for(2, dir.path()));
    // A messages frame whose payload stops 1 byte into the group id, and one
    // without any payload: the transport cannot route either.
    for (std::size_t payload : {std::size_t{7}, std::size_t{0}}) {
        RawClient junk(io, b->tcp->bound_port());
        junk.send(hello_frame(1) + seal_frame(static_cast<std::uint8_t>(FrameKind::messages),
                                              std::string(payload, '\x07')));
        CHECK(junk.wait_closed(io));
    }
    CHECK(b->rec.logged("truncated frame group id"));
    CHECK(b->rec.rejected(Rejection::malformed) == 2);
    CHECK(b->rec.messages.empty());
}

TEST_CASE("frames queued behind a busy link leave joined, one frame per group run",
          "[transport][tcp][groups]") {
    asio::io_context io;
    Recorder rec;
    auto p = raw_pair(io, rec);
    // Queued before the connection exists: all wait, then go in one write.
    const std::vector<GroupId> groups{1, 1, 1, 2, 2, 1};
    for (std::size_t i = 0; i < groups.size(); ++i)
        p->a->send(groups[i], 2, heartbeats_of_group(groups[i], i));
    REQUIRE(run_until(io, [&] { return p->a->stats().buffers_sent == groups.size(); }));
    REQUIRE(run_until(io, [&] { return p->sink_b.batches.size() == 3; }));
    const TcpTransportStats sent = p->a->stats();
    CHECK(sent.writes == 1);
    CHECK(sent.buffers_joined == 3);  // 3 frames into 1, 2 into 1, 1 alone
    CHECK(p->b->stats().frames_received == 3);
    const std::vector<std::pair<GroupId, std::size_t>> want{{1, 3}, {2, 2}, {1, 1}};
    std::uint64_t context = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        INFO("frame " << i);
        CHECK(p->sink_b.batches[i].first == want[i].first);
        CHECK(p->sink_b.batches[i].second.group == want[i].first);
        REQUIRE(p->sink_b.batches[i].second.messages.size() == want[i].second);
        for (const raft::Message& m : p->sink_b.batches[i].second.messages)
            CHECK(m.context == context++);
    }
    p->a->stop();
    p->b->stop();
}

TEST_CASE("joined frames keep to joined_messages_max", "[transport][tcp][limits]") {
    asio::io_context io;
    Recorder rec;
    GroupSink sink_a, sink_b;
    TempDir unused;
    TestOptions oa = options_for(1, unused.path(), "");
    oa.joined_messages_max = 3;
    TestOptions ob = options_for(2, unused.path());
    auto a = std::make_shared<TcpTransport>(io, tcp_options(oa), rec.hooks());
    auto b = std::make_shared<TcpTransport>(io, tcp_options(ob), rec.hooks());
    REQUIRE(b->start(sink_b).ok());
    REQUIRE(a->start(sink_a).ok());
    a->set_peer(2, "127.0.0.1:" + std::to_string(b->bound_port()));
    for (std::uint64_t i = 0; i < 7; ++i) a->send(0, 2, heartbeats_of_group(0, i));
    REQUIRE(run_until(io, [&] { return sink_b.batches.size() == 3; }));
    CHECK(sink_b.batches[0].second.messages.size() == 3);
    CHECK(sink_b.batches[1].second.messages.size() == 3);
    CHECK(sink_b.batches[2].second.messages.size() == 1);
    CHECK(a->stats().buffers_joined == 4);
    a->stop();
    b->stop();
}
