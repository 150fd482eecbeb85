// Round trips, precise errors and every named limit of the wire codec.
#include <catch2/catch.hpp>

#include <limits>
#include <string>
#include <vector>

#include "sample_messages.hpp"
#include "transport/codec.hpp"

using namespace keel;
using namespace keel::transport;
using keel::transport::testing::sample_message;
using keel::transport::testing::sample_messages_of_every_type;

namespace {

MessageBatch decode_batch(const std::string& frame, const CodecLimits& limits = {}) {
    Result<Frame> decoded = decode_frame(frame, limits);
    INFO(decoded.status().to_string());
    REQUIRE(decoded.ok());
    REQUIRE(std::holds_alternative<MessageBatch>(*decoded));
    return std::get<MessageBatch>(*decoded);
}

std::string encode_ok(const std::vector<raft::Message>& batch, const CodecLimits& limits = {}) {
    Result<std::string> frame = encode_messages(batch, limits);
    INFO(frame.status().to_string());
    REQUIRE(frame.ok());
    return *frame;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// A message whose only variable parts are `entries` empty-data entries.
raft::Message with_entries(std::size_t n, std::size_t data_bytes = 0) {
    raft::Message m;
    m.from = 1;
    m.to = 2;
    for (std::size_t i = 0; i < n; ++i)
        m.entries.push_back(
            raft::Entry{1, i + 1, raft::EntryType::normal, std::string(data_bytes, 'x')});
    return m;
}

}  // namespace

TEST_CASE("every message type round-trips with every field set", "[transport][codec]") {
    for (const auto& m : sample_messages_of_every_type()) {
        INFO("type " << int(m.type));
        std::string frame = encode_ok({m});
        CHECK(frame.size() == kMessagesFrameFixedBytes + encoded_message_bytes(m));
        MessageBatch batch = decode_batch(frame);
        REQUIRE(batch.messages.size() == 1);
        CHECK(batch.messages[0] == m);
    }
}

TEST_CASE("the quiesce flag of a heartbeat round-trips, set and clear", "[transport][codec]") {
    raft::Message quiet;
    quiet.type = raft::MessageType::heartbeat;
    quiet.from = 1;
    quiet.to = 2;
    quiet.term = 3;
    quiet.log_index = 9;  // the leader's last entry, which the follower must hold
    quiet.log_term = 3;
    quiet.commit = 9;
    quiet.context = 4;
    quiet.quiesce = true;
    raft::Message plain = quiet;
    plain.quiesce = false;
    const MessageBatch batch = decode_batch(encode_ok({quiet, plain}));
    REQUIRE(batch.messages.size() == 2);
    CHECK(batch.messages[0].quiesce);
    CHECK(batch.messages[0] == quiet);
    CHECK_FALSE(batch.messages[1].quiesce);
    CHECK(batch.messages[1] == plain);
}

TEST_CASE("a batch of many messages round-trips in order", "[transport][codec]") {
    auto messages = sample_messages_of_every_type();
    raft::Message plain;  // all defaults, no entries, no snapshot
    messages.push_back(plain);
    CHECK(decode_batch(encode_ok(messages)).messages == messages);
}

TEST_CASE("hello and snapshot chunks round-trip", "[transport][codec]") {
    Hello hello{*ClusterId::parse_hex("00112233445566778899aabbccddeeff"), 7, "10.0.0.7:7080"};
    std::string frame = encode_hello(hello);
    CHECK(frame.size() == kHelloFrameBytesMin + hello.address.size());
    // The id travels as its 16 bytes, in order, after the version and kind.
    CHECK(frame.substr(6, 16) == std::string("\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb"
                                             "\xcc\xdd\xee\xff",
                                             16));
    Result<Frame> h = decode_frame(frame, {});
    REQUIRE(h.ok());
    CHECK(std::get<Hello>(*h) == hello);

    SnapshotChunk middle{5, 100, 1000, std::string(300, 'z'), std::nullopt};
    SnapshotChunk last{5, 700, 1000, std::string(300, 'q'),
                       sample_message(raft::MessageType::snapshot)};
    SnapshotChunk empty_snapshot{6, 0, 0, "", sample_message(raft::MessageType::snapshot)};
    for (const auto& chunk : {middle, last, empty_snapshot}) {
        Result<std::string> encoded = encode_snapshot_chunk(chunk, {});
        REQUIRE(encoded.ok());
        Result<Frame> decoded = decode_frame(*encoded, {});
        INFO(decoded.status().to_string());
        REQUIRE(decoded.ok());
        CHECK(std::get<SnapshotChunk>(*decoded) == chunk);
    }
}

TEST_CASE("the encoder refuses chunks whose message does not match their position",
          "[transport][codec]") {
    SnapshotChunk final_without_message{1, 0, 10, std::string(10, 'a'), std::nullopt};
    CHECK(encode_snapshot_chunk(final_without_message, {}).status().code() ==
          ErrorCode::invalid_argument);
    SnapshotChunk middle_with_message{1, 0, 20, std::string(10, 'a'),
                                      sample_message(raft::MessageType::snapshot)};
    CHECK_FALSE(encode_snapshot_chunk(middle_with_message, {}).ok());
    SnapshotChunk past_the_end{1, 15, 20, std::string(10, 'a'), std::nullopt};
    CHECK_FALSE(encode_snapshot_chunk(past_the_end, {}).ok());
}

TEST_CASE("a hello without a cluster id or from node 0 is refused", "[transport][codec]") {
    Hello no_cluster{ClusterId{}, 7, ""};
    CHECK(decode_frame(encode_hello(no_cluster), {}).status().message() ==
          "hello without a cluster id");
    Hello no_node{*ClusterId::parse_hex("0123456789abcdef0123456789abcdef"), 0, ""};
    CHECK(decode_frame(encode_hello(no_node), {}).status().message() == "hello from node id 0");
}

TEST_CASE("a hello's address: empty to kHelloAddressBytesMax of printable ASCII",
          "[transport][codec]") {
    const ClusterId cluster = *ClusterId::parse_hex("0123456789abcdef0123456789abcdef");
    for (const std::string& address :
         {std::string(), std::string("[::1]:7080"), std::string(kHelloAddressBytesMax, 'h')}) {
        Hello hello{cluster, 3, address};
        const std::string frame = encode_hello(hello);
        CHECK(frame.size() <= kHelloFrameBytes);
        Result<Frame> decoded = decode_frame(frame, {});
        REQUIRE(decoded.ok());
        CHECK(std::get<Hello>(*decoded) == hello);
    }
    CHECK(encode_hello(Hello{cluster, 3, std::string(kHelloAddressBytesMax, 'h')}).size() ==
          kHelloFrameBytes);
    CHECK_FALSE(valid_hello_address(std::string(kHelloAddressBytesMax + 1, 'h')));
    CHECK_FALSE(valid_hello_address("host name:1"));
    CHECK_FALSE(valid_hello_address(std::string("h\0:1", 4)));
    CHECK_FALSE(valid_hello_address("h\x7f:1"));
    // Hand-sealed: one byte over the limit, and a control byte, are refused.
    auto sealed = [&](const std::string& address) {
        std::string payload(reinterpret_cast<const char*>(cluster.bytes.data()), 16);
        payload += std::string("\x03\0\0\0\0\0\0\0", 8);
        const std::uint32_t n = static_cast<std::uint32_t>(address.size());
        payload += std::string{static_cast<char>(n & 0xff), static_cast<char>(n >> 8), '\0', '\0'};
        return seal_frame(static_cast<std::uint8_t>(FrameKind::hello), payload + address);
    };
    REQUIRE(decode_frame(sealed("a:1"), {}).ok());
    CHECK(decode_frame(sealed(std::string(kHelloAddressBytesMax + 1, 'h')), {}).status().code() ==
          ErrorCode::too_large);
    CHECK(decode_frame(sealed("a\n:1"), {}).status().message() ==
          "hello address is not printable ASCII");
}

TEST_CASE("cluster ids: 32 hex digits, never all zero, random ones differ", "[transport][codec]") {
    Result<ClusterId> id = ClusterId::parse_hex("0123456789ABCDEF0123456789abcdef");
    REQUIRE(id.ok());
    CHECK(id->hex() == "0123456789abcdef0123456789abcdef");
    CHECK_FALSE(ClusterId::parse_hex("0123456789abcdef0123456789abcde").ok());    // 31 digits
    CHECK_FALSE(ClusterId::parse_hex("0123456789abcdef0123456789abcdef0").ok());  // 33
    CHECK_FALSE(ClusterId::parse_hex("0123456789abcdef0123456789abcdeg").ok());
    CHECK_FALSE(ClusterId::parse_hex(std::string(32, '0')).ok());
    CHECK(ClusterId{}.unset());
    CHECK(ClusterId{}.hex().empty());
    Result<ClusterId> a = ClusterId::random(), b = ClusterId::random();
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK_FALSE(a->unset());
    CHECK(*a != *b);
    CHECK(ClusterId::parse_hex(a->hex()).value() == *a);
}

TEST_CASE("an empty batch is neither encoded nor accepted", "[transport][codec]") {
    CHECK(encode_messages({}, {}).status().code() == ErrorCode::invalid_argument);
    std::string payload(kFrameGroupBytes + 4, '\0');  // group 0, count 0
    Result<Frame> r = decode_frame(seal_frame(uint8_t(FrameKind::messages), payload), {});
    REQUIRE_FALSE(r.ok());
    CHECK(contains(r.status().message(), "empty message batch"));
}

TEST_CASE("decoding errors name what failed and where", "[transport][codec]") {
    std::string frame = encode_ok({sample_message(raft::MessageType::append)});

    SECTION("an unknown message type") {
        std::string payload = frame.substr(6, frame.size() - 10);
        payload[12] = 99;  // the first message's type, after the u64 group and u32 count
        Result<Frame> r = decode_frame(seal_frame(uint8_t(FrameKind::messages), payload), {});
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().message() == "unknown message type 99 at byte 18");
    }
    SECTION("an unsupported version") {
        std::string payload = frame.substr(6, frame.size() - 10);
        Result<Frame> r = decode_frame(seal_frame(uint8_t(FrameKind::messages), payload, 7), {});
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == ErrorCode::unsupported);
        CHECK(contains(r.status().message(), "frame version 7 unsupported"));
    }
    SECTION("an unknown frame kind") {
        Result<Frame> r = decode_frame(seal_frame(42, ""), {});
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().message() == "unknown frame kind 42");
    }
    SECTION("a flipped bit fails the crc") {
        frame[20] ^= 0x10;
        Result<Frame> r = decode_frame(frame, {});
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == ErrorCode::corruption);
        CHECK(contains(r.status().message(), "crc mismatch"));
    }
    SECTION("a payload cut inside an entry's data") {
        raft::Message one = sample_message(raft::MessageType::append);
        one.entries.resize(1);  // data "hello"
        std::string one_frame = encode_ok({one});
        std::string payload = one_frame.substr(6, one_frame.size() - 10);
        // Cut one byte into the entry's data: group(8) + count(4) + message
        // fixed part up to the entry count + entry header.
        std::size_t data_at = 8 + 4 + (1 + 8 * 7 + 1 + 8 * 3 + 1 + 1 + 4) + (8 + 8 + 1 + 4);
        payload.resize(data_at + 1);
        Result<Frame> r = decode_frame(seal_frame(uint8_t(FrameKind::messages), payload), {});
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().message() ==
              "truncated entry data at byte " + std::to_string(6 + data_at) + " (need 5, have 1)");
    }
    SECTION("bytes after the payload") {
        std::string payload = frame.substr(6, frame.size() - 10) + "xx";
        Result<Frame> r = decode_frame(seal_frame(uint8_t(FrameKind::messages), payload), {});
        REQUIRE_FALSE(r.ok());
        CHECK(contains(r.status().message(), "2 trailing bytes"));
    }
    SECTION("a boolean that is neither 0 nor 1") {
        std::string payload = frame.substr(6, frame.size() - 10);
        payload[8 + 4 + 1 + 8 * 7] = 2;  // reject flag
        Result<Frame> r = decode_frame(seal_frame(uint8_t(FrameKind::messages), payload), {});
        REQUIRE_FALSE(r.ok());
        CHECK(contains(r.status().message(), "bad message reject flag 2"));
    }
    SECTION("a quiesce flag that is neither 0 nor 1") {
        std::string payload = frame.substr(6, frame.size() - 10);
        const std::size_t quiesce_at = 8 + 4 + 1 + 8 * 7 + 1 + 8 * 3 + 1;
        REQUIRE(payload[quiesce_at] == 1);  // sample_message sets it
        payload[quiesce_at] = 7;
        Result<Frame> r = decode_frame(seal_frame(uint8_t(FrameKind::messages), payload), {});
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().message() == "bad message quiesce flag 7 at byte " +
                                          std::to_string(6 + quiesce_at) + " (must be 0 or 1)");
    }
    SECTION("a whole frame with missing or extra bytes") {
        CHECK(contains(decode_frame(frame.substr(0, frame.size() - 1), {}).status().message(),
                       "truncated frame"));
        CHECK(contains(decode_frame(frame + "!", {}).status().message(), "after the end"));
        CHECK(contains(decode_frame("ab", {}).status().message(), "length prefix"));
    }
}

