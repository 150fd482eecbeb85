#include "runtime/member_context.hpp"

#include <fmt/format.h>
#include <cstdint>
#include <cstring>
#include <string>

namespace keel::runtime {

namespace {

constexpr std::uint8_t kContextVersion = 1;

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool get_u32(std::string_view& in, std::uint32_t& v) {
    if (in.size() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(4);
    return true;
}

bool get_bytes(std::string_view& in, std::size_t limit, std::string& out) {
    std::uint32_t n = 0;
    if (!get_u32(in, n) || n > limit || n > in.size()) return false;
    out.assign(in.data(), n);
    in.remove_prefix(n);
    return true;
}

}  // namespace

Status validate_member(const MemberSpec& spec) {
    if (spec.id == 0) return Status(ErrorCode::invalid_argument, "member id must be > 0");
    if (spec.raft_address.size() > kMaxAddressBytes)
        return Status(ErrorCode::invalid_argument, "raft_address longer than 256 bytes");
    if (spec.metadata.size() > kMaxMemberMetadataBytes)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("member metadata larger than {} bytes", kMaxMemberMetadataBytes));
    return Status::ok_status();
}

std::string encode_member_context(const MemberSpec& spec) {
    KEEL_ASSERT(validate_member(spec).ok(), "member specs are validated before encoding");
    std::string out;
    out.reserve(9 + spec.raft_address.size() + spec.metadata.size());
    out.push_back(static_cast<char>(kContextVersion));
    put_u32(out, static_cast<std::uint32_t>(spec.raft_address.size()));
    out += spec.raft_address;
    put_u32(out, static_cast<std::uint32_t>(spec.metadata.size()));
    out += spec.metadata;
    return out;
}

Status decode_member_context(std::string_view in, MemberSpec& spec) {
    if (in.empty() || static_cast<std::uint8_t>(in[0]) != kContextVersion)
        return Status(ErrorCode::corruption, "member context: bad version");
    in.remove_prefix(1);
    if (!get_bytes(in, kMaxAddressBytes, spec.raft_address) ||
        !get_bytes(in, kMaxMemberMetadataBytes, spec.metadata) || !in.empty())
        return Status(ErrorCode::corruption, "member context: malformed");
    return Status::ok_status();
}

MemberSpec member_spec(raft::NodeId id, const raft::MemberInfo& info) {
    MemberSpec spec;
    spec.id = id;
    spec.voter = info.voter;
    if (!decode_member_context(info.context, spec).ok()) {
        spec.raft_address.clear();
        spec.metadata.clear();
    }
    return spec;
}

Result<raft::Configuration> initial_configuration(const NodeOptions& options) {
    raft::Configuration config;
    if (options.initial_members.empty()) {
        MemberSpec self;
        self.id = options.id;
        self.raft_address = options.listen_address;
        if (Status s = validate_member(self); !s.ok()) return s;
        config.members[self.id] = raft::MemberInfo{true, encode_member_context(self)};
        return config;
    }
    for (const MemberSpec& m : options.initial_members) {
        if (Status s = validate_member(m); !s.ok()) return s;
        if (config.contains(m.id))
            return Status(ErrorCode::invalid_argument, "initial_members: duplicate id");
        config.members[m.id] = raft::MemberInfo{m.voter, encode_member_context(m)};
    }
    if (!config.contains(options.id))
        return Status(ErrorCode::invalid_argument, "initial_members must include this node");
    if (config.voter_count() == 0)
        return Status(ErrorCode::invalid_argument, "initial_members has no voter");
    return config;
}

}  // namespace keel::runtime
