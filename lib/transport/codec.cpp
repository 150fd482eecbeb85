// transport/codec.cpp — frames (see codec.hpp for the byte layout): the
// envelope every frame shares (length, version, kind, CRC), the hello and
// the snapshot chunk; the messages frame is message_codec.cpp's.
#include "transport/codec.hpp"

#include <algorithm>

#include <fmt/format.h>
#include "keel/crc32c.hpp"
#include "transport/codec_io.hpp"

namespace keel::transport {

using namespace codec_io;

namespace {

Result<Frame> read_hello(Reader& r) {
    Hello h;
    for (std::uint8_t& b : h.cluster_id.bytes) KEEL_CODEC_TRY(r.u8(b, "hello cluster id"));
    KEEL_CODEC_TRY(r.u64(h.from, "hello node id"));
    if (h.cluster_id.unset()) return Status(ErrorCode::corruption, "hello without a cluster id");
    if (h.from == raft::kNoNode) return Status(ErrorCode::corruption, "hello from node id 0");
    KEEL_CODEC_TRY(r.bytes(h.address, kHelloAddressBytesMax, "hello address"));
    if (!valid_hello_address(h.address))
        return Status(ErrorCode::corruption, "hello address is not printable ASCII");
    return Frame{std::move(h)};
}

Result<Frame> read_chunk(Reader& r, const CodecLimits& limits) {
    SnapshotChunk c;
    KEEL_CODEC_TRY(r.u64(c.group, "frame group id"));
    KEEL_CODEC_TRY(r.u64(c.snapshot_id, "chunk snapshot id"));
    KEEL_CODEC_TRY(r.u64(c.offset, "chunk offset"));
    KEEL_CODEC_TRY(r.u64(c.total_bytes, "chunk total bytes"));
    std::size_t at = r.offset();
    KEEL_CODEC_TRY(r.bytes(c.data, limits.chunk_bytes_max, "chunk data"));
    if (c.offset > c.total_bytes || c.data.size() > c.total_bytes - c.offset)
        return Status(
            ErrorCode::corruption,
            fmt::format(
                "chunk at byte {} ends past the snapshot's total size (offset {} + {} > {})", at,
                c.offset, c.data.size(), c.total_bytes));
    bool last = false;
    KEEL_CODEC_TRY(r.boolean(last, "chunk last flag"));
    bool ends = c.offset + c.data.size() == c.total_bytes;
    if (last != ends)
        return Status(
            ErrorCode::corruption,
            fmt::format("chunk last flag {} disagrees with its range (offset {} + {} of {})",
                        int(last), c.offset, c.data.size(), c.total_bytes));
    if (last) KEEL_CODEC_TRY(read_message(r, c.message.emplace(), limits));
    return Frame{std::move(c)};
}

}  // namespace

namespace codec_io {

Status check_frame_size(std::size_t frame_bytes, const CodecLimits& limits) {
    if (frame_bytes > limits.frame_bytes_max || frame_bytes - kFrameLengthBytes > UINT32_MAX)
        return Status(ErrorCode::too_large, fmt::format("frame of {} bytes, limit {}", frame_bytes,
                                                        limits.frame_bytes_max));
    return Status();
}

void begin_frame(std::string& out, FrameKind kind, std::size_t frame_bytes) {
    out.reserve(frame_bytes);
    Writer w(out);
    w.u32(static_cast<std::uint32_t>(frame_bytes - kFrameLengthBytes));
    w.u8(kWireVersion);
    w.u8(static_cast<std::uint8_t>(kind));
}

void end_frame(std::string& out) {
    Writer w(out);
    w.u32(crc32c(std::string_view(out).substr(kFrameLengthBytes)));
}

}  // namespace codec_io

std::uint32_t crc32c(std::string_view bytes) {
    return ::keel::crc32c(bytes.data(), bytes.size());
}

std::string seal_frame(std::uint8_t kind, std::string_view payload, std::uint8_t version) {
    std::size_t body = kFrameBodyBytesMin + payload.size();
    KEEL_ASSERT(body <= UINT32_MAX, "callers check the frame size limit first");
    std::string out;
    out.reserve(kFrameLengthBytes + body);
    Writer w(out);
    w.u32(static_cast<std::uint32_t>(body));
    w.u8(version);
    w.u8(kind);
    out.append(payload);
    w.u32(crc32c(std::string_view(out).substr(kFrameLengthBytes)));
    return out;
}

bool valid_hello_address(std::string_view address) {
    if (address.size() > kHelloAddressBytesMax) return false;
    return std::all_of(address.begin(), address.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

std::string encode_hello(const Hello& hello) {
    KEEL_ASSERT(valid_hello_address(hello.address), "the transport checks its address at start");
    std::string payload;
    Writer w(payload);
    for (std::uint8_t b : hello.cluster_id.bytes) w.u8(b);
    w.u64(hello.from);
    w.bytes(hello.address);
    std::string frame = seal_frame(static_cast<std::uint8_t>(FrameKind::hello), payload);
    KEEL_ASSERT(frame.size() == kHelloFrameBytesMin + hello.address.size(),
                "a hello is its fixed part and its address");
    return frame;
}

Result<std::string> encode_snapshot_chunk(const SnapshotChunk& chunk, const CodecLimits& limits) {
    if (chunk.data.size() > limits.chunk_bytes_max)
        return Status(ErrorCode::too_large, fmt::format("snapshot chunk of {} bytes, limit {}",
                                                        chunk.data.size(), limits.chunk_bytes_max));
    bool in_range =
        chunk.offset <= chunk.total_bytes && chunk.data.size() <= chunk.total_bytes - chunk.offset;
    bool ends = in_range && chunk.offset + chunk.data.size() == chunk.total_bytes;
    if (!in_range || ends != chunk.last())
        return Status(ErrorCode::invalid_argument,
                      "a snapshot chunk must lie within total_bytes and carry the message "
                      "exactly when it is the final one");
    std::size_t size = kFrameOverheadBytes + kChunkFixedBytes + chunk.data.size();
    if (chunk.message) {
        KEEL_CODEC_TRY(check_message(*chunk.message, limits));
        size += encoded_message_bytes(*chunk.message);
    }
    KEEL_CODEC_TRY(check_frame_size(size, limits));
    std::string payload;
    payload.reserve(size - kFrameOverheadBytes);
    Writer w(payload);
    w.u64(chunk.group);
    w.u64(chunk.snapshot_id);
    w.u64(chunk.offset);
    w.u64(chunk.total_bytes);
    w.bytes(chunk.data);
    w.boolean(chunk.last());
    if (chunk.message) write_message(w, *chunk.message);
    return seal_frame(static_cast<std::uint8_t>(FrameKind::snapshot_chunk), payload);
}

Result<std::uint32_t> decode_frame_length(std::string_view prefix, std::size_t frame_bytes_max) {
    KEEL_ASSERT(prefix.size() == kFrameLengthBytes, "a length prefix is 4 bytes");
    std::uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n |= std::uint32_t{static_cast<std::uint8_t>(prefix[i])} << (8 * i);
    if (n < kFrameBodyBytesMin)
        return Status(ErrorCode::corruption,
                      fmt::format("frame length {} is shorter than any frame", n));
    if (std::size_t{n} + kFrameLengthBytes > frame_bytes_max)
        return Status(ErrorCode::too_large,
                      fmt::format("frame length {} exceeds the limit of {} bytes per frame", n,
                                  frame_bytes_max));
    return n;
}

Status decode_frame_body_into(std::string_view body, const CodecLimits& limits, Frame& frame) {
    if (body.size() < kFrameBodyBytesMin)
        return Status(ErrorCode::corruption, fmt::format("truncated frame: {} bytes", body.size()));
    if (body.size() + kFrameLengthBytes > limits.frame_bytes_max)
        return Status(ErrorCode::too_large,
                      fmt::format("frame of {} bytes exceeds limit {}",
                                  body.size() + kFrameLengthBytes, limits.frame_bytes_max));
    auto version = static_cast<std::uint8_t>(body[0]);
    if (version != kWireVersion)
        return Status(ErrorCode::unsupported,
                      fmt::format("frame version {} unsupported (this build speaks {})",
                                  int(version), int(kWireVersion)));
    std::string_view checked = body.substr(0, body.size() - 4);
    Reader crc_reader(body.substr(body.size() - 4));
    std::uint32_t stored = 0;
    KEEL_CODEC_TRY(crc_reader.u32(stored, "frame crc"));
    std::uint32_t actual = crc32c(checked);
    if (stored != actual)
        return Status(ErrorCode::corruption,
                      fmt::format("frame crc mismatch (stored {}, computed {})", stored, actual));

    Reader r(checked);
    std::uint8_t skip = 0, kind = 0;
    KEEL_CODEC_TRY(r.u8(skip, "frame version"));
    KEEL_CODEC_TRY(r.u8(kind, "frame kind"));
    // (The error is formatted only for a bad kind, not for every frame.)
    Status read = [&]() -> Status {
        auto take = [&frame](Result<Frame> other) -> Status {
            if (!other.ok()) return other.status();
            frame = std::move(*other);
            return Status();
        };
        switch (kind) {
            case static_cast<std::uint8_t>(FrameKind::hello):
                return take(read_hello(r));
            case static_cast<std::uint8_t>(FrameKind::messages): {
                auto* batch = std::get_if<MessageBatch>(&frame);
                if (batch == nullptr) batch = &frame.emplace<MessageBatch>();
                return read_batch(r, limits, *batch);
            }
            case static_cast<std::uint8_t>(FrameKind::snapshot_chunk):
                return take(read_chunk(r, limits));
            default:
                return Status(ErrorCode::corruption,
                              fmt::format("unknown frame kind {}", int(kind)));
        }
    }();
    if (!read.ok()) return read;
    if (r.remaining() != 0)
        return Status(ErrorCode::corruption,
                      fmt::format("{} trailing bytes at byte {} after the frame's payload",
                                  r.remaining(), r.offset()));
    return Status();
}

Result<Frame> decode_frame_body(std::string_view body, const CodecLimits& limits) {
    Frame frame;
    if (Status s = decode_frame_body_into(body, limits, frame); !s.ok()) return s;
    return frame;
}

Result<FrameRoute> frame_route(std::string_view frame) {
    if (frame.size() < kFrameLengthBytes + 2)
        return Status(ErrorCode::corruption,
                      fmt::format("truncated frame header: {} bytes", frame.size()));
    Reader r(frame.substr(kFrameLengthBytes));
    std::uint8_t version = 0, kind = 0;
    KEEL_CODEC_TRY(r.u8(version, "frame version"));
    KEEL_CODEC_TRY(r.u8(kind, "frame kind"));
    if (version != kWireVersion)
        return Status(ErrorCode::unsupported,
                      fmt::format("frame version {} unsupported (this build speaks {})",
                                  int(version), int(kWireVersion)));
    if (kind != static_cast<std::uint8_t>(FrameKind::messages) &&
        kind != static_cast<std::uint8_t>(FrameKind::snapshot_chunk))
        return Status(ErrorCode::corruption,
                      fmt::format("a frame of kind {} has no group", int(kind)));
    FrameRoute route{static_cast<FrameKind>(kind), 0};
    // The CRC follows the payload, so a frame holds a group id only if its
    // group and CRC both fit.
    if (frame.size() < kGroupFrameBytesMin)
        return Status(ErrorCode::corruption,
                      fmt::format("truncated frame group id: a frame of {} bytes", frame.size()));
    KEEL_CODEC_TRY(r.u64(route.group, "frame group id"));
    return route;
}

Result<Frame> decode_frame(std::string_view frame, const CodecLimits& limits) {
    if (frame.size() < kFrameLengthBytes)
        return Status(ErrorCode::corruption,
                      fmt::format("truncated frame length prefix: {} bytes", frame.size()));
    Result<std::uint32_t> length =
        decode_frame_length(frame.substr(0, kFrameLengthBytes), limits.frame_bytes_max);
    if (!length.ok()) return length.status();
    std::size_t have = frame.size() - kFrameLengthBytes;
    if (have < *length)
        return Status(ErrorCode::corruption,
                      fmt::format("truncated frame: {} of {} body bytes", have, *length));
    if (have > *length)
        return Status(ErrorCode::corruption,
                      fmt::format("{} bytes after the end of the frame", have - *length));
    return decode_frame_body(frame.substr(kFrameLengthBytes), limits);
}

}  // namespace keel::transport
