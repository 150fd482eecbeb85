// raft/config_codec.cpp — the byte encoding of a Configuration.
//
// Stored as the data of every config entry and inside snapshot metadata, so
// it is read back from disk and from the wire: decoding is bounded and
// rejects anything it did not produce.  Layout (all integers little-endian):
//
//   u8  version              = 1
//   u32 member_count         <= kMaxMembers
//   member_count times, ids strictly increasing:
//     u64 id                 != 0
//     u8  voter              0 (learner) or 1 (voter)
//     u32 context_size_bytes <= kMaxContextBytes
//     context bytes
//
// Nothing may follow the last member.
#include <cstring>

#include "keel/assert.hpp"
#include "raft/limits.hpp"
#include "raft/types.hpp"

namespace keel::raft {

namespace {

constexpr std::uint8_t kConfigVersion = 1;

void put_le(std::string& out, std::uint64_t v, int size_bytes) {
    for (int i = 0; i < size_bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A bounds-checked reader over the input; every read fails once past the end.
class Reader {
public:
    explicit Reader(std::string_view bytes) : bytes_(bytes) {}
    bool get_le(int size_bytes, std::uint64_t& v) {
        if (bytes_.size() - pos_ < static_cast<std::size_t>(size_bytes)) return false;
        v = 0;
        for (int i = 0; i < size_bytes; ++i) {
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes_[pos_ + i]))
                 << (8 * i);
        }
        pos_ += size_bytes;
        return true;
    }
    bool get_bytes(std::size_t n, std::string& out) {
        if (bytes_.size() - pos_ < n) return false;
        out.assign(bytes_.substr(pos_, n));
        pos_ += n;
        return true;
    }
    bool at_end() const { return pos_ == bytes_.size(); }

private:
    std::string_view bytes_;
    std::size_t pos_ = 0;
};

}  // namespace

std::vector<NodeId> Configuration::voters() const {
    std::vector<NodeId> out;
    for (const auto& [id, info] : members) {
        if (info.voter) out.push_back(id);
    }
    return out;
}

std::vector<NodeId> Configuration::learners() const {
    std::vector<NodeId> out;
    for (const auto& [id, info] : members) {
        if (!info.voter) out.push_back(id);
    }
    return out;
}

std::string encode_configuration(const Configuration& config) {
    KEEL_ASSERT(config.members.size() <= kMaxMembers, "configuration over the member limit");
    std::string out;
    out.push_back(static_cast<char>(kConfigVersion));
    put_le(out, config.members.size(), 4);
    for (const auto& [id, info] : config.members) {
        KEEL_ASSERT(id != kNoNode, "node id 0 is reserved for 'nobody'");
        KEEL_ASSERT(info.context.size() <= kMaxContextBytes, "member context over its limit");
        put_le(out, id, 8);
        out.push_back(info.voter ? 1 : 0);
        put_le(out, info.context.size(), 4);
        out += info.context;
    }
    return out;
}

std::optional<Configuration> decode_configuration(std::string_view bytes) {
    if (bytes.size() > kMaxConfigBytes) return std::nullopt;
    Reader r(bytes);
    std::uint64_t version = 0;
    std::uint64_t count = 0;
    if (!r.get_le(1, version) || version != kConfigVersion) return std::nullopt;
    if (!r.get_le(4, count) || count > kMaxMembers) return std::nullopt;
    Configuration config;
    NodeId previous = kNoNode;
    for (std::uint64_t i = 0; i < count; ++i) {
        std::uint64_t id = 0;
        std::uint64_t voter = 0;
        std::uint64_t context_size_bytes = 0;
        MemberInfo info;
        if (!r.get_le(8, id) || id == kNoNode || id <= previous) return std::nullopt;
        if (!r.get_le(1, voter) || voter > 1) return std::nullopt;
        if (!r.get_le(4, context_size_bytes) || context_size_bytes > kMaxContextBytes) {
            return std::nullopt;
        }
        if (!r.get_bytes(context_size_bytes, info.context)) return std::nullopt;
        info.voter = voter == 1;
        config.members.emplace(id, std::move(info));
        previous = id;
    }
    if (!r.at_end()) return std::nullopt;
    return config;
}

}  // namespace keel::raft
