// Keys to groups.  See kv_shards.hpp.
#include "kv_shards.hpp"

#include "keel/assert.hpp"

namespace keel::daemon {

GroupId group_of_key(std::string_view key, std::size_t groups) {
    KEEL_ASSERT(groups >= 1, "the group count is validated at start-up");
    // FNV-1a 64: part of the data dir's format, never to change.
    std::uint64_t hash = 14695981039346656037ull;
    for (char c : key) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 1099511628211ull;
    }
    return 1 + hash % groups;
}

}  // namespace keel::daemon
