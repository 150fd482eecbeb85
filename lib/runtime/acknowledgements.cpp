#include "runtime/acknowledgements.hpp"

#include <utility>

namespace keel::runtime {

namespace {
bool is_acknowledgement(const raft::Message& m) {
    return m.type == raft::MessageType::append_response && !m.reject;
}
}  // namespace

void coalesce_acknowledgements(std::vector<raft::Message>& messages) {
    // A handful of messages per fsync: the quadratic scan is cheaper than an index.
    auto superseded = [&](std::size_t i) {
        const raft::Message& m = messages[i];
        if (!is_acknowledgement(m)) return false;
        for (std::size_t j = i + 1; j < messages.size(); ++j) {
            const raft::Message& later = messages[j];
            if (is_acknowledgement(later) && later.to == m.to && later.term == m.term &&
                later.index >= m.index)
                return true;
        }
        return false;
    };
    std::size_t kept = 0;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        if (superseded(i)) continue;
        if (kept != i) messages[kept] = std::move(messages[i]);
        ++kept;
    }
    messages.resize(kept);
}

}  // namespace keel::runtime
