// MessageFrameJoiner: messages frames of one group joined into the frame
// encode_messages makes of all their messages, within its limits; anything
// else declined.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "sample_messages.hpp"
#include "transport/codec.hpp"
#include "transport/frame_joiner.hpp"

using namespace keel;
using namespace keel::transport;
using namespace keel::transport::testing;

namespace {

std::vector<raft::Message> some_messages(std::size_t n) {
    std::vector<raft::Message> out;
    for (std::size_t i = 0; i < n; ++i) {
        raft::Message m = sample_message(i % 2 ? raft::MessageType::append
                                               : raft::MessageType::heartbeat_response);
        m.context = i;
        out.push_back(m);
    }
    return out;
}

std::string frame_of(const std::vector<raft::Message>& messages, std::uint64_t group) {
    return *encode_messages(messages, {}, group);
}

}  // namespace

TEST_CASE("joined frames are the frame of all their messages, in order", "[transport][joiner]") {
    const std::vector<raft::Message> all = some_messages(6);
    const std::vector<raft::Message> first(all.begin(), all.begin() + 1);
    const std::vector<raft::Message> middle(all.begin() + 1, all.begin() + 4);
    const std::vector<raft::Message> last(all.begin() + 4, all.end());
    const std::vector<std::string> parts{frame_of(first, 9), frame_of(middle, 9),
                                         frame_of(last, 9)};
    MessageFrameJoiner joiner(4096, 1 << 20);
    for (const std::string& part : parts) REQUIRE(joiner.add(part));
    CHECK(joiner.frames() == 3);
    const std::string joined = joiner.take();
    CHECK(joined == frame_of(all, 9));
    CHECK(joiner.frames() == 0);
    Result<Frame> decoded = decode_frame(joined, {});
    REQUIRE(decoded.ok());
    CHECK(std::get<MessageBatch>(*decoded).messages == all);
    // One frame alone comes back unchanged.
    REQUIRE(joiner.add(parts[1]));
    CHECK(joiner.take() == parts[1]);
}

TEST_CASE("the joiner declines other groups, other frames and broken ones", "[transport][joiner]") {
    const std::string one = frame_of(some_messages(1), 1);
    MessageFrameJoiner joiner(4096, 1 << 20);
    REQUIRE(joiner.add(one));
    CHECK_FALSE(joiner.add(frame_of(some_messages(1), 2)));  // another group
    CHECK_FALSE(joiner.add(one + one));                      // two frames in one buffer
    CHECK_FALSE(joiner.add(one.substr(0, one.size() - 1)));  // a cut frame
    CHECK_FALSE(joiner.add(encode_hello(Hello{*ClusterId::random(), 1, ""})));
    SnapshotChunk chunk{1, 0, 8, "data", std::nullopt, 1};
    CHECK_FALSE(joiner.add(*encode_snapshot_chunk(chunk, {})));
    std::string old_version = one;
    old_version[kFrameLengthBytes] = 3;
    CHECK_FALSE(joiner.add(old_version));
    CHECK_FALSE(joiner.add(""));
    CHECK(joiner.frames() == 1);
}

TEST_CASE("joined frames: the message and byte limits are reached, never passed",
          "[transport][joiner][limits]") {
    const std::string one = frame_of(some_messages(1), 0);
    const std::size_t body = one.size() - kMessagesFrameFixedBytes;
    SECTION("messages") {
        MessageFrameJoiner joiner(3, 1 << 20);
        CHECK(joiner.add(one));
        CHECK(joiner.add(one));
        CHECK(joiner.add(one));
        CHECK_FALSE(joiner.add(one));
        CHECK(std::get<MessageBatch>(*decode_frame(joiner.take(), {})).messages.size() == 3);
    }
    SECTION("bytes") {
        MessageFrameJoiner joiner(4096, kMessagesFrameFixedBytes + 2 * body);
        CHECK(joiner.add(one));
        CHECK(joiner.add(one));
        CHECK_FALSE(joiner.add(one));
        CHECK(joiner.take().size() == kMessagesFrameFixedBytes + 2 * body);
    }
}
