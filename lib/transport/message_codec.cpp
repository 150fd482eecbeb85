// transport/message_codec.cpp — one raft::Message on the wire, and the
// messages frame that carries a batch of them (layout: codec.hpp).
#include <fmt/format.h>
#include "transport/codec_io.hpp"

namespace keel::transport {

using namespace codec_io;

namespace {

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

bool valid_message_type(std::uint8_t t) {
    return t >= static_cast<std::uint8_t>(raft::MessageType::append) &&
           t <= static_cast<std::uint8_t>(raft::MessageType::timeout_now);
}
bool valid_entry_type(std::uint8_t t) {
    return t >= static_cast<std::uint8_t>(raft::EntryType::normal) &&
           t <= static_cast<std::uint8_t>(raft::EntryType::config);
}

Status read_entry(Reader& r, raft::Entry& e, const CodecLimits& limits) {
    KEEL_CODEC_TRY(r.u64(e.term, "entry term"));
    KEEL_CODEC_TRY(r.u64(e.index, "entry index"));
    std::size_t at = r.offset();
    std::uint8_t type = 0;
    KEEL_CODEC_TRY(r.u8(type, "entry type"));
    if (!valid_entry_type(type))
        return Status(ErrorCode::corruption,
                      fmt::format("unknown entry type {} at byte {}", int(type), at));
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
                          fmt::format("member id {} at byte {} is 0 or out of order", id, at));
        previous = id;
        raft::MemberInfo info;
        KEEL_CODEC_TRY(r.boolean(info.voter, "member voter flag"));
        KEEL_CODEC_TRY(r.bytes(info.context, limits.context_bytes_max, "member context"));
        s.config.members.emplace_hint(s.config.members.end(), id, std::move(info));
    }
    return Status();
}

}  // namespace

namespace codec_io {

Status check_message(const raft::Message& m, const CodecLimits& limits) {
    if (!valid_message_type(static_cast<std::uint8_t>(m.type)))
        return Status(
            ErrorCode::invalid_argument,
            fmt::format("unknown message type {}", int(static_cast<std::uint8_t>(m.type))));
    if (m.entries.size() > limits.entries_per_message_max)
        return Status(ErrorCode::too_large,
                      fmt::format("message has {} entries, limit {}", m.entries.size(),
                                  limits.entries_per_message_max));
    for (const auto& e : m.entries) {
        if (!valid_entry_type(static_cast<std::uint8_t>(e.type)))
            return Status(
                ErrorCode::invalid_argument,
                fmt::format("unknown entry type {}", int(static_cast<std::uint8_t>(e.type))));
        if (e.data.size() > limits.entry_bytes_max)
            return Status(ErrorCode::too_large,
                          fmt::format("entry {} has {} bytes, limit {}", e.index, e.data.size(),
                                      limits.entry_bytes_max));
    }
    if (m.snapshot) {
        const auto& members = m.snapshot->config.members;
        if (members.size() > limits.members_max)
            return Status(ErrorCode::too_large,
                          fmt::format("snapshot configuration has {} members, limit {}",
                                      members.size(), limits.members_max));
        for (const auto& [id, info] : members) {
            if (id == raft::kNoNode)
                return Status(ErrorCode::invalid_argument, "configuration member with id 0");
            if (info.context.size() > limits.context_bytes_max)
                return Status(ErrorCode::too_large,
                              fmt::format("member {} context has {} bytes, limit {}", id,
                                          info.context.size(), limits.context_bytes_max));
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
    w.boolean(m.quiesce);
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

Status read_message(Reader& r, raft::Message& m, const CodecLimits& limits) {
    std::size_t at = r.offset();
    std::uint8_t type = 0;
    KEEL_CODEC_TRY(r.u8(type, "message type"));
    if (!valid_message_type(type))
        return Status(ErrorCode::corruption,
                      fmt::format("unknown message type {} at byte {}", int(type), at));
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
    KEEL_CODEC_TRY(r.boolean(m.quiesce, "message quiesce flag"));
    std::uint32_t n = 0;
    KEEL_CODEC_TRY(r.count(n, limits.entries_per_message_max, kEntryFixedBytes, "entry count"));
    m.entries.resize(n);
    for (auto& e : m.entries) KEEL_CODEC_TRY(read_entry(r, e, limits));
    bool has_snapshot = false;
    KEEL_CODEC_TRY(r.boolean(has_snapshot, "message snapshot flag"));
    if (has_snapshot) KEEL_CODEC_TRY(read_snapshot_meta(r, m.snapshot.emplace(), limits));
    return Status();
}

Status read_batch(Reader& r, const CodecLimits& limits, MessageBatch& batch) {
    batch.messages.clear();
    KEEL_CODEC_TRY(r.u64(batch.group, "frame group id"));
    std::uint32_t n = 0;
    KEEL_CODEC_TRY(r.count(n, limits.messages_per_batch_max, kMessageFixedBytes, "message count"));
    if (n == 0) return Status(ErrorCode::corruption, "empty message batch");
    batch.messages.resize(n);
    for (auto& m : batch.messages) KEEL_CODEC_TRY(read_message(r, m, limits));
    return Status();
}

}  // namespace codec_io

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

namespace {

const raft::Message& deref(const raft::Message& m) {
    return m;
}
const raft::Message& deref(const raft::Message* m) {
    return *m;
}

template <typename T>
Result<std::string> encode_batch(std::span<const T> messages, const CodecLimits& limits,
                                 std::uint64_t group) {
    if (messages.empty()) return Status(ErrorCode::invalid_argument, "empty message batch");
    if (messages.size() > limits.messages_per_batch_max)
        return Status(ErrorCode::too_large,
                      fmt::format("batch of {} messages, limit {}", messages.size(),
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
    w.u64(group);
    w.u32(static_cast<std::uint32_t>(messages.size()));
    for (const auto& m : messages) write_message(w, deref(m));
    end_frame(frame);
    KEEL_ASSERT(frame.size() == size, "encoded_message_bytes must match the encoder");
    return frame;
}

}  // namespace

Result<std::string> encode_messages(std::span<const raft::Message> messages,
                                    const CodecLimits& limits, std::uint64_t group) {
    return encode_batch(messages, limits, group);
}

Result<std::string> encode_message_pointers(std::span<const raft::Message* const> messages,
                                            const CodecLimits& limits, std::uint64_t group) {
    return encode_batch(messages, limits, group);
}

}  // namespace keel::transport
