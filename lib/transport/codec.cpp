// transport/codec.cpp — see codec.hpp for the byte layout.
#include "transport/codec.hpp"

#include "keel/crc32c.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <sstream>
#include <utility>

namespace keel::transport {
namespace {

// Fixed sizes of the parts of a message (see codec.hpp).
constexpr std::size_t kMessageFixedBytes = 1 + 8 * 7 + 1 + 8 * 3 + 1 + 4 + 1;
constexpr std::size_t kEntryFixedBytes = 8 + 8 + 1 + 4;
constexpr std::size_t kSnapshotMetaFixedBytes = 8 + 8 + 4;
constexpr std::size_t kMemberFixedBytes = 8 + 1 + 4;
constexpr std::size_t kChunkFixedBytes = 8 * 3 + 4 + 1;
constexpr std::size_t kBatchFixedBytes = 4;
constexpr std::size_t kFrameOverheadBytes = kFrameLengthBytes + kFrameBodyBytesMin;

// The codec writes raft's structs member by member.  A field added there and
// not here would be silently lost on the wire (and the round-trip tests,
// which set the fields they know, would not notice), so the layout is
// pinned where it is known (libstdc++ on x86-64): update write_message /
// read_message and the tests, then these sizes.
#if defined(__GLIBCXX__) && defined(__x86_64__)
static_assert(sizeof(raft::Message) == 200, "raft::Message changed: update the codec");
static_assert(sizeof(raft::Entry) == 32, "raft::Entry changed: update the codec");
static_assert(sizeof(raft::SnapshotMeta) == 64, "raft::SnapshotMeta changed: update the codec");
static_assert(sizeof(raft::MemberInfo) == 40, "raft::MemberInfo changed: update the codec");
#endif

template <typename... Args>
std::string cat(Args&&... args) {
    std::ostringstream out;
    (out << ... << std::forward<Args>(args));
    return out.str();
}

#define KEEL_CODEC_TRY(expr)               \
    do {                                   \
        ::keel::Status status_ = (expr);   \
        if (!status_.ok()) return status_; \
    } while (0)

// ---- writing ----

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

bool valid_message_type(std::uint8_t t) {
    return t >= static_cast<std::uint8_t>(raft::MessageType::append) &&
           t <= static_cast<std::uint8_t>(raft::MessageType::timeout_now);
}
bool valid_entry_type(std::uint8_t t) {
    return t >= static_cast<std::uint8_t>(raft::EntryType::normal) &&
           t <= static_cast<std::uint8_t>(raft::EntryType::config);
}

Status check_message(const raft::Message& m, const CodecLimits& limits) {
    if (!valid_message_type(static_cast<std::uint8_t>(m.type)))
        return Status(ErrorCode::invalid_argument,
                      cat("unknown message type ", int(static_cast<std::uint8_t>(m.type))));
    if (m.entries.size() > limits.entries_per_message_max)
        return Status(ErrorCode::too_large,
                      cat("message has ", m.entries.size(), " entries, limit ",
                          limits.entries_per_message_max));
    for (const auto& e : m.entries) {
        if (!valid_entry_type(static_cast<std::uint8_t>(e.type)))
            return Status(ErrorCode::invalid_argument,
                          cat("unknown entry type ", int(static_cast<std::uint8_t>(e.type))));
        if (e.data.size() > limits.entry_bytes_max)
            return Status(ErrorCode::too_large, cat("entry ", e.index, " has ", e.data.size(),
                                                    " bytes, limit ", limits.entry_bytes_max));
    }
    if (m.snapshot) {
        const auto& members = m.snapshot->config.members;
        if (members.size() > limits.members_max)
            return Status(ErrorCode::too_large, cat("snapshot configuration has ", members.size(),
                                                    " members, limit ", limits.members_max));
        for (const auto& [id, info] : members) {
            if (id == raft::kNoNode)
                return Status(ErrorCode::invalid_argument, "configuration member with id 0");
            if (info.context.size() > limits.context_bytes_max)
                return Status(ErrorCode::too_large,
                              cat("member ", id, " context has ", info.context.size(),
                                  " bytes, limit ", limits.context_bytes_max));
        }
    }
    return Status();
}

void write_message(Writer& w, const raft::Message& m) {
    w.u8(static_cast<std::uint8_t>(m.type));
    w.u64(m.from);
    w.u64(m.to);
    w.u64(m.term);
    w.u64(m.log_index);
    w.u64(m.log_term);
    w.u64(m.commit);
    w.u64(m.index);
    w.boolean(m.reject);
    w.u64(m.hint_index);
    w.u64(m.hint_term);
    w.u64(m.context);
    w.boolean(m.transfer);
    w.u32(static_cast<std::uint32_t>(m.entries.size()));
    for (const auto& e : m.entries) {
        w.u64(e.term);
        w.u64(e.index);
        w.u8(static_cast<std::uint8_t>(e.type));
        w.bytes(e.data);
    }
    w.boolean(m.snapshot.has_value());
    if (m.snapshot) {
        // Encoded member by member here rather than via raft::encode_configuration,
        // so the wire format is owned (and bounded) by this file alone.
        w.u64(m.snapshot->index);
        w.u64(m.snapshot->term);
        w.u32(static_cast<std::uint32_t>(m.snapshot->config.members.size()));
        for (const auto& [id, info] : m.snapshot->config.members) {
            w.u64(id);
            w.boolean(info.voter);
            w.bytes(info.context);
        }
    }
}

Status check_frame_size(std::size_t frame_bytes, const CodecLimits& limits) {
    if (frame_bytes > limits.frame_bytes_max || frame_bytes - kFrameLengthBytes > UINT32_MAX)
        return Status(ErrorCode::too_large,
                      cat("frame of ", frame_bytes, " bytes, limit ", limits.frame_bytes_max));
    return Status();
}

// ---- reading ----

// A bounds-checked cursor over a frame body.  Offsets in errors are frame
// offsets (the body starts at byte kFrameLengthBytes).
class Reader {
public:
    explicit Reader(std::string_view bytes) : bytes_(bytes) {}

