// Many groups' frames to one peer in one buffer (runtime/coalesced_frames.hpp,
// the router's coalescing in group_router.hpp): the receiver's checks and
// bounds (at the limit and one past it, garbage), the sender's buffers
// (one group alone stays on its group, several share kCoalescedGroup, the
// byte and frame bounds start a new buffer, order kept), and two routers
// end to end: two groups' sends in one I/O pass leave as one transport
// buffer, which reaches both groups on the other side after one post.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/coalesced_frames.hpp"
#include "runtime/group_router.hpp"
#include "runtime/process_liveness.hpp"
#include "transport/codec.hpp"

using namespace keel;
using namespace keel::runtime;

namespace {

const std::size_t kFrameMax = transport::CodecLimits{}.frame_bytes_max;

// A messages frame of `group` holding one heartbeat from 1 to 2 (`context`
// tells frames apart).
std::string frame_of(GroupId group, std::uint64_t context = 0) {
    raft::Message m;
    m.type = raft::MessageType::heartbeat;
    m.from = 1;
    m.to = 2;
    m.term = 1;
    m.context = context;
    auto f = transport::encode_messages(std::span(&m, 1), transport::CodecLimits{}, group);
    REQUIRE(f.ok());
    return std::move(f.value());
}

std::uint64_t seed() {
    const char* s = std::getenv("KEEL_SEED");
    return s != nullptr ? std::strtoull(s, nullptr, 10) : std::random_device{}();
}

}  // namespace

TEST_CASE("a coalesced buffer splits into its frames, each with its group, in order") {
    const std::string a = frame_of(7, 1), b = frame_of(9, 2), c = frame_of(7, 3);
    const std::string all = a + b + c;
    auto frames = split_coalesced(all, kFrameMax);
    REQUIRE(frames.ok());
    REQUIRE(frames->size() == 3);
    CHECK((*frames)[0].group == 7);
    CHECK((*frames)[0].frame == a);
    CHECK((*frames)[1].group == 9);
    CHECK((*frames)[1].frame == b);
    CHECK((*frames)[2].group == 7);
    CHECK((*frames)[2].frame == c);
}

TEST_CASE("a coalesced buffer of kCoalescedFramesMax frames passes, one more is refused") {
    const std::string one = frame_of(3);
    std::string at_limit;
    for (std::size_t i = 0; i < kCoalescedFramesMax; ++i) at_limit += one;
    auto ok = split_coalesced(at_limit, kFrameMax);
    REQUIRE(ok.ok());
    CHECK(ok->size() == kCoalescedFramesMax);
    auto over = split_coalesced(at_limit + one, kFrameMax);
    REQUIRE_FALSE(over.ok());
    CHECK(over.status().code() == ErrorCode::too_large);
}

TEST_CASE("a coalesced buffer over kTransportBufferBytesMax is refused before it is read") {
    std::string big(kTransportBufferBytesMax + 1, '\0');
    auto r = split_coalesced(big, kFrameMax);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == ErrorCode::too_large);
}

TEST_CASE("coalesced garbage is refused whole: cut frames, other kinds, reserved groups") {
    const std::string good = frame_of(5);
    auto refused = [](std::string_view bytes) { return !split_coalesced(bytes, kFrameMax).ok(); };
    CHECK(refused(""));
    CHECK(refused(good.substr(0, 2)));                          // a cut length prefix
    CHECK(refused(good + good.substr(0, good.size() - 1)));     // a cut last frame
    CHECK(refused(std::string("\xff\xff\xff\xff", 4) + good));  // a length over the limit
    std::string other_version = good;
    other_version[transport::kFrameLengthBytes] = 4;
    CHECK(refused(good + other_version));
    transport::Hello hello;
    hello.cluster_id = transport::ClusterId::random().value();
    hello.from = 1;
    CHECK(refused(good + transport::encode_hello(hello)));  // a frame with no group
    transport::SnapshotChunk chunk;
    chunk.group = 5;
    chunk.total_bytes = 10;
    chunk.data = "x";
    auto chunk_frame = transport::encode_snapshot_chunk(chunk, transport::CodecLimits{});
    REQUIRE(chunk_frame.ok());
    CHECK(refused(good + chunk_frame.value()));  // snapshots stream on their own
    CHECK(refused(good + frame_of(kLivenessGroup)));
    CHECK(refused(good + frame_of(kCoalescedGroup)));
}

TEST_CASE("random bytes in a coalesced buffer never pass as something else") {
    const std::uint64_t s = seed();
    INFO("KEEL_SEED=" << s);
    std::mt19937_64 rng(s);
    const std::string good = frame_of(5) + frame_of(6);
    for (int round = 0; round < 2000; ++round) {
        std::string bytes = good;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < flips; ++i) bytes[rng() % bytes.size()] = static_cast<char>(rng());
        if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
        auto r = split_coalesced(bytes, kFrameMax);
        if (!r.ok()) continue;
        // What passes is whole frames covering every byte, of unreserved groups.
        std::size_t covered = 0;
        for (const CoalescedFrame& f : *r) {
            CHECK(f.group != kLivenessGroup);
            CHECK(f.group != kCoalescedGroup);
            covered += f.frame.size();
        }
        CHECK(covered == bytes.size());
    }
}

