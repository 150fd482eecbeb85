// tests/runtime/snapshot_support.hpp — snapshots of a lone voter (node 1,
// term 1) written straight into a SnapshotStore, for the tests of where and
// how durably the store keeps them.
#pragma once

#include <catch2/catch.hpp>

#include <cstddef>
#include <string>

#include "runtime/snapshot_store.hpp"

namespace keel::test {

inline raft::SnapshotMeta lone_voter_snapshot_meta(raft::Index index) {
    raft::SnapshotMeta meta;
    meta.index = index;
    meta.term = 1;
    meta.config.members[1] = raft::MemberInfo{true, "node-1"};
    return meta;
}

// Writes "state as of <index>" (and `padding` more bytes) and publishes it
// at `index`; the caller checks the result.
inline Result<runtime::SnapshotFile> write_and_publish(runtime::SnapshotStore& store,
                                                       raft::Index index,
                                                       runtime::Durability durability,
                                                       std::size_t padding = 0) {
    auto writer = store.begin();
    REQUIRE(writer.ok());
    REQUIRE((*writer)->write("state as of " + std::to_string(index) + std::string(padding, 's'))
                .ok());
    return store.publish(**writer, lone_voter_snapshot_meta(index), durability);
}

}  // namespace keel::test
