// raft/limits.hpp — fixed upper bounds of the core that are not Options.
//
// Every collection the core builds from outside input has a named limit
// here (docs/style.md: limits on everything); the tests exercise each at its bound.
#pragma once

#include <cstddef>
#include <cstdint>

namespace keel::raft {

// Members of one configuration (voters and learners together).
inline constexpr std::size_t kMaxMembers = 256;
// Election timeouts after failed campaigns are drawn from a range at most
// 2^kMaxCampaignBackoff times the base one (election.cpp): with raftd's
// 150-300 ms, up to 150-1,750 ms.
inline constexpr int kMaxCampaignBackoff = 3;
// MemberInfo::context (an address list, for the runtime).
inline constexpr std::size_t kMaxContextBytes = 4096;
// An encoded Configuration can never be longer than this.
inline constexpr std::size_t kMaxConfigBytes = 1 + 4 + kMaxMembers * (8 + 1 + 4 + kMaxContextBytes);

// The largest term and index a message or a restored state may carry (both
// below 2^63).  The core adds to terms (a campaign is term + 1) and to
// indexes (last index + 1, prevLogIndex + entries); a value the network or
// the disk hands it must leave room for that, so that no sum can wrap.  A
// term grows by one per election: 2^63 of them is never reached honestly.
inline constexpr std::uint64_t kMaxTerm = (std::uint64_t{1} << 63) - 1;
inline constexpr std::uint64_t kMaxIndex = (std::uint64_t{1} << 63) - 1;
// A node that took a message's term near kMaxTerm goes past it by its own
// campaigns, one per election timeout at most: a restored hard state may
// hold up to 2^32 more (decades of continuous elections), so that whatever
// a node persisted reopens, and term + 1 still never nears 2^64.
inline constexpr std::uint64_t kMaxRestoredTerm = kMaxTerm + (std::uint64_t{1} << 32);
// Likewise for indexes: a node that took an index near kMaxIndex (a
// snapshot, an append) appends past it; 2^62 more entries is never reached.
inline constexpr std::uint64_t kMaxRestoredIndex = kMaxIndex + (std::uint64_t{1} << 62);
// The largest term a message from an id that is not a member may bring
// (admission.cpp lets a lagging node hear an unknown leader or candidate).
// Far below kMaxTerm: were a stranger able to take every member to
// kMaxTerm, their next election's term would be refused everywhere.
inline constexpr std::uint64_t kMaxTermFromNonMember = (std::uint64_t{1} << 62) - 1;

}  // namespace keel::raft