TEST_CASE("the outbox keeps one group's frames on that group and shares a buffer between groups") {
    CoalescingOutbox out;
    CHECK(out.add(1, 2, frame_of(1, 1)));  // the first: the caller arranges a take()
    CHECK_FALSE(out.add(1, 2, frame_of(1, 2)));
    CHECK(out.add(1, 3, frame_of(1, 3)) == false);
    CHECK(out.pending(2));
    CHECK_FALSE(out.pending(4));
    auto buffers = out.take();
    CHECK(out.empty());
    REQUIRE(buffers.size() == 2);
    CHECK(buffers[0].group == 1);
    CHECK(buffers[0].to == 2);
    CHECK(buffers[0].bytes == frame_of(1, 1) + frame_of(1, 2));
    CHECK(buffers[1].group == 1);
    CHECK(buffers[1].to == 3);

    out.add(1, 2, frame_of(1, 1));
    out.add(8, 2, frame_of(8, 2));
    out.add(1, 2, frame_of(1, 3));
    buffers = out.take();
    REQUIRE(buffers.size() == 1);
    CHECK(buffers[0].group == kCoalescedGroup);
    CHECK(buffers[0].bytes == frame_of(1, 1) + frame_of(8, 2) + frame_of(1, 3));
    auto frames = split_coalesced(buffers[0].bytes, kFrameMax);
    REQUIRE(frames.ok());
    CHECK(frames->size() == 3);
}

TEST_CASE("the outbox starts a new buffer at kCoalescedFramesMax frames and kCoalescedBytesMax") {
    CoalescingOutbox out;
    for (std::size_t i = 0; i <= kCoalescedFramesMax; ++i) out.add(i % 2, 2, frame_of(i % 2, i));
    auto buffers = out.take();
    REQUIRE(buffers.size() == 2);
    CHECK(buffers[0].group == kCoalescedGroup);
    CHECK(count_frames(buffers[0].bytes) == kCoalescedFramesMax);
    CHECK(split_coalesced(buffers[0].bytes, kFrameMax).ok());
    CHECK(count_frames(buffers[1].bytes) == 1);
    CHECK(buffers[1].group == kCoalescedFramesMax % 2);

    // Frames of 100 KiB: ten fill a buffer; the eleventh starts the next.
    raft::Message m;
    m.type = raft::MessageType::append;
    m.from = 1;
    m.to = 2;
    m.term = 1;
    m.entries.push_back(raft::Entry{1, 1, raft::EntryType::normal, std::string(100 * 1024, 'x')});
    std::size_t per_buffer = 0;
    for (GroupId g = 1; g <= 12; ++g) {
        auto f = transport::encode_messages(std::span(&m, 1), transport::CodecLimits{}, g);
        REQUIRE(f.ok());
        if (g == 1) per_buffer = kCoalescedBytesMax / f->size();
        out.add(g, 2, std::move(f.value()));
    }
    buffers = out.take();
    REQUIRE(buffers.size() == 2);
    CHECK(count_frames(buffers[0].bytes) == per_buffer);
    CHECK(buffers[0].bytes.size() <= kCoalescedBytesMax);

    // A frame larger than a buffer goes alone, on its group, in its place.
    m.entries[0].data = std::string(kCoalescedBytesMax, 'y');
    auto big = transport::encode_messages(std::span(&m, 1), transport::CodecLimits{}, 4);
    REQUIRE(big.ok());
    out.add(3, 2, frame_of(3));
    out.add(4, 2, big.value());
    out.add(5, 2, frame_of(5));
    buffers = out.take();
    REQUIRE(buffers.size() == 3);
    CHECK(buffers[0].group == 3);
    CHECK(buffers[1].group == 4);
    CHECK(buffers[1].bytes == big.value());
    CHECK(buffers[2].group == 5);
}

