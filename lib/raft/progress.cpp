// raft/progress.cpp — see progress.hpp.
#include "raft/progress.hpp"

#include <algorithm>

#include "keel/assert.hpp"

namespace keel::raft {

void Inflights::add(Index last_index) {
    KEEL_ASSERT(!full(), "sending past the in-flight limit");
    KEEL_ASSERT(queue_.empty() || queue_.back() < last_index, "in-flight appends are increasing");
    queue_.push_back(last_index);
}

void Inflights::free_up_to(Index index) {
    while (!queue_.empty() && queue_.front() <= index) queue_.pop_front();
}

void Inflights::free_first_one() {
    if (!queue_.empty()) queue_.pop_front();
}

void Progress::become_probe() {
    if (state == State::snapshot) {
        // The snapshot may have landed: resume after whichever is further.
        next = std::max(match + 1, pending_snapshot + 1);
    } else {
        next = match + 1;
    }
    state = State::probe;
    ++phase;
    probe_sent = false;
    pending_snapshot = 0;
    inflights.reset();
}

void Progress::become_replicate() {
    state = State::replicate;
    ++phase;
    next = match + 1;
    probe_sent = false;
    pending_snapshot = 0;
    inflights.reset();
}

void Progress::become_snapshot(Index snapshot_index) {
    state = State::snapshot;
    ++phase;
    pending_snapshot = snapshot_index;
    probe_sent = false;
    inflights.reset();
}

bool Progress::maybe_update(Index index) {
    bool updated = false;
    if (match < index) {
        match = index;
        updated = true;
        probe_sent = false;
    }
    next = std::max(next, index + 1);
    return updated;
}

bool Progress::maybe_decrease_to(Index rejected, Index hint_index) {
    if (state == State::replicate) {
        // Stale if the follower already matched past the rejected index.
        if (rejected <= match) return false;
        next = match + 1;
        return true;
    }
    // In probe only the answer to the last probe counts.
    if (next == 0 || next - 1 != rejected) return false;
    next = std::max(std::min(rejected, hint_index + 1), match + 1);
    probe_sent = false;
    KEEL_ASSERT(match < next, "progress: match < next");
    return true;
}

bool Progress::is_paused() const {
    switch (state) {
        case State::probe:
            return probe_sent;
        case State::replicate:
            return inflights.full();
        case State::snapshot:
            return true;
    }
    KEEL_UNREACHABLE("progress state");
}

const char* progress_state_name(ProgressState state) {
    switch (state) {
        case ProgressState::probe:
            return "probe";
        case ProgressState::replicate:
            return "replicate";
        case ProgressState::snapshot:
            return "snapshot";
    }
    return "unknown";
}

}  // namespace keel::raft
