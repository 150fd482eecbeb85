#include "runtime/acknowledgements.hpp"

#include <utility>

namespace keel::runtime {

namespace {
bool is_acknowledgement(const raft::Message& m) {
    return m.type == raft::MessageType::append_response && !m.reject;
}
}  // namespace

std::vector<raft::Message> coalesce_acknowledgements(std::vector<raft::Message> messages) {
    if (messages.size() < 2) return messages;
    std::vector<raft::Message> out;
    out.reserve(messages.size());
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const raft::Message& m = messages[i];
        bool superseded = false;
        // A handful of messages per fsync: the quadratic scan is cheaper than an index.
        for (std::size_t j = i + 1; is_acknowledgement(m) && j < messages.size() && !superseded;
             ++j) {
            const raft::Message& later = messages[j];
            superseded = is_acknowledgement(later) && later.to == m.to && later.term == m.term &&
                         later.index >= m.index;
        }
        if (!superseded) out.push_back(std::move(messages[i]));
    }
    return out;
}

}  // namespace keel::runtime