namespace {

// A transport that records what it is asked to send.
class RecordingTransport final : public Transport {
public:
    struct Sent {
        GroupId group;
        NodeId to;
        std::string bytes;
    };
    Status start(TransportSink&) override { return Status::ok_status(); }
    void stop() override {}
    void set_peer(NodeId, const std::string&) override {}
    void remove_peer(NodeId) override {}
    void send(GroupId group, NodeId to, std::string bytes) override {
        sent.push_back({group, to, std::move(bytes)});
    }
    bool send_now(GroupId, NodeId, const std::function<std::string()>& encode) override {
        sent.push_back({0, 0, encode()});
        return true;
    }
    void send_snapshot(GroupId, NodeId, std::shared_ptr<OutgoingSnapshot>) override {}
    std::vector<Sent> sent;
};

// A group's sink: what reached it.
class RecordingSink final : public TransportSink {
public:
    Status on_messages(GroupId group, NodeId from, std::string_view bytes) override {
        got.push_back({group, from, std::string(bytes)});
        return Status::ok_status();
    }
    Status on_snapshot_chunk(GroupId, NodeId, std::string_view) override {
        return Status::ok_status();
    }
    void on_unreachable(GroupId, NodeId) override {}
    void on_disconnected(GroupId, NodeId) override {}
    std::vector<RecordingTransport::Sent> got;
};

// A router whose "I/O thread" is the test: posted work waits in `posted`.
struct Side {
    explicit Side(bool coalescing) {
        router.set_io({[this] { return on_io; },
                       [this](std::function<void()> f) { posted.push_back(std::move(f)); }});
        router.set_coalescing(coalescing);
        REQUIRE(
            router
                .start(transport, [this](std::string_view reason,
                                         std::string_view) { rejections[std::string(reason)]++; })
                .ok());
    }
    ~Side() {
        for (auto& l : links) l->stop();
        router.stop();
    }
    Transport& open(GroupId group, RecordingSink& sink) {
        links.push_back(router.link(group));
        REQUIRE(links.back()->start(sink).ok());
        return *links.back();
    }
    void run_posted() {
        std::vector<std::function<void()>> now;
        now.swap(posted);
        bool was = on_io;
        on_io = true;
        for (auto& f : now) f();
        on_io = was;
    }
    std::shared_ptr<RecordingTransport> transport = std::make_shared<RecordingTransport>();
    GroupRouter router;
    bool on_io = false;
    std::vector<std::function<void()>> posted;
    std::vector<std::shared_ptr<Transport>> links;
    std::map<std::string, int> rejections;
};

}  // namespace

TEST_CASE("two groups' sends in one I/O pass leave as one buffer and reach both groups") {
    Side a(true), b(true);
    RecordingSink a1, a2, b1, b2;
    Transport& a_one = a.open(1, a1);
    Transport& a_two = a.open(2, a2);
    b.open(1, b1);
    b.open(2, b2);

    a.on_io = true;
    a_one.send(1, 2, frame_of(1, 11));
    a_two.send(2, 2, frame_of(2, 22));
    a.on_io = false;
    CHECK(a.transport->sent.empty());  // queued until the posted flush
    // A direct send to that peer would overtake them: declined.
    CHECK_FALSE(a_one.send_now(1, 2, [] { return frame_of(1, 33); }));
    CHECK(a_one.send_now(1, 3, [] { return frame_of(1, 44); }));  // nothing queued for 3
    a.transport->sent.clear();
    REQUIRE(a.posted.size() == 1);
    a.run_posted();
    REQUIRE(a.transport->sent.size() == 1);
    const RecordingTransport::Sent sent = a.transport->sent[0];
    CHECK(sent.group == kCoalescedGroup);
    CHECK(sent.to == 2);

    // Delivered on another thread: one post for both groups, nothing before.
    CHECK(b.router.on_messages(kCoalescedGroup, 1, sent.bytes).ok());
    CHECK(b1.got.empty());
    CHECK(b2.got.empty());
    REQUIRE(b.posted.size() == 1);
    b.run_posted();
    REQUIRE(b1.got.size() == 1);
    REQUIRE(b2.got.size() == 1);
    CHECK(b1.got[0].bytes == frame_of(1, 11));
    CHECK(b2.got[0].bytes == frame_of(2, 22));

    // Garbage on kCoalescedGroup: refused, counted, nothing delivered.
    Status s =
        b.router.on_messages(kCoalescedGroup, 1, sent.bytes.substr(0, sent.bytes.size() - 3));
    CHECK_FALSE(s.ok());
    CHECK(b.rejections["malformed"] == 1);
    CHECK(b.posted.empty());
    CHECK(b1.got.size() == 1);
}

TEST_CASE("without coalescing every group's send goes to the transport at once") {
    Side a(false);
    RecordingSink a1, a2;
    Transport& a_one = a.open(1, a1);
    Transport& a_two = a.open(2, a2);
    a_one.send(1, 2, frame_of(1));
    a_two.send(2, 2, frame_of(2));
    REQUIRE(a.transport->sent.size() == 2);
    CHECK(a.transport->sent[0].group == 1);
    CHECK(a.transport->sent[1].group == 2);
    CHECK(a.posted.empty());
}

TEST_CASE("no group may open on kCoalescedGroup") {
    Side a(true);
    RecordingSink sink;
    auto link = a.router.link(kCoalescedGroup);
    CHECK_FALSE(link->start(sink).ok());
}