TEST_CASE("configuration members must be in increasing id order and never 0",
          "[transport][codec]") {
    raft::Message m;
    m.type = raft::MessageType::snapshot;
    m.snapshot = raft::SnapshotMeta{};
    m.snapshot->config.members[1] = {};
    m.snapshot->config.members[2] = {};
    std::string frame = encode_ok({m});
    std::string payload = frame.substr(6, frame.size() - 10);
    // Members start after group(8) + count(4) + message fixed part without the snapshot
    // flag + snapshot flag(1) + index/term/count (20).
    std::size_t first = 8 + 4 + (1 + 8 * 7 + 1 + 8 * 3 + 1 + 1 + 4) + 1 + 20;
    std::size_t second = first + 8 + 1 + 4;
    SECTION("a duplicate id") {
        payload[second] = 1;
        Result<Frame> r = decode_frame(seal_frame(uint8_t(FrameKind::messages), payload), {});
        CHECK(contains(r.status().message(), "member id 1 at byte"));
    }
    SECTION("id 0") {
        payload[first] = 0;
        Result<Frame> r = decode_frame(seal_frame(uint8_t(FrameKind::messages), payload), {});
        CHECK(contains(r.status().message(), "member id 0 at byte"));
    }
    raft::Message zero;
    zero.snapshot = raft::SnapshotMeta{};
    zero.snapshot->config.members[0] = {};
    CHECK(encode_messages(std::vector{zero}, {}).status().code() == ErrorCode::invalid_argument);
}

