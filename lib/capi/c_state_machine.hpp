// capi/c_state_machine.hpp — a keel::StateMachine made of the C callbacks of
// a keel_state_machine (keel/keel_c.h), and the opaque handles those
// callbacks receive (keel_results, keel_snapshot_writer, keel_snapshot_reader).
//
// keel calls apply, snapshot and restore one at a time; this adapter adds no
// lock and no thread.  A snapshot is taken in the callbacks' two steps:
// snapshot() calls snapshot_capture on the apply thread and returns a
// function that calls snapshot_write on the background thread; the image
// lives in a shared holder that calls snapshot_release when the last copy
// of that function is gone (the background worker drops it after writing,
// or at close).  Without snapshot_capture, snapshot() calls snapshot_write
// itself into a memory buffer, and the function writes the buffer out.
#pragma once

#include <vector>

#include "keel/keel_c.h"
#include "keel/state_machine.hpp"

namespace keel::capi {

class CStateMachine final : public StateMachine {
public:
    // REQUIRES: callbacks.apply, snapshot_write and restore are not null
    // (keel_node_open checks).
    explicit CStateMachine(const keel_state_machine& callbacks) : c_(callbacks) {}

    void apply(const std::vector<CommittedEntry>& entries,
               std::vector<std::string>& results) override;
    SnapshotFunction snapshot() override;
    Status restore(SnapshotReader& reader) override;

private:
    SnapshotFunction snapshot_buffered();

    const keel_state_machine c_;
    std::vector<keel_entry> entries_;  // reused by apply (the apply thread's only)
};

}  // namespace keel::capi
