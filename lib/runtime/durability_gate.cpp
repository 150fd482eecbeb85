// What may leave after which write.  See durability_gate.hpp.
#include "runtime/durability_gate.hpp"

#include <iterator>

#include "keel/assert.hpp"

namespace keel::runtime {

std::uint64_t DurabilityGate::appended(raft::WriteId write) {
    KEEL_ASSERT(write != 0, "an append of the core's entries has a write id");
    in_flight_.push_back(InFlight{++last_seq_, write});
    return last_seq_;
}

std::uint64_t DurabilityGate::reset() {
    in_flight_.push_back(InFlight{++last_seq_, 0});
    return last_seq_;
}

std::uint64_t DurabilityGate::hard_state_queued() {
    in_flight_.push_back(InFlight{++last_seq_, 0});
    hard_state_seq_ = last_seq_;
    return last_seq_;
}

void DurabilityGate::hold_until_durable(std::vector<raft::Message>& messages) {
    if (in_flight_.empty() || messages.empty()) return;
    held_.emplace_back(last_seq_, std::move(messages));
    messages.clear();
}

void DurabilityGate::durable_through(std::uint64_t seq, raft::Core& core,
                                     std::vector<raft::Message>& released) {
    raft::WriteId latest = 0;
    while (!in_flight_.empty() && in_flight_.front().seq <= seq) {
        if (in_flight_.front().write != 0) latest = in_flight_.front().write;
        in_flight_.pop_front();
    }
    if (latest != 0) core.on_persisted(latest);
    if (hard_state_seq_ != 0 && hard_state_seq_ <= seq) hard_state_seq_ = 0;
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

bool DurabilityGate::needs_save(const raft::HardState& hs) {
    const bool changed = hs.term != hard_state_.term || hs.vote != hard_state_.vote;
    hard_state_ = hs;
    return changed || unsaved_;
}

bool DurabilityGate::saved() {
    const bool was_unsaved = unsaved_;
    unsaved_ = false;
    return was_unsaved;
}

}  // namespace keel::runtime
