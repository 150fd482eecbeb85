// transport/codec.hpp — the wire format between keel members: frames that
// carry a batch of raft::Message, a snapshot chunk, or the connection's hello.
//
// Standard library only (no Asio): the codec is pure bytes in, bytes out, so
// it can be fuzzed and reused by any transport.  Every length read from the
// wire is checked against both a named limit and the bytes actually present
// before anything is allocated for it.
//
// Frame layout (all integers little-endian, fixed width):
//
//   u32 length            bytes after this field: 2 + payload + 4
//   u8  version           kWireVersion; any other value is refused
//   u8  kind              FrameKind
//   ..  payload           depends on kind (below)
//   u32 crc32c            CRC-32C (Castagnoli) of version, kind and payload
//
// Payloads:
//   hello (kind 1):          16 bytes cluster_id (never all zero), u64 from (never 0),
//                            u32 address_len, address (the sender's Raft address,
//                            "host:port", printable ASCII; empty if it listens nowhere)
//   messages (kind 2):       u64 group, u32 count, then `count` messages
//   snapshot_chunk (kind 3): u64 group, u64 snapshot_id, u64 offset, u64 total_bytes,
//                            u32 data_len, data, u8 last, [message if last == 1]
//
// `group` is the Raft group the frame is for (keel::GroupId, any value):
// one connection carries the frames of every group two processes share.
//
//   message:       u8 type, u64 from, u64 to, u64 term, u64 log_index, u64 log_term,
//                  u64 commit, u64 index, u8 reject, u64 hint_index, u64 hint_term,
//                  u64 context, u8 transfer, u8 quiesce, u32 entry_count, entries,
//                  u8 has_snapshot, [snapshot_meta if has_snapshot == 1]
//   entry:         u64 term, u64 index, u8 type, u32 data_len, data
//   snapshot_meta: u64 index, u64 term, u32 member_count, members in increasing id order
//   member:        u64 id (never 0), u8 voter, u32 context_len, context
//
// Booleans are exactly 0 or 1; enums must be known values.  Decoding never
// accepts trailing bytes.  See doc comments on CodecLimits for the bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "keel/status.hpp"
#include "raft/types.hpp"
#include "transport/cluster_id.hpp"

namespace keel::transport {

// 2: the hello carries the cluster's 128-bit random id (1 had a u64 constant).
// 3: the hello carries the sender's Raft address (a joiner answers a leader
//    it knows nothing else about).
// 4: messages and snapshot chunk frames carry their Raft group id.
// 5: a message carries the quiesce flag (raft::Message::quiesce), and the
//    process liveness ping travels on kLivenessGroup.
inline constexpr std::uint8_t kWireVersion = 5;

// Bytes of the u32 length prefix, and of the smallest possible frame body
// (version + kind + crc with an empty payload).
inline constexpr std::size_t kFrameLengthBytes = 4;
inline constexpr std::size_t kFrameBodyBytesMin = 1 + 1 + 4;
// The longest address a hello carries (runtime/member_context.hpp's
// kMaxAddressBytes).
inline constexpr std::size_t kHelloAddressBytesMax = 256;
// A hello frame is at most this long; before a connection has said hello,
// the receiver refuses any longer length prefix (no big buffer for
// strangers).  kHelloFrameBytesMin: one with an empty address.
inline constexpr std::size_t kHelloFrameBytesMin =
    kFrameLengthBytes + kFrameBodyBytesMin + ClusterId::kBytes + 8 + 4;
inline constexpr std::size_t kHelloFrameBytes = kHelloFrameBytesMin + kHelloAddressBytesMax;
// Bytes of the group id that starts the payload of a messages or snapshot
// chunk frame, and the shortest such frame that holds one.
inline constexpr std::size_t kFrameGroupBytes = 8;
inline constexpr std::size_t kGroupFrameBytesMin =
    kFrameLengthBytes + kFrameBodyBytesMin + kFrameGroupBytes;
// A messages frame is this plus its messages (encoded_message_bytes): the
// envelope, the group and the u32 message count.
inline constexpr std::size_t kMessagesFrameFixedBytes = kGroupFrameBytesMin + 4;

enum class FrameKind : std::uint8_t {
    hello = 1,
    messages = 2,
    snapshot_chunk = 3,
};

// The bounds both the encoder and the decoder enforce.  A peer configured
// with the same limits never sends what we would refuse.
struct CodecLimits {
    // Whole frame, length prefix included: a 64 MiB entry plus slack for its headers.
    std::size_t frame_bytes_max = 64 * 1024 * 1024 + 64 * 1024;
    std::size_t messages_per_batch_max = 4096;
    std::size_t entries_per_message_max = 64 * 1024;
    std::size_t entry_bytes_max = 64 * 1024 * 1024;  // data of one entry
    std::size_t members_max = 1024;                  // members in a snapshot's configuration
    std::size_t context_bytes_max = 64 * 1024;       // MemberInfo::context of one member
    std::size_t chunk_bytes_max = 16 * 1024 * 1024;  // data of one snapshot chunk
};

// The first frame on every connection: who is talking, in which cluster, and
// where it listens.  The address is what the sender says: a receiver that
// knows the sender from its configuration goes by that, not by this.
struct Hello {
    ClusterId cluster_id;
    raft::NodeId from = raft::kNoNode;
    std::string address;  // at most kHelloAddressBytesMax, printable ASCII

