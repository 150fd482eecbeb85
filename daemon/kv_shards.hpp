// daemon/kv_shards.hpp — which Raft group holds a key, with raftd --groups N.
//
// Key k belongs to group 1 + fnv1a64(k) mod N, where fnv1a64 is the 64-bit
// FNV-1a hash of the key's bytes (offset basis 14695981039346656037, prime
// 1099511628211).  The mapping is part of the data dir's format: N is fixed
// when the data dir is created (identity.hpp, raftd.groups) and this
// function must never change, or keys would be looked for in a group that
// does not hold them.  Without --groups there is one node and no mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keel/node.hpp"
#include "keel/transport.hpp"

namespace keel::daemon {

class KvStateMachine;

// The most groups raftd --groups accepts: each group is a Raft core, a map
// and (today) an apply and an observer thread, and the shared WAL's table of
// hard states holds some 15,000 rows (docs/groups.md).
inline constexpr std::size_t kGroupsMax = 10000;

// The group (1..groups) that holds `key`.  REQUIRES: groups >= 1.
GroupId group_of_key(std::string_view key, std::size_t groups);

// One group of the key space and its map; id 0 is the lone node of a raftd
// without --groups.  The pointers are not owned.
struct KvGroup {
    GroupId id = 0;
    Node* node = nullptr;
    KvStateMachine* kv = nullptr;

    // Its position in a list of groups (and in a ProposalBatcher).
    std::size_t index() const { return id == 0 ? 0 : static_cast<std::size_t>(id - 1); }
};

}  // namespace keel::daemon
