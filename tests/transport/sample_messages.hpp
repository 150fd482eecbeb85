// tests/transport/sample_messages.hpp — messages with every field set, for
// round-trip and fuzz tests of the codec and the transports.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "raft/types.hpp"

namespace keel::transport::testing {

inline raft::SnapshotMeta sample_snapshot_meta() {
    raft::SnapshotMeta s;
    s.index = 0x0102030405060708ull;
    s.term = 77;
    s.config.members[1] = raft::MemberInfo{true, "10.0.0.1:7000"};
    s.config.members[2] = raft::MemberInfo{true, ""};
    s.config.members[0xFFFFFFFFFFFFFFFFull] = raft::MemberInfo{false, std::string("\0\xff", 2)};
    return s;
}

// A message of `type` with every field of the flat struct set to a distinct
// non-default value (the codec does not care which fields a type uses).
inline raft::Message sample_message(raft::MessageType type, std::uint64_t seed = 1) {
    raft::Message m;
    m.type = type;
    m.from = 3 + seed;
    m.to = 5 + seed;
    m.term = 0xFFFFFFFFFFFFFFFFull - seed;
    m.log_index = 1000 + seed;
    m.log_term = 9 + seed;
    m.commit = 999 + seed;
    m.index = 1001 + seed;
    m.reject = true;
    m.hint_index = 42 + seed;
    m.hint_term = 8 + seed;
    m.context = 0xDEADBEEFCAFEull + seed;
    m.transfer = true;
    m.quiesce = true;
    m.entries.push_back(raft::Entry{9, 1000, raft::EntryType::normal, "hello"});
    m.entries.push_back(raft::Entry{9, 1001, raft::EntryType::noop, ""});
    m.entries.push_back(raft::Entry{9, 1002, raft::EntryType::config, std::string("\0\1\2", 3)});
    m.snapshot = sample_snapshot_meta();
    return m;
}

inline std::vector<raft::Message> sample_messages_of_every_type() {
    std::vector<raft::Message> out;
    for (int t = 1; t <= 10; ++t)
        out.push_back(sample_message(static_cast<raft::MessageType>(t), t));
    return out;
}

}  // namespace keel::transport::testing
