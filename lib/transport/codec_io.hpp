// transport/codec_io.hpp — the codec's private tools: the byte writer and
// the bounds-checked reader every frame is built and parsed with, the fixed
// sizes of a frame's parts, and the pieces each part of the codec lends the
// others (one raft::Message, in message_codec.cpp; the frames around it, in
// codec.cpp).  Only the codec's .cpp files include it.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include "keel/status.hpp"
#include "transport/codec.hpp"

namespace keel::transport::codec_io {

// Fixed sizes of the parts of a frame (see codec.hpp).
inline constexpr std::size_t kMessageFixedBytes = 1 + 8 * 7 + 1 + 8 * 3 + 1 + 1 + 4 + 1;
inline constexpr std::size_t kEntryFixedBytes = 8 + 8 + 1 + 4;
inline constexpr std::size_t kSnapshotMetaFixedBytes = 8 + 8 + 4;
inline constexpr std::size_t kMemberFixedBytes = 8 + 1 + 4;
inline constexpr std::size_t kChunkFixedBytes = kFrameGroupBytes + 8 * 3 + 4 + 1;
inline constexpr std::size_t kBatchFixedBytes = kFrameGroupBytes + 4;
inline constexpr std::size_t kFrameOverheadBytes = kFrameLengthBytes + kFrameBodyBytesMin;

#define KEEL_CODEC_TRY(expr)               \
    do {                                   \
        ::keel::Status status_ = (expr);   \
        if (!status_.ok()) return status_; \
    } while (0)

// Integers are little-endian on the wire; on a little-endian host a
// memcpy is the encoding (whole words, not a byte loop: this is per field
// of every message).
template <typename T>
T to_little_endian(T v) {
    if constexpr (std::endian::native == std::endian::big) {
        T out = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) out = (out << 8) | ((v >> (8 * i)) & 0xff);
        return out;
    }
    return v;
}

class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}
    void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void u32(std::uint32_t v) { word(v); }
    void u64(std::uint64_t v) { word(v); }
    void boolean(bool v) { u8(v ? 1 : 0); }
    void bytes(std::string_view b) {
        KEEL_ASSERT(b.size() <= UINT32_MAX, "callers check sizes against the limits first");
        u32(static_cast<std::uint32_t>(b.size()));
        out_.append(b);
    }

private:
    template <typename T>
    void word(T v) {
        v = to_little_endian(v);
        char raw[sizeof(T)];
        std::memcpy(raw, &v, sizeof(T));
        out_.append(raw, sizeof(T));
    }

    std::string& out_;
};

// A bounds-checked cursor over a frame body.  Offsets in errors are frame
// offsets (the body starts at byte kFrameLengthBytes).
class Reader {
public:
    explicit Reader(std::string_view bytes) : bytes_(bytes) {}

    std::size_t offset() const { return kFrameLengthBytes + pos_; }
    std::size_t remaining() const { return bytes_.size() - pos_; }

    Status need(std::size_t n, const char* what) const {
        if (n <= remaining()) return Status();
        return Status(ErrorCode::corruption,
                      fmt::format("truncated {} at byte {} (need {}, have {})", what, offset(), n,
                                  remaining()));
    }
    Status u8(std::uint8_t& v, const char* what) {
        KEEL_CODEC_TRY(need(1, what));
        v = static_cast<std::uint8_t>(bytes_[pos_++]);
        return Status();
    }
    Status u32(std::uint32_t& v, const char* what) { return word(v, what); }
    Status u64(std::uint64_t& v, const char* what) { return word(v, what); }
    Status boolean(bool& v, const char* what) {
        std::size_t at = offset();
        std::uint8_t b = 0;
        KEEL_CODEC_TRY(u8(b, what));
        if (b > 1)
            return Status(ErrorCode::corruption,
                          fmt::format("bad {} {} at byte {} (must be 0 or 1)", what, int(b), at));
        v = b == 1;
        return Status();
    }
    // A u32 length then that many bytes; the length is checked against
    // `limit` and against the bytes present before anything is allocated.
    Status bytes(std::string& out, std::size_t limit, const char* what) {
        std::string_view view;
        KEEL_CODEC_TRY(bytes(view, limit, what));
        out.assign(view);
        return Status();
    }
    // As above, a view into the input instead of a copy.
    Status bytes(std::string_view& out, std::size_t limit, const char* what) {
        std::size_t at = offset();
        std::uint32_t n = 0;
        KEEL_CODEC_TRY(u32(n, what));
        if (n > limit)
            return Status(
                ErrorCode::too_large,
                fmt::format("{} of {} bytes at byte {} exceeds limit {}", what, n, at, limit));
        KEEL_CODEC_TRY(need(n, what));
        out = bytes_.substr(pos_, n);
        pos_ += n;
        return Status();
    }
    // A u32 element count, checked against `limit` and against the bytes
    // present (each element takes at least `element_bytes_min`).
    Status count(std::uint32_t& n, std::size_t limit, std::size_t element_bytes_min,
                 const char* what) {
        std::size_t at = offset();
        KEEL_CODEC_TRY(u32(n, what));
        if (n > limit)
            return Status(ErrorCode::too_large,
                          fmt::format("{} {} at byte {} exceeds limit {}", what, n, at, limit));
        if (n > remaining() / element_bytes_min)
            return Status(ErrorCode::corruption,
                          fmt::format("{} {} at byte {} cannot fit in the {} bytes left", what, n,
                                      at, remaining()));
        return Status();
    }

private:
    template <typename T>
    Status word(T& v, const char* what) {
        KEEL_CODEC_TRY(need(sizeof(T), what));
        std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
        v = to_little_endian(v);  // the same byte swap both ways
        pos_ += sizeof(T);
        return Status();
    }

    std::string_view bytes_;
    std::size_t pos_ = 0;
};

// ---- one raft::Message (message_codec.cpp) ----

// Whether `m` may be encoded: known enums, every size within `limits`.
Status check_message(const raft::Message& m, const CodecLimits& limits);
// REQUIRES: check_message(m) passed.
void write_message(Writer& w, const raft::Message& m);
Status read_message(Reader& r, raft::Message& m, const CodecLimits& limits);
// The payload of a messages frame, after the kind byte, into `batch` (its
// vector emptied first, its capacity reused).
Status read_batch(Reader& r, const CodecLimits& limits, MessageBatch& batch);

// ---- frames (codec.cpp) ----

Status check_frame_size(std::size_t frame_bytes, const CodecLimits& limits);
// Header and payload written straight into the frame, then the CRC: one
// buffer, no copy of the payload (seal_frame copies).
void begin_frame(std::string& out, FrameKind kind, std::size_t frame_bytes);
void end_frame(std::string& out);

}  // namespace keel::transport::codec_io
