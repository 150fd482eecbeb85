// runtime/apply_item.hpp — what the apply thread is handed, in log order:
// committed entries with their waiters, a restore, a snapshot to take, or
// the group's own work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <variant>
#include <vector>

#include "keel/node.hpp"
#include "keel/ring_queue.hpp"
#include "keel/state_machine.hpp"
#include "raft/types.hpp"

namespace keel::runtime {

// Someone waiting for an entry to be applied.
struct ApplyWaiter {
    raft::Index index = 0;
    std::function<void(ProposeResult)> done;
    std::uint64_t start_ns = 0;  // monotonic; 0 = do not record latency
};

// What the apply thread does with one queued item, in queue order:
// Committed entries (contiguous, next after the last item's) to apply, and
// those waiting for them.
struct ApplyEntries {
    std::vector<raft::Entry> entries;
    std::vector<ApplyWaiter> waiters;  // ascending by index, each within `entries`
};
// Restore the state machine from a snapshot; `meta` is what it then holds.
struct ApplyRestore {
    std::function<Status(StateMachine&)> restore;
    raft::SnapshotMeta meta;
};
// Take a snapshot: asked for (snapshot_now(), a retry), `done` told the
// outcome; or automatic (the core asked for one:
// raft::Actions::snapshot_wanted), skipped while one is in flight.
struct ApplySnapshot {
    static ApplySnapshot automatic_one() {
        ApplySnapshot s;
        s.automatic = true;
        return s;
    }
    std::function<void(Status)> done;
    bool automatic = false;
    // Take one even if nothing was applied since the last (that one could
    // not be written: the disk was full).
    bool again = false;
};
// The replica's own work, run on the apply thread (the commit, handed over
// by a WAL flusher with more to write).
struct ApplyTask {
    std::function<void()> run;
};
using ApplyItem = std::variant<ApplyEntries, ApplyRestore, ApplySnapshot, ApplyTask>;
// Items in log order, oldest first.
using ApplyItems = RingQueue<ApplyItem>;

// The committed entries `item` carries (0 for any other kind).
inline std::size_t entry_count(const ApplyItem& item) {
    const ApplyEntries* e = std::get_if<ApplyEntries>(&item);
    return e != nullptr ? e->entries.size() : 0;
}

}  // namespace keel::runtime
