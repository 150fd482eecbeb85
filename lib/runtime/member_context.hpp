// runtime/member_context.hpp — how a member's addresses travel inside the
// Raft configuration.
//
// The core stores an opaque MemberInfo::context per member and replicates it
// with every configuration entry and snapshot.  The runtime puts the public
// MemberSpec's raft_address and metadata there.  Encoding (little endian):
//   u8 version (=1) | u32 address_bytes | address | u32 metadata_bytes | metadata
// Decoding is bounded and rejects anything malformed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "keel/options.hpp"
#include "keel/status.hpp"
#include "raft/limits.hpp"
#include "raft/types.hpp"

namespace keel::runtime {

inline constexpr std::size_t kMaxAddressBytes = 256;
// The encoded context (version byte, two u32 lengths, address, metadata) must
// fit the core's raft::kMaxContextBytes, whatever the address's length.
inline constexpr std::size_t kMaxMemberMetadataBytes =
    raft::kMaxContextBytes - 9 - kMaxAddressBytes;

// invalid_argument when an address or the metadata exceeds its limit.
Status validate_member(const MemberSpec& spec);

std::string encode_member_context(const MemberSpec& spec);
// Fills raft_address and metadata of a spec; corruption on malformed bytes.
Status decode_member_context(std::string_view bytes, MemberSpec& spec);

// The public view of a member of a core configuration (an undecodable context
// yields empty addresses rather than an error: status must always work).
MemberSpec member_spec(raft::NodeId id, const raft::MemberInfo& info);

// The configuration a new cluster starts with: `members`, or this node alone.
Result<raft::Configuration> initial_configuration(const NodeOptions& options);

}  // namespace keel::runtime
