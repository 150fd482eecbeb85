// sim/value_log.hpp — the replicated state machine the simulator runs.
//
// Every normal entry carries a unique value and the state is the sequence
// of values applied so far.  Only its digest is kept (count + running hash),
// which is all the checkers need: two nodes with equal digests at an index
// applied the same values in the same order, and a read can be compared
// with the committed prefix at any index.  The snapshot data is this digest.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "raft/types.hpp"
#include "rng.hpp"

namespace keel::sim {

// The identity of an entry's content (type and data), for comparing
// entries without keeping their bytes.
inline std::uint64_t entry_digest(const raft::Entry& e) {
    const auto type = static_cast<std::uint8_t>(e.type);
    return hash_bytes(hash_mix(kHashSeed, type), e.data.data(), e.data.size());
}

class ValueLog {
public:
    ValueLog() = default;
    ValueLog(raft::Index applied, std::uint64_t count, std::uint64_t hash)
        : applied_(applied), count_(count), hash_(hash) {}

    raft::Index applied() const { return applied_; }
    std::uint64_t count() const { return count_; }
    std::uint64_t hash() const { return hash_; }

    // The state after applying entry `index` whose digest is `digest`.
    void apply(raft::Index index, raft::EntryType type, std::uint64_t digest) {
        applied_ = index;
        if (type == raft::EntryType::normal) {
            ++count_;
            hash_ = hash_mix(hash_, digest);
        }
    }

    std::string serialize() const {
        char buf[80];
        std::snprintf(buf, sizeof buf, "%llu:%llu:%llu", (unsigned long long)applied_,
                      (unsigned long long)count_, (unsigned long long)hash_);
        return buf;
    }
    static std::optional<ValueLog> deserialize(std::string_view data) {
        unsigned long long a = 0, c = 0, h = 0;
        std::string s(data);
        if (std::sscanf(s.c_str(), "%llu:%llu:%llu", &a, &c, &h) != 3) return std::nullopt;
        return ValueLog(a, c, h);
    }

    friend bool operator==(const ValueLog&, const ValueLog&) = default;

private:
    raft::Index applied_ = 0;
    std::uint64_t count_ = 0;
    std::uint64_t hash_ = kHashSeed;
};

}  // namespace keel::sim