    friend bool operator==(const Hello&, const Hello&) = default;
};

struct MessageBatch {
    std::vector<raft::Message> messages;
    std::uint64_t group = 0;  // keel::GroupId; first on the wire

    friend bool operator==(const MessageBatch&, const MessageBatch&) = default;
};

// One piece of a snapshot stream.  Chunks of one snapshot share snapshot_id
// (chosen by the sender, new for every stream) and arrive in order, each at
// offset = the sum of the previous chunks' sizes.  The final chunk is the one
// with offset + data.size() == total_bytes; it alone carries `message` (the
// raft snapshot message whose data this is).
struct SnapshotChunk {
    std::uint64_t snapshot_id = 0;
    std::uint64_t offset = 0;
    std::uint64_t total_bytes = 0;
    std::string data;
    std::optional<raft::Message> message;  // set exactly on the final chunk
    std::uint64_t group = 0;               // keel::GroupId; first on the wire

    bool last() const { return message.has_value(); }
    friend bool operator==(const SnapshotChunk&, const SnapshotChunk&) = default;
};

using Frame = std::variant<Hello, MessageBatch, SnapshotChunk>;

// ---- encoding ----

// The size one message takes inside a messages frame (for batching: a frame
// holding messages m1..mn is kMessagesFrameFixedBytes + sum).
std::size_t encoded_message_bytes(const raft::Message& m);

// REQUIRES: valid_hello_address(hello.address).
std::string encode_hello(const Hello& hello);
// Whether `address` may travel in a hello: at most kHelloAddressBytesMax
// bytes of printable ASCII (no space, no control byte).
bool valid_hello_address(std::string_view address);
// Fails with too_large when the batch breaks a limit (count, entries, entry
// or context size, frame size) and invalid_argument on an empty batch or an
// enum value outside its range.
Result<std::string> encode_messages(std::span<const raft::Message> messages,
                                    const CodecLimits& limits, std::uint64_t group = 0);
// The same for messages spread over a larger vector (those for one peer).
Result<std::string> encode_message_pointers(std::span<const raft::Message* const> messages,
                                            const CodecLimits& limits, std::uint64_t group = 0);
Result<std::string> encode_snapshot_chunk(const SnapshotChunk& chunk, const CodecLimits& limits);

// Wraps an already encoded payload into a frame (prefix, header, CRC).  The
// encoders above use it; tests use it to seal arbitrary payloads so that the
// parser, not the CRC, meets the garbage.
std::string seal_frame(std::uint8_t kind, std::string_view payload,
                       std::uint8_t version = kWireVersion);

// ---- decoding ----

// Reads a length prefix (exactly kFrameLengthBytes bytes) and returns the
// body length that follows it.  Fails (too_large / corruption) when the
// whole frame would exceed frame_bytes_max or is shorter than any frame.
Result<std::uint32_t> decode_frame_length(std::string_view prefix, std::size_t frame_bytes_max);

// Decodes a frame body (everything after the length prefix).  Errors name
// the byte offset within the frame (prefix included) where decoding failed.
Result<Frame> decode_frame_body(std::string_view body, const CodecLimits& limits);
// The same into `frame`: a messages frame is read into the MessageBatch
// `frame` already holds, reusing its vector's capacity (a receiver that
// decodes frame after frame allocates no batch for each; decision 0050).
// On failure `frame` holds whatever was read.
Status decode_frame_body_into(std::string_view body, const CodecLimits& limits, Frame& frame);

// The kind and group of a whole messages or snapshot chunk frame (prefix
// included, as decode_frame_length delimited it), read from its first bytes
// without checking the rest (decode_frame_body does): what a transport
// needs to route a frame.  Fails with unsupported for another version,
// corruption for another kind or a frame too short to hold a group id.
struct FrameRoute {
    FrameKind kind = FrameKind::messages;
    std::uint64_t group = 0;
};
Result<FrameRoute> frame_route(std::string_view frame);

// Decodes exactly one whole frame (prefix included); extra or missing bytes
// are errors.
Result<Frame> decode_frame(std::string_view frame, const CodecLimits& limits);

// CRC-32C of `bytes`, as stored in frames.
std::uint32_t crc32c(std::string_view bytes);

}  // namespace keel::transport