// ---- every limit: exactly the limit is accepted, one more is refused by
// both the encoder and the decoder ----

TEST_CASE("messages per batch: the limit is accepted, one more is refused", "[transport][limits]") {
    CodecLimits limits;
    limits.messages_per_batch_max = 5;
    std::vector<raft::Message> batch(5, raft::Message{});
    CHECK(decode_batch(encode_ok(batch, limits), limits).messages.size() == 5);

    batch.push_back(raft::Message{});
    CHECK(encode_messages(batch, limits).status().code() == ErrorCode::too_large);
    Result<Frame> r = decode_frame(encode_ok(batch), limits);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == ErrorCode::too_large);
    CHECK(contains(r.status().message(), "message count 6"));
}

TEST_CASE("entries per message: the limit is accepted, one more is refused",
          "[transport][limits]") {
    CodecLimits limits;
    limits.entries_per_message_max = 3;
    CHECK(decode_batch(encode_ok({with_entries(3)}, limits), limits).messages[0].entries.size() ==
          3);

    CHECK(encode_messages(std::vector{with_entries(4)}, limits).status().code() ==
          ErrorCode::too_large);
    Result<Frame> r = decode_frame(encode_ok({with_entries(4)}), limits);
    CHECK(r.status().code() == ErrorCode::too_large);
    CHECK(contains(r.status().message(), "entry count 4"));
}

