// MessageChannel, keel's side of a keel::Transport, against a scripted
// transport: deliveries from other threads (or from inside a call into the
// transport) wait for the owner thread, within posted_bytes_max; send_now
// takes what the transport takes and leaves the rest in order, encoding
// only what is taken; a snapshot stream dropped unfinished is reported
// failed.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"
#include "transport/codec.hpp"
#include "transport/message_channel.hpp"

using namespace keel;
using namespace keel::transport;
using namespace keel::transport::testing;

namespace {

// Records what the channel hands it; send_now takes what `take_now` allows.
class ScriptedTransport final : public Transport {
public:
    Status start(TransportSink& s) override {
        sink = &s;
        return Status::ok_status();
    }
    void stop() override { sink = nullptr; }
    void set_peer(NodeId, const std::string&) override {}
    void remove_peer(NodeId) override {}
    void send(GroupId, NodeId to, std::string bytes) override {
        sent.emplace_back(to, std::move(bytes));
        if (on_send) on_send();
    }
    bool send_now(GroupId, NodeId to, const std::function<std::string()>& encode) override {
        if (!take_now(to)) return false;
        sent_now.emplace_back(to, encode());
        return true;
    }
    void send_snapshot(GroupId, NodeId to, std::shared_ptr<OutgoingSnapshot> s) override {
        snapshots.emplace_back(to, std::move(s));
    }

    TransportSink* sink = nullptr;
    std::function<bool(NodeId)> take_now = [](NodeId) { return false; };
    std::function<void()> on_send;
    std::vector<std::pair<NodeId, std::string>> sent;
    std::vector<std::pair<NodeId, std::string>> sent_now;
    std::vector<std::pair<NodeId, std::shared_ptr<OutgoingSnapshot>>> snapshots;
};

// An owner thread that is never the calling one: posted work waits in
// `posted` until the test runs it.
struct ManualExecutor {
    std::vector<std::function<void()>> posted;
    MessageChannel::Executor executor() {
        MessageChannel::Executor e;
        e.on_owner_thread = [] { return false; };
        e.post = [this](std::function<void()> f) { posted.push_back(std::move(f)); };
        return e;
    }
    void run() {
        auto work = std::move(posted);
        posted.clear();
        for (auto& f : work) f();
    }
};

MessageChannelOptions options(std::size_t posted_bytes_max = kPostedBytesMax) {
    MessageChannelOptions o;
    o.self = 1;
    o.posted_bytes_max = posted_bytes_max;
    return o;
}

std::string frame_of(std::vector<raft::Message> messages) {
    return *encode_messages(messages, CodecLimits{});
}

}  // namespace

TEST_CASE("deliveries from another thread wait for the owner thread, up to posted_bytes_max",
          "[transport][channel][limits]") {
    const std::string one = frame_of({heartbeat(2, 1, 0)});
    auto t = std::make_shared<ScriptedTransport>();
    ManualExecutor owner;
    Recorder rec;
    MessageChannel channel(t, options(3 * one.size()), rec.handler(), owner.executor());
    REQUIRE(channel.start().ok());

    // Exactly the limit is taken (and not delivered yet); one byte more is not.
    for (int i = 0; i < 3; ++i) CHECK(t->sink->on_messages(0, 2, one).ok());
    CHECK(rec.messages.empty());
    CHECK(t->sink->on_messages(0, 2, "x").code() == ErrorCode::busy);
    CHECK(rec.rejection_names() == std::vector<std::string>{"overloaded"});
    owner.run();
    CHECK(rec.messages.size() == 3);
    // Room again once the owner has taken them.
    CHECK(t->sink->on_messages(0, 2, one).ok());
    owner.run();
    CHECK(rec.messages.size() == 4);
    CHECK(rec.rejections.size() == 1);
}

TEST_CASE("a delivery from inside a call into the transport is handled after the call",
          "[transport][channel]") {
    auto t = std::make_shared<ScriptedTransport>();
    ManualExecutor owner;
    Recorder rec;
    MessageChannel::Executor e = owner.executor();
    e.on_owner_thread = [] { return true; };  // the caller is the owner thread
    MessageChannel channel(t, options(), rec.handler(), e);
    REQUIRE(channel.start().ok());
    bool delivered_inside = false;
    t->on_send = [&] {
        CHECK(t->sink->on_messages(0, 2, frame_of({heartbeat(2, 1, 7)})).ok());
        delivered_inside = !rec.messages.empty();
    };
    channel.send({heartbeat(1, 2, 0)});
    CHECK_FALSE(delivered_inside);
    owner.run();
    REQUIRE(rec.messages.size() == 1);
    CHECK(rec.messages[0].context == 7);
    // Delivered on the owner thread outside any call: at once.
    t->on_send = nullptr;
    CHECK(t->sink->on_messages(0, 2, frame_of({heartbeat(2, 1, 8)})).ok());
    CHECK(rec.messages.size() == 2);
}

TEST_CASE("send_now encodes only for peers the transport takes and leaves the rest in order",
          "[transport][channel][send_now]") {
    auto t = std::make_shared<ScriptedTransport>();
    Recorder rec;
    MessageChannel channel(t, options(), rec.handler());
    REQUIRE(channel.start().ok());
    t->take_now = [](NodeId to) { return to == 2; };
    std::vector<raft::Message> msgs = {heartbeat(1, 3, 0), heartbeat(1, 2, 1), heartbeat(1, 3, 2),
                                       heartbeat(1, 2, 3)};
    channel.send_now(msgs);
    REQUIRE(t->sent_now.size() == 1);
    CHECK(t->sent_now[0].first == 2);
    auto decoded = decode_frame(t->sent_now[0].second, CodecLimits{});
    REQUIRE(decoded.ok());
    const auto& batch = std::get<MessageBatch>(*decoded).messages;
    REQUIRE(batch.size() == 2);
    CHECK((batch[0].context == 1 && batch[1].context == 3));
    REQUIRE(msgs.size() == 2);
    CHECK((msgs[0].context == 0 && msgs[1].context == 2 && msgs[0].to == 3));

    t->take_now = [](NodeId) { return false; };
    channel.send_now(msgs);
    CHECK(msgs.size() == 2);  // nothing taken, nothing lost
    CHECK(t->sent_now.size() == 1);
}

TEST_CASE("a snapshot stream a transport drops unfinished is reported failed",
          "[transport][channel][snapshot]") {
    TempDir dir;
    write_file(dir.path() + "/s.snap", random_bytes(1000, 7));
    auto t = std::make_shared<ScriptedTransport>();
    Recorder rec;
    MessageChannelOptions o = options();
    o.snapshot_chunk_bytes = 400;
    MessageChannel channel(t, o, rec.handler());
    REQUIRE(channel.start().ok());
    channel.send_snapshot(snapshot_message(1, 2), dir.path() + "/s.snap");
    REQUIRE(t->snapshots.size() == 1);
    std::shared_ptr<OutgoingSnapshot> s = std::move(t->snapshots[0].second);
    t->snapshots.clear();
    CHECK(s->size_bytes() == 1000);
    auto first = s->next_chunk();
    REQUIRE(first.ok());
    CHECK((first->offset == 0 && !first->last));
    s.reset();  // dropped without done()
    CHECK(rec.snapshots_sent == std::vector<std::pair<NodeId, bool>>{{2, false}});
}