    std::size_t offset() const { return kFrameLengthBytes + pos_; }
    std::size_t remaining() const { return bytes_.size() - pos_; }

    Status need(std::size_t n, const char* what) const {
        if (n <= remaining()) return Status();
        return Status(ErrorCode::corruption, cat("truncated ", what, " at byte ", offset(),
                                                 " (need ", n, ", have ", remaining(), ")"));
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
                          cat("bad ", what, " ", int(b), " at byte ", at, " (must be 0 or 1)"));
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
            return Status(ErrorCode::too_large,
                          cat(what, " of ", n, " bytes at byte ", at, " exceeds limit ", limit));
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
                          cat(what, " ", n, " at byte ", at, " exceeds limit ", limit));
        if (n > remaining() / element_bytes_min)
            return Status(ErrorCode::corruption,
                          cat(what, " ", n, " at byte ", at, " cannot fit in the ", remaining(),
                              " bytes left"));
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

Status read_entry(Reader& r, raft::Entry& e, const CodecLimits& limits) {
    KEEL_CODEC_TRY(r.u64(e.term, "entry term"));
    KEEL_CODEC_TRY(r.u64(e.index, "entry index"));
    std::size_t at = r.offset();
    std::uint8_t type = 0;
    KEEL_CODEC_TRY(r.u8(type, "entry type"));
    if (!valid_entry_type(type))
        return Status(ErrorCode::corruption,
                      cat("unknown entry type ", int(type), " at byte ", at));
    e.type = static_cast<raft::EntryType>(type);
    std::string_view data;
    KEEL_CODEC_TRY(r.bytes(data, limits.entry_bytes_max, "entry data"));
    e.data = SharedBytes(data);
    return Status();
}

Status read_snapshot_meta(Reader& r, raft::SnapshotMeta& s, const CodecLimits& limits) {
    KEEL_CODEC_TRY(r.u64(s.index, "snapshot index"));
    KEEL_CODEC_TRY(r.u64(s.term, "snapshot term"));
    std::uint32_t n = 0;
    KEEL_CODEC_TRY(r.count(n, limits.members_max, kMemberFixedBytes, "member count"));
    raft::NodeId previous = raft::kNoNode;
    for (std::uint32_t i = 0; i < n; ++i) {
        std::size_t at = r.offset();
        raft::NodeId id = 0;
        KEEL_CODEC_TRY(r.u64(id, "member id"));
        if (id <= previous)  // also refuses id 0 (kNoNode)
            return Status(ErrorCode::corruption,
                          cat("member id ", id, " at byte ", at, " is 0 or out of order"));
        previous = id;
        raft::MemberInfo info;
        KEEL_CODEC_TRY(r.boolean(info.voter, "member voter flag"));
        KEEL_CODEC_TRY(r.bytes(info.context, limits.context_bytes_max, "member context"));
        s.config.members.emplace_hint(s.config.members.end(), id, std::move(info));
    }
    return Status();
}

Status read_message(Reader& r, raft::Message& m, const CodecLimits& limits) {
    std::size_t at = r.offset();
    std::uint8_t type = 0;
    KEEL_CODEC_TRY(r.u8(type, "message type"));
    if (!valid_message_type(type))
        return Status(ErrorCode::corruption,
                      cat("unknown message type ", int(type), " at byte ", at));
    m.type = static_cast<raft::MessageType>(type);
    KEEL_CODEC_TRY(r.u64(m.from, "message from"));
    KEEL_CODEC_TRY(r.u64(m.to, "message to"));
    KEEL_CODEC_TRY(r.u64(m.term, "message term"));
    KEEL_CODEC_TRY(r.u64(m.log_index, "message log_index"));
    KEEL_CODEC_TRY(r.u64(m.log_term, "message log_term"));
    KEEL_CODEC_TRY(r.u64(m.commit, "message commit"));
    KEEL_CODEC_TRY(r.u64(m.index, "message index"));
    KEEL_CODEC_TRY(r.boolean(m.reject, "message reject flag"));
    KEEL_CODEC_TRY(r.u64(m.hint_index, "message hint_index"));
    KEEL_CODEC_TRY(r.u64(m.hint_term, "message hint_term"));
    KEEL_CODEC_TRY(r.u64(m.context, "message context"));
    KEEL_CODEC_TRY(r.boolean(m.transfer, "message transfer flag"));
    std::uint32_t n = 0;
    KEEL_CODEC_TRY(r.count(n, limits.entries_per_message_max, kEntryFixedBytes, "entry count"));
    m.entries.resize(n);
    for (auto& e : m.entries) KEEL_CODEC_TRY(read_entry(r, e, limits));
    bool has_snapshot = false;
    KEEL_CODEC_TRY(r.boolean(has_snapshot, "message snapshot flag"));
    if (has_snapshot) KEEL_CODEC_TRY(read_snapshot_meta(r, m.snapshot.emplace(), limits));
    return Status();
}

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

Result<Frame> read_batch(Reader& r, const CodecLimits& limits) {
    std::uint32_t n = 0;
    KEEL_CODEC_TRY(r.count(n, limits.messages_per_batch_max, kMessageFixedBytes, "message count"));
    if (n == 0) return Status(ErrorCode::corruption, "empty message batch");
    MessageBatch batch;
    batch.messages.resize(n);
    for (auto& m : batch.messages) KEEL_CODEC_TRY(read_message(r, m, limits));
    return Frame{std::move(batch)};
}

Result<Frame> read_chunk(Reader& r, const CodecLimits& limits) {
    SnapshotChunk c;
    KEEL_CODEC_TRY(r.u64(c.snapshot_id, "chunk snapshot id"));
    KEEL_CODEC_TRY(r.u64(c.offset, "chunk offset"));
    KEEL_CODEC_TRY(r.u64(c.total_bytes, "chunk total bytes"));
    std::size_t at = r.offset();
    KEEL_CODEC_TRY(r.bytes(c.data, limits.chunk_bytes_max, "chunk data"));
    if (c.offset > c.total_bytes || c.data.size() > c.total_bytes - c.offset)
        return Status(ErrorCode::corruption,
                      cat("chunk at byte ", at, " ends past the snapshot's total size (offset ",
                          c.offset, " + ", c.data.size(), " > ", c.total_bytes, ")"));
    bool last = false;
    KEEL_CODEC_TRY(r.boolean(last, "chunk last flag"));
    bool ends = c.offset + c.data.size() == c.total_bytes;
    if (last != ends)
        return Status(ErrorCode::corruption,
                      cat("chunk last flag ", last, " disagrees with its range (offset ", c.offset,
                          " + ", c.data.size(), " of ", c.total_bytes, ")"));
    if (last) KEEL_CODEC_TRY(read_message(r, c.message.emplace(), limits));
    return Frame{std::move(c)};
}

}  // namespace

std::uint32_t crc32c(std::string_view bytes) {
    return ::keel::crc32c(bytes.data(), bytes.size());
}

std::size_t encoded_message_bytes(const raft::Message& m) {
    std::size_t n = kMessageFixedBytes;
    for (const auto& e : m.entries) n += kEntryFixedBytes + e.data.size();
    if (m.snapshot) {
        n += kSnapshotMetaFixedBytes;
        for (const auto& [id, info] : m.snapshot->config.members)
            n += kMemberFixedBytes + info.context.size();
    }
    return n;
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

namespace {

// Header and payload written straight into the frame, then the CRC: one
// buffer, no copy of the payload (seal_frame copies).
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

const raft::Message& deref(const raft::Message& m) {
    return m;
}
const raft::Message& deref(const raft::Message* m) {
    return *m;
}

template <typename T>
Result<std::string> encode_batch(std::span<const T> messages, const CodecLimits& limits) {
    if (messages.empty()) return Status(ErrorCode::invalid_argument, "empty message batch");
    if (messages.size() > limits.messages_per_batch_max)
        return Status(ErrorCode::too_large, cat("batch of ", messages.size(), " messages, limit ",
                                                limits.messages_per_batch_max));
    std::size_t size = kFrameOverheadBytes + kBatchFixedBytes;
    for (const auto& m : messages) {
        KEEL_CODEC_TRY(check_message(deref(m), limits));
        size += encoded_message_bytes(deref(m));
    }
    KEEL_CODEC_TRY(check_frame_size(size, limits));
    std::string frame;
    begin_frame(frame, FrameKind::messages, size);
    Writer w(frame);
    w.u32(static_cast<std::uint32_t>(messages.size()));
    for (const auto& m : messages) write_message(w, deref(m));
    end_frame(frame);
    KEEL_ASSERT(frame.size() == size, "encoded_message_bytes must match the encoder");
    return frame;
}

}  // namespace

Result<std::string> encode_messages(std::span<const raft::Message> messages,
                                    const CodecLimits& limits) {
    return encode_batch(messages, limits);
}

Result<std::string> encode_message_pointers(std::span<const raft::Message* const> messages,
                                            const CodecLimits& limits) {
    return encode_batch(messages, limits);
}

Result<std::string> encode_snapshot_chunk(const SnapshotChunk& chunk, const CodecLimits& limits) {
    if (chunk.data.size() > limits.chunk_bytes_max)
        return Status(ErrorCode::too_large, cat("snapshot chunk of ", chunk.data.size(),
                                                " bytes, limit ", limits.chunk_bytes_max));
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
        return Status(ErrorCode::corruption, cat("frame length ", n, " is shorter than any frame"));
    if (std::size_t{n} + kFrameLengthBytes > frame_bytes_max)
        return Status(ErrorCode::too_large, cat("frame length ", n, " exceeds the limit of ",
                                                frame_bytes_max, " bytes per frame"));
    return n;
}

Result<Frame> decode_frame_body(std::string_view body, const CodecLimits& limits) {
    if (body.size() < kFrameBodyBytesMin)
        return Status(ErrorCode::corruption, cat("truncated frame: ", body.size(), " bytes"));
    if (body.size() + kFrameLengthBytes > limits.frame_bytes_max)
        return Status(ErrorCode::too_large, cat("frame of ", body.size() + kFrameLengthBytes,
                                                " bytes exceeds limit ", limits.frame_bytes_max));
    auto version = static_cast<std::uint8_t>(body[0]);
    if (version != kWireVersion)
        return Status(ErrorCode::unsupported,
                      cat("frame version ", int(version), " unsupported (this build speaks ",
                          int(kWireVersion), ")"));
    std::string_view checked = body.substr(0, body.size() - 4);
    Reader crc_reader(body.substr(body.size() - 4));
    std::uint32_t stored = 0;
    KEEL_CODEC_TRY(crc_reader.u32(stored, "frame crc"));
    std::uint32_t actual = crc32c(checked);
    if (stored != actual)
        return Status(ErrorCode::corruption,
                      cat("frame crc mismatch (stored ", stored, ", computed ", actual, ")"));

    Reader r(checked);
    std::uint8_t skip = 0, kind = 0;
    KEEL_CODEC_TRY(r.u8(skip, "frame version"));
    KEEL_CODEC_TRY(r.u8(kind, "frame kind"));
    // (The error is formatted only for a bad kind: formatting it up front
    // cost every frame an ostringstream.)
    Result<Frame> frame = [&]() -> Result<Frame> {
        switch (kind) {
            case static_cast<std::uint8_t>(FrameKind::hello):
                return read_hello(r);
            case static_cast<std::uint8_t>(FrameKind::messages):
                return read_batch(r, limits);
            case static_cast<std::uint8_t>(FrameKind::snapshot_chunk):
                return read_chunk(r, limits);
            default:
                return Status(ErrorCode::corruption, cat("unknown frame kind ", int(kind)));
        }
    }();
    if (frame.ok() && r.remaining() != 0)
        return Status(ErrorCode::corruption, cat(r.remaining(), " trailing bytes at byte ",
                                                 r.offset(), " after the frame's payload"));
    return frame;
}

Result<Frame> decode_frame(std::string_view frame, const CodecLimits& limits) {
    if (frame.size() < kFrameLengthBytes)
        return Status(ErrorCode::corruption,
                      cat("truncated frame length prefix: ", frame.size(), " bytes"));
    Result<std::uint32_t> length =
        decode_frame_length(frame.substr(0, kFrameLengthBytes), limits.frame_bytes_max);
    if (!length.ok()) return length.status();
    std::size_t have = frame.size() - kFrameLengthBytes;
    if (have < *length)
        return Status(ErrorCode::corruption,
                      cat("truncated frame: ", have, " of ", *length, " body bytes"));
    if (have > *length)
        return Status(ErrorCode::corruption,
                      cat(have - *length, " bytes after the end of the frame"));
    return decode_frame_body(frame.substr(kFrameLengthBytes), limits);
}

}  // namespace keel::transport
