// raft/actions.hpp — the batch of work the core hands to the runtime.
//
// The core never does I/O.  After any input (step, tick, propose, an
// acknowledgement...) the runtime calls Core::take_actions() and carries the
// batch out, in this order:
//
//   1. If `snapshot` is set: install it (restore the state machine from the
//      staged snapshot data, persist the snapshot marker, drop the stored
//      log) before anything else.
//   2. If `hard_state` is set and its term or vote changed: make it durable
//      *before sending any message of this batch* (Figure 2: persist
//      currentTerm/votedFor before responding to RPCs).  A change of commit
//      alone may be persisted lazily.
//   3. If `entries` is non-empty: truncate the stored log after
//      entries.front().index - 1 (when it goes that far) and append them,
//      asynchronously, after every write of earlier batches; once durable
//      call Core::on_persisted(write_id).  Writes must become durable in the
//      order they were taken, the truncation before the append (a WAL
//      does that).  Report by write_id, never by the last entry's
//      (index, term): after a truncation and a re-append the log can hold
//      the same (index, term) from two writes, and only the second vouches
//      for what the log holds now.
//   4. Send `messages` at once (a leader replicates in parallel with its
//      own append).  Send `messages_after_persist` only once step 3 is
//      durable — and every append of earlier batches too, even when this
//      batch has no entries (a follower may not acknowledge entries it could
//      still lose; a granted vote waits for the hard state the same way).
//   5. Apply `committed_entries` in order (they are contiguous and start at
//      the last applied index + 1), then call Core::on_applied(index).
//      Serve each ReadState once applied >= its index.
//   6. If `snapshot_wanted`: snapshot the state machine once it has applied
//      the entries above, and report it with Core::on_snapshot_taken().
//
// Actions are values: the runtime may move them to other threads.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "raft/types.hpp"

namespace keel::raft {

enum class Role : std::uint8_t { follower = 1, pre_candidate = 2, candidate = 3, leader = 4 };

const char* role_name(Role role);

// Volatile state worth reporting when it changes (leadership, role, term,
// quiescence).
struct SoftState {
    Role role = Role::follower;
    NodeId leader = kNoNode;
    Term term = 0;
    // The group is quiescent here (Options::quiesce): this core needs no
    // tick() until an input wakes it (Core::needs_ticks()).
    bool quiescent = false;

    friend bool operator==(const SoftState&, const SoftState&) = default;
};

// The answer to read_index(request_id): once the local state machine has
// applied `index`, a read started before the request reflects every write
// committed before it (linearizable).
struct ReadState {
    std::uint64_t request_id = 0;
    Index index = 0;
};

// A read_index request that can no longer be answered here (leadership was
// lost, or this node is not the leader); the runtime fails the caller.
struct ReadFailure {
    std::uint64_t request_id = 0;
    NodeId leader_hint = kNoNode;
};

struct Actions {
    std::optional<SoftState> soft_state;  // set when role, leader or term changed
    // Set when term, vote or commit changed.  Its commit is capped at the
    // persisted index, so a restart never finds a commit beyond its log.
    std::optional<HardState> hard_state;
    std::optional<SnapshotMeta> snapshot;         // a snapshot from the leader to install
    std::vector<Entry> entries;                   // to append to stable storage
    WriteId write_id = 0;                         // names that write (0 if none): on_persisted
    std::vector<Message> messages;                // send now
    std::vector<Message> messages_after_persist;  // send once `entries`/hard state are durable
    std::vector<Entry> committed_entries;         // to apply, in order
    std::vector<ReadState> read_states;           // ReadIndex results
    std::vector<ReadFailure> read_failures;       // ReadIndex requests that failed
    std::optional<Configuration> configuration;   // set when the effective configuration changed
    // A follower needs entries this leader dropped from memory (a member
    // added after they were stored everywhere: Options::forget_stored_everywhere,
    // or compacted on a durable state machine's word) and no snapshot covers them: take
    // a snapshot of the state machine (at its applied index, which covers
    // them) and report it with Core::on_snapshot_taken(), which sends it.
    // Set again while the follower still waits; one snapshot at a time is
    // enough.
    bool snapshot_wanted = false;

    bool empty() const {
        return !soft_state && !hard_state && !snapshot && entries.empty() && write_id == 0 &&
               messages.empty() && messages_after_persist.empty() && committed_entries.empty() &&
               read_states.empty() && read_failures.empty() && !configuration && !snapshot_wanted;
    }
};

}  // namespace keel::raft