TEST_CASE("entry bytes: the limit is accepted, one more is refused", "[transport][limits]") {
    CodecLimits limits;
    limits.entry_bytes_max = 100;
    CHECK(decode_batch(encode_ok({with_entries(1, 100)}, limits), limits)
              .messages[0]
              .entries[0]
              .data.size() == 100);

    CHECK(encode_messages(std::vector{with_entries(1, 101)}, limits).status().code() ==
          ErrorCode::too_large);
    Result<Frame> r = decode_frame(encode_ok({with_entries(1, 101)}), limits);
    CHECK(r.status().code() == ErrorCode::too_large);
    CHECK(contains(r.status().message(), "entry data of 101 bytes"));
}

TEST_CASE("members in a snapshot configuration: the limit is accepted, one more is refused",
          "[transport][limits]") {
    CodecLimits limits;
    limits.members_max = 4;
    raft::Message m;
    m.snapshot = raft::SnapshotMeta{};
    for (raft::NodeId id = 1; id <= 4; ++id) m.snapshot->config.members[id] = {};
    CHECK(decode_batch(encode_ok({m}, limits), limits).messages[0] == m);

    m.snapshot->config.members[5] = {};
    CHECK(encode_messages(std::vector{m}, limits).status().code() == ErrorCode::too_large);
    CHECK(decode_frame(encode_ok({m}), limits).status().code() == ErrorCode::too_large);
}

