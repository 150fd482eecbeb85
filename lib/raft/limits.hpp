// raft/limits.hpp — fixed upper bounds of the core that are not Options.
//
// Every collection the core builds from outside input has a named limit
// here (STYLE.md: limits on everything); the tests exercise each at its bound.
#pragma once

#include <cstddef>

namespace keel::raft {

// Members of one configuration (voters and learners together).
inline constexpr std::size_t kMaxMembers = 256;
// MemberInfo::context (an address list, for the runtime).
inline constexpr std::size_t kMaxContextBytes = 4096;
// An encoded Configuration can never be longer than this.
inline constexpr std::size_t kMaxConfigBytes = 1 + 4 + kMaxMembers * (8 + 1 + 4 + kMaxContextBytes);

}  // namespace keel::raft
