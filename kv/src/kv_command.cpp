#include "keel/kv/kv_command.hpp"

#include <limits>

namespace keel::kv {
namespace codec {

void put_u8(std::string& out, std::uint8_t v) {
    out.push_back(static_cast<char>(v));
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_bytes(std::string& out, std::string_view bytes) {
    KEEL_ASSERT(bytes.size() <= std::numeric_limits<std::uint32_t>::max(),
                "a length-prefixed field fits in u32");
    put_u32(out, static_cast<std::uint32_t>(bytes.size()));
    out.append(bytes);
}

bool Reader::u8(std::uint8_t& v) {
    if (rest_.empty()) return false;
    v = static_cast<std::uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return true;
}

bool Reader::u32(std::uint32_t& v) {
    if (rest_.size() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<std::uint8_t>(rest_[i])} << (8 * i);
    rest_.remove_prefix(4);
    return true;
}

bool Reader::u64(std::uint64_t& v) {
    if (rest_.size() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<std::uint8_t>(rest_[i])} << (8 * i);
    rest_.remove_prefix(8);
    return true;
}

bool Reader::bytes(std::string& v) {
    std::uint32_t size = 0;
    if (!u32(size) || size > rest_.size()) return false;
    v.assign(rest_.substr(0, size));
    rest_.remove_prefix(size);
    return true;
}

}  // namespace codec

namespace {

constexpr std::uint8_t kFlagPrevValue = 1;
constexpr std::uint8_t kFlagPrevRevision = 2;

Status corrupt(const char* what) {
    return Status(ErrorCode::corruption, std::string("kv command: ") + what);
}

}  // namespace

std::string encode_command(const KvCommand& command) {
    std::string out;
    out.reserve(16 + command.key.size() + command.value.size() +
                (command.prev_value ? command.prev_value->size() + 4 : 0));
    codec::put_u8(out, kKvCommandVersion);
    codec::put_u8(out, static_cast<std::uint8_t>(command.op));
    std::uint8_t flags = 0;
    if (command.prev_value) flags |= kFlagPrevValue;
    if (command.prev_revision) flags |= kFlagPrevRevision;
    codec::put_u8(out, flags);
    codec::put_bytes(out, command.key);
    if (command.op == KvOp::put) codec::put_bytes(out, command.value);
    if (command.prev_value) codec::put_bytes(out, *command.prev_value);
    if (command.prev_revision) codec::put_u64(out, *command.prev_revision);
    return out;
}

Result<KvCommand> decode_command(std::string_view bytes) {
    codec::Reader in(bytes);
    std::uint8_t version = 0, op = 0, flags = 0;
    if (!in.u8(version) || !in.u8(op) || !in.u8(flags)) return corrupt("truncated header");
    if (version != kKvCommandVersion) {
        return Status(ErrorCode::unsupported, "kv command: unknown version");
    }
    if (op != static_cast<std::uint8_t>(KvOp::put) && op != static_cast<std::uint8_t>(KvOp::del)) {
        return corrupt("unknown op");
    }
    if ((flags & ~(kFlagPrevValue | kFlagPrevRevision)) != 0) return corrupt("unknown flags");
    KvCommand command;
    command.op = static_cast<KvOp>(op);
    if (!in.bytes(command.key)) return corrupt("truncated key");
    if (command.op == KvOp::put && !in.bytes(command.value)) return corrupt("truncated value");
    if (flags & kFlagPrevValue) {
        command.prev_value.emplace();
        if (!in.bytes(*command.prev_value)) return corrupt("truncated prev_value");
    }
    if (flags & kFlagPrevRevision) {
        command.prev_revision.emplace();
        if (!in.u64(*command.prev_revision)) return corrupt("truncated prev_revision");
    }
    if (!in.empty()) return corrupt("trailing bytes");
    return command;
}

std::string encode_result(const KvResult& result) {
    std::string out;
    codec::put_u8(out, kKvCommandVersion);
    codec::put_u8(out, static_cast<std::uint8_t>(result.outcome));
    codec::put_u64(out, result.revision);
    codec::put_u8(out, result.current ? 1 : 0);
    if (result.current) {
        codec::put_bytes(out, result.current->value);
        codec::put_u64(out, result.current->revision);
    }
    return out;
}

Result<KvResult> decode_result(std::string_view bytes) {
    codec::Reader in(bytes);
    std::uint8_t version = 0, outcome = 0, has_current = 0;
    KvResult result;
    if (!in.u8(version) || !in.u8(outcome) || !in.u64(result.revision) || !in.u8(has_current)) {
        return corrupt("truncated result");
    }
    if (version != kKvCommandVersion) return Status(ErrorCode::unsupported, "kv result: version");
    if (outcome > static_cast<std::uint8_t>(KvOutcome::invalid) || has_current > 1) {
        return corrupt("bad result outcome");
    }
    result.outcome = static_cast<KvOutcome>(outcome);
    if (has_current) {
        result.current.emplace();
        if (!in.bytes(result.current->value) || !in.u64(result.current->revision)) {
            return corrupt("truncated current value");
        }
    }
    if (!in.empty()) return corrupt("trailing bytes in result");
    return result;
}

}  // namespace keel::kv