TEST_CASE("member context bytes: the limit is accepted, one more is refused",
          "[transport][limits]") {
    CodecLimits limits;
    limits.context_bytes_max = 16;
    raft::Message m;
    m.snapshot = raft::SnapshotMeta{};
    m.snapshot->config.members[1].context = std::string(16, 'c');
    CHECK(decode_batch(encode_ok({m}, limits), limits).messages[0] == m);

    m.snapshot->config.members[1].context = std::string(17, 'c');
    CHECK(encode_messages(std::vector{m}, limits).status().code() == ErrorCode::too_large);
    CHECK(decode_frame(encode_ok({m}), limits).status().code() == ErrorCode::too_large);
}

TEST_CASE("snapshot chunk bytes: the limit is accepted, one more is refused",
          "[transport][limits]") {
    CodecLimits limits;
    limits.chunk_bytes_max = 64;
    SnapshotChunk at{1, 0, 1000, std::string(64, 'd'), std::nullopt};
    Result<std::string> ok = encode_snapshot_chunk(at, limits);
    REQUIRE(ok.ok());
    CHECK(decode_frame(*ok, limits).ok());

    SnapshotChunk over{1, 0, 1000, std::string(65, 'd'), std::nullopt};
    CHECK(encode_snapshot_chunk(over, limits).status().code() == ErrorCode::too_large);
    Result<std::string> big = encode_snapshot_chunk(over, {});
    REQUIRE(big.ok());
    CHECK(decode_frame(*big, limits).status().code() == ErrorCode::too_large);
}

TEST_CASE("frame bytes: the limit is accepted, one more is refused", "[transport][limits]") {
    std::vector<raft::Message> batch{with_entries(1, 1000)};
    std::string frame = encode_ok(batch);
    CodecLimits exact;
    exact.frame_bytes_max = frame.size();
    CHECK(encode_messages(batch, exact).ok());
    CHECK(decode_frame(frame, exact).ok());

    CodecLimits tight;
    tight.frame_bytes_max = frame.size() - 1;
    CHECK(encode_messages(batch, tight).status().code() == ErrorCode::too_large);
    CHECK(decode_frame(frame, tight).status().code() == ErrorCode::too_large);
    Result<std::uint32_t> length =
        decode_frame_length(std::string_view(frame).substr(0, 4), tight.frame_bytes_max);
    CHECK(length.status().code() == ErrorCode::too_large);
    CHECK(decode_frame_length(std::string_view(frame).substr(0, 4), exact.frame_bytes_max).ok());
}

