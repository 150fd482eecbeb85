#include "runtime/write_tracker.hpp"

#include <iterator>
#include <optional>

namespace keel::runtime {

std::uint64_t WriteTracker::appended(raft::Index last_index, raft::Term last_term) {
    in_flight_.push_back(InFlight{++last_seq_, last_index, last_term});
    return last_seq_;
}

std::uint64_t WriteTracker::reset() {
    in_flight_.push_back(InFlight{++last_seq_, 0, 0});
    return last_seq_;
}

void WriteTracker::hold_until_durable(std::vector<raft::Message>& messages) {
    if (in_flight_.empty() || messages.empty()) return;
    held_.emplace_back(last_seq_, std::move(messages));
    messages.clear();
}

void WriteTracker::durable_through(std::uint64_t seq, raft::Core& core,
                                   std::vector<raft::Message>& released) {
    std::optional<InFlight> last;
    while (!in_flight_.empty() && in_flight_.front().seq <= seq) {
        if (in_flight_.front().index != 0) last = in_flight_.front();
        in_flight_.pop_front();
    }
    if (last) core.on_persisted(last->index, last->term);
    while (!held_.empty() && held_.front().first <= seq) {
        std::vector<raft::Message>& batch = held_.front().second;
        if (released.empty()) {
            released = std::move(batch);
        } else {
            std::move(batch.begin(), batch.end(), std::back_inserter(released));
        }
        held_.pop_front();
    }
}

}  // namespace keel::runtime