TEST_CASE("a length prefix shorter than any frame is refused", "[transport][limits]") {
    std::string prefix("\x05\0\0\0", 4);
    CHECK(decode_frame_length(prefix, 1000).status().code() == ErrorCode::corruption);
    std::string minimal("\x06\0\0\0", 4);
    CHECK(decode_frame_length(minimal, 1000).ok());
    std::string huge("\xff\xff\xff\xff", 4);
    CHECK(decode_frame_length(huge, CodecLimits{}.frame_bytes_max).status().code() ==
          ErrorCode::too_large);
}

TEST_CASE("the default limits let one maximum-size entry through in a frame",
          "[transport][limits]") {
    CodecLimits limits;
    raft::Message m = with_entries(1);
    // Only the size arithmetic: encoding 64 MiB is needless work for a unit test.
    std::size_t frame =
        kMessagesFrameFixedBytes + encoded_message_bytes(m) + limits.entry_bytes_max;
    CHECK(frame <= limits.frame_bytes_max);
}

TEST_CASE("crc32c matches the standard check value", "[transport][codec]") {
    CHECK(crc32c("123456789") == 0xE3069283u);
}

TEST_CASE("the group id: any value round-trips and routes; a frame cut inside it is refused",
          "[transport][codec][groups]") {
    const std::vector<raft::Message> one{sample_message(raft::MessageType::heartbeat)};
    for (std::uint64_t group : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{7},
                                std::numeric_limits<std::uint64_t>::max()}) {
        INFO("group " << group);
        const std::string messages = *encode_messages(one, {}, group);
        Result<Frame> decoded = decode_frame(messages, {});
        REQUIRE(decoded.ok());
        CHECK(std::get<MessageBatch>(*decoded).group == group);
        Result<FrameRoute> route = frame_route(messages);
        REQUIRE(route.ok());
        CHECK(route->kind == FrameKind::messages);
        CHECK(route->group == group);

        SnapshotChunk chunk{2, 0, 8, std::string(4, 'c'), std::nullopt, group};
        const std::string chunk_frame = *encode_snapshot_chunk(chunk, {});
        decoded = decode_frame(chunk_frame, {});
        REQUIRE(decoded.ok());
        CHECK(std::get<SnapshotChunk>(*decoded) == chunk);
        route = frame_route(chunk_frame);
        REQUIRE(route.ok());
        CHECK(route->kind == FrameKind::snapshot_chunk);
        CHECK(route->group == group);
    }
    // A payload that ends inside the group id, behind a valid CRC.
    for (auto kind : {FrameKind::messages, FrameKind::snapshot_chunk}) {
        for (std::size_t n = 0; n < kFrameGroupBytes; ++n) {
            INFO("kind " << int(kind) << ", payload of " << n << " bytes");
            const std::string cut =
                seal_frame(static_cast<std::uint8_t>(kind), std::string(n, 'g'));
            Result<Frame> decoded = decode_frame(cut, {});
            REQUIRE_FALSE(decoded.ok());
            CHECK_THAT(decoded.status().message(), Catch::Contains("truncated frame group id"));
            Result<FrameRoute> route = frame_route(cut);
            REQUIRE_FALSE(route.ok());
            CHECK_THAT(route.status().message(), Catch::Contains("truncated frame group id"));
        }
    }
    // Frames that carry no group, or in another version.
    CHECK_FALSE(frame_route(encode_hello(Hello{*ClusterId::random(), 1, ""})).ok());
    CHECK_FALSE(frame_route(seal_frame(9, std::string(20, 'x'))).ok());
    CHECK(frame_route(seal_frame(2, std::string(20, 'x'), 3)).status().code() ==
          ErrorCode::unsupported);
    CHECK_FALSE(frame_route("").ok());
}
