// raft/core.hpp — Raft as a pure, deterministic state machine.
//
// The Core implements the Raft algorithm (election, PreVote, CheckQuorum,
// log replication with flow control, ReadIndex, leadership transfer,
// single-server membership change, snapshots) with no I/O, no threads, no
// clock and no randomness of its own: the only randomness comes from a
// generator seeded with Options::random_seed.  The same state and the same
// inputs always give the same Actions, which is what lets tests/sim drive
// millions of interleavings.
//
// Threading: a Core is not thread-safe; one thread (the runtime's I/O
// thread, or the simulator) calls everything.
//
// Time: tick() is one logical time unit; only the caller decides when ticks
// happen.  With a single voter (itself), a node needs no ticks at all: it
// becomes leader at once and commits each entry as soon as on_persisted()
// says it is durable locally.  needs_ticks() tells the runtime's mode
// detector when it may stop its timer.
//
// Quiescence (Options::quiesce; docs/groups.md, "Quiescence and liveness"):
// an idle group needs no ticks either.  A leader whose followers have all
// acknowledged its whole log, with nothing in flight, sends them a last
// heartbeat marked quiesce and stops heartbeating and checking its quorum;
// a follower that holds everything that heartbeat names stops its election
// timer.  Both report SoftState::quiescent and needs_ticks() == false, and
// ignore tick().  Liveness then belongs to the host: one heartbeat per peer
// process, not per group, and peer_down() when a peer process stops
// answering.  What wakes a quiescent core:
//   - on a leader: propose, propose_config_change, read_index,
//     transfer_leadership; any message of its term or a later one (a
//     member that is not quiescent wants it); peer_down() of a member;
//   - on a follower: any message from its leader but the quiesce heartbeat
//     (or a heartbeat older than it), a (pre-)vote request from its leader,
//     a message of a later term; peer_down() of its leader, after which it
//     campaigns (PreVote as usual; with lease_reads, only once its
//     promise not to vote has run out, i.e. after an election timeout).
// Quiescence changes only timers: no Raft rule depends on it.  A leader's
// lease (lease_reads) is dropped when it quiesces, since its clock stops:
// only heartbeats sent after it wakes can support a lease again.
//
// Log ownership: the core keeps every entry after its latest snapshot in
// memory (it serves lagging followers from it).  The runtime persists what
// Actions::entries tells it to and reloads it through RestoredState.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keel/status.hpp"
#include "raft/actions.hpp"
#include "raft/peer_progress.hpp"
#include "raft/refusal.hpp"
#include "raft/types.hpp"

namespace keel::raft {

struct Options {
    NodeId id = kNoNode;

    // Election timeout: a follower that hears from no leader for a number of
    // ticks drawn uniformly from [election_ticks_min, election_ticks_max]
    // becomes a (pre-)candidate.  Must exceed heartbeat_ticks.
    int election_ticks_min = 10;
    int election_ticks_max = 20;
    int heartbeat_ticks = 1;

    bool pre_vote = true;
    // A leader that has not heard from a quorum within an election timeout
    // steps down; followers that heard from a leader within the minimum
    // election timeout ignore (pre-)votes (leader stickiness).
    bool check_quorum = true;
    // Lease-based reads (no heartbeat round per read) rely on bounded clock
    // drift; off unless explicitly enabled.  Requires check_quorum.  With
    // it, a voter gives no vote within election_ticks_min ticks of hearing
    // from a leader or of starting up (docs/raft.md, "Lease reads").
    bool lease_reads = false;
    // TEST ONLY: breaks Figure 8's rule (§5.4.2) by letting the leader commit
    // an entry of an older term by counting its replicas, to prove the
    // simulator catches it (sim_catches_commit_older_term).  Never set it.
    bool unsafe_commit_older_terms = false;

    // Flow control per follower.
    std::size_t max_inflight_messages = 256;  // append messages in flight in replicate state
    std::size_t max_message_bytes = 1 << 20;  // entry bytes per append message (at least one entry)
    std::size_t max_uncommitted_bytes = 64 << 20;  // leader refuses proposals past this (busy)
    std::size_t max_proposal_bytes = 64 << 20;     // one entry's data
    // Entry data handed out per batch as committed_entries (at least one entry).
    std::size_t max_committed_bytes_per_batch = 16 << 20;
    // ReadIndex requests a leader holds unanswered; read_index() is busy past it.
    std::size_t max_pending_reads = 4096;

    // On on_snapshot_taken(i), keep this many entries before i in memory so
    // slightly lagging followers still get entries rather than a snapshot.
    std::size_t snapshot_trailing_entries = 1024;
    // A member drops an entry from memory once it has applied it and every
    // member of the configuration has it durable (it stays in storage; no
    // one will ask for it again): the leader knows the latter as the least
    // of its own durable index, its commit index and every follower's match,
    // voters and learners alike, and tells its followers in appends and
    // heartbeats.  A lone leader thus drops each entry once applied.
    // Otherwise the in-memory log grows with every entry until a snapshot
    // compacts it.  A member that needs dropped entries later (one added
    // since) is sent a snapshot the runtime takes on demand
    // (Actions::snapshot_wanted).  docs/raft.md, "Forgetting what every
    // member stored".
    bool forget_stored_everywhere = true;
    // TEST ONLY: a leader counts what it has durable and committed as stored
    // everywhere, whatever its followers hold (dropping too early), to prove
    // the simulator catches it (sim_catches_forget_unstored).  Never set it.
    bool unsafe_forget_unstored = false;

    // Quiescence (see the top of this file): off by default, for every
    // member of a group alike (a follower with it off declines the leader's
    // quiesce heartbeat, which wakes the leader again).
    bool quiesce = false;
    // A leader quiesces once the conditions hold for this many consecutive
    // ticks (a group that goes idle and busy at once would flap otherwise).
    int quiesce_after_ticks = 6;

    std::uint64_t random_seed = 1;
};

// What a node starts from: everything the runtime recovered from disk.
// A brand-new cluster member is bootstrapped with bootstrap() below; a node
// that joins an existing cluster starts from an empty RestoredState and
// waits to be contacted by the leader.
struct RestoredState {
    HardState hard_state;
    std::optional<SnapshotMeta> snapshot;  // latest snapshot, if any
    std::vector<Entry> entries;            // stored log after the snapshot, contiguous
    Index applied = 0;                     // what the state machine already reflects (>= snapshot)
    // `snapshot` is only where the stored log was compacted on a durable
    // state machine's word (Core::on_state_machine_durable): no snapshot
    // file holds that state.  A follower that needs it gets one taken on
    // demand.
    bool snapshot_is_floor = false;
};

// The initial state of every founding member of a new cluster: one config
// entry at index 1, term 1 holding `initial`, committed (every founder
// writes the same entry, so it is in every log).  Like any RestoredState it
// counts as durable: the runtime writes it to storage before (or instead of
// having) a Core built from it acknowledges anything.
RestoredState bootstrap(const Configuration& initial);

// Checks what the runtime read back from disk before a Core is built from
// it (the constructor asserts all of it): terms and indexes at most
// kMaxRestoredTerm / kMaxRestoredIndex (what a node that took a message's
// term or index near kMaxTerm / kMaxIndex may have reached since), the
// snapshot's configuration within the limits,
// entries contiguous after the snapshot with terms never decreasing and
// none newer than the hard state, configuration entries that decode, the
// commit and applied indexes within the log.  corruption says which fails:
// such a data dir cannot be opened (admission.cpp).
Status validate_restored(const RestoredState& restored);

// Result of propose()/propose_config_change().
struct Proposed {
    Index index = 0;  // where the entry was appended
    Term term = 0;    // with this term; it is committed iff the entry at index keeps this term
};

class Core {
public:
    Core(const Options& options, RestoredState restored);
    ~Core();
    Core(const Core&) = delete;
    Core& operator=(const Core&) = delete;
    Core(Core&&) noexcept;
    Core& operator=(Core&&) noexcept;

    // ---- inputs ----------------------------------------------------------
    // A message from another node, from outside the process: anything may
    // be in it.  Refused, touching nothing (refusal.hpp: the Status names
    // the reason, refusal_reason() extracts it for counting): a field out of
    // range (a term or index at or above 2^63, an acknowledgement past this
    // leader's log), a malformed message (entries out of order, a
    // configuration that does not decode or has no voter), and a sender this
    // node does not know as a member (admission.cpp says exactly which
    // strangers are still heard: a leader a lagging node does not know yet).
    // Stale messages are dropped as Raft drops them, with a non-ok Status
    // that is no refusal.  Never an error that needs handling.
    Status step(const Message& message);
    // One logical time unit.
    void tick();
    // `ticks` logical time units at once: exactly what calling tick() that
    // many times would do, output included.  The ticks that do nothing but
    // count (ticks_until_due) cost a few additions together.
    void tick(std::uint64_t ticks);

    // Append a user entry.  Fails fast with not_leader ("not leader (leader
    // is 3)") on a non-leader, busy while a leadership transfer is under way
    // or past max_uncommitted_bytes, too_large past max_proposal_bytes.
    // The log, the actions and the runtime share `data` (no copy).
    Result<Proposed> propose(SharedBytes data);
    // Add/remove/promote one member.  Accepted only on a leader that has
    // committed an entry of its own term and has no other configuration
    // change uncommitted; rejects changes that would leave no voter.
    Result<Proposed> propose_config_change(const ConfigChange& change);
    // Start a linearizable read; the answer arrives as a ReadState (or a
    // ReadFailure) in a later batch.  On a single-voter leader that has
    // committed an entry of its term it is answered immediately.
    // A non-ok Status means the request was not accepted and nothing more is
    // reported for it: not_leader ("not leader (leader is 3)"; leader() gives
    // the hint) fails fast on a non-leader, busy past max_pending_reads.
    Status read_index(std::uint64_t request_id);
    // Hand leadership to `target`: stop accepting proposals, catch the target
    // up, then send it timeout_now.  Aborted after an election timeout.
    Status transfer_leadership(NodeId target);

    // ---- acknowledgements from the runtime --------------------------------
    // The write Actions::write_id == `write` is durable, and so is every
    // write taken before it (writes become durable in the order they were
    // taken).  It vouches for the entries it wrote that no later truncation
    // or snapshot install has replaced in the log since; a repeated or older
    // report is ignored.  REQUIRES: `write` was taken from this Core.
    void on_persisted(WriteId write);
    // The state machine has applied everything up to `index`.
    void on_applied(Index index);
    // The state machine took a snapshot at `index` (<= applied).  Returns its
    // metadata (term, configuration) for the runtime to store with the data;
    // the in-memory log before index - snapshot_trailing_entries is dropped.
    // A leader then sends it to any follower that waited for it
    // (Actions::snapshot_wanted).
    Result<SnapshotMeta> on_snapshot_taken(Index index);
    // The state machine has made everything up to `index` (<= applied)
    // durable itself (keel/state_machine.hpp, StateMachine::applied_index):
    // the in-memory log before index - snapshot_trailing_entries is dropped,
    // no snapshot needed.  A follower that needs a dropped entry is sent a
    // snapshot the runtime takes on demand (Actions::snapshot_wanted).
    // Returns where the log may be compacted in storage: index, its term and
    // the configuration as of it, for the runtime to record before it drops
    // the stored entries (RestoredState::snapshot_is_floor at restart).
    Result<SnapshotMeta> on_state_machine_durable(Index index);
    // The transport could not reach `peer` (connection refused, dropped
    // message): replication to it falls back to probing.
    void report_unreachable(NodeId peer);
    // Streaming the snapshot to `peer` finished (ok) or failed.
    void report_snapshot(NodeId peer, bool ok);
    // The host's liveness service declared the process of member `peer`
    // down (it missed that process's heartbeats for a timeout; one
    // heartbeat per process serves all its groups).  A quiescent follower
    // whose leader is `peer` wakes and campaigns (with lease_reads, once an
    // election timeout has passed); a leader wakes if quiescent, and will
    // not quiesce again before `peer` answers it, so that CheckQuorum runs
    // meanwhile.  Ignored otherwise (a follower that is awake has its own
    // timer).  A wrong verdict costs an election at worst, never safety.
    void peer_down(NodeId peer);

    // ---- output ------------------------------------------------------------
    bool has_actions() const;
    // A leader's appends to followers are formed here, for everything
    // proposed since the last batch (one message per follower, not one per
    // proposal; see docs/raft.md "Batching to followers").
    Actions take_actions();
    // The same into `out`, which must be empty; the capacity its vectors
    // hold is reused (the runtime recycles them: keel/spare_vectors.hpp).
    void take_actions(Actions& out);

    // ---- inspection (status, mode detector, tests) --------------------------
    NodeId id() const;
    Role role() const;
    Term term() const;
    NodeId leader() const;
    NodeId vote() const;
    Index commit_index() const;
    Index applied_index() const;
    // First entry held in memory: after a compaction, the snapshot index + 1
    // (minus the trailing entries); once entries are stored everywhere,
    // up to the applied index + 1 (Options::forget_stored_everywhere).
    Index first_index() const;
    // The index through which every member of the configuration (as of when
    // a leader established it) holds the log durably, as far as this node
    // knows: computed on a leader, told by the leader on a follower.  Never
    // decreases within one incarnation; 0 after a restart.
    Index stored_everywhere() const;
    Index last_index() const;
    Index persisted_index() const;                   // last entry acknowledged durable
    std::optional<Term> term_at(Index index) const;  // nullopt if compacted away or beyond the log
    std::vector<Entry> entries(Index from, Index to_exclusive) const;  // from the in-memory log
    const Configuration& configuration() const;    // effective (latest in the log)
    std::optional<SnapshotMeta> snapshot() const;  // latest snapshot known to the core
    // The leader's view of replication (peer_progress.hpp), one entry per node
    // it replicates to — every member of its latest configuration, plus any
    // member whose removal is not yet committed — and one for itself (match =
    // persisted_index(), state replicate), even when it is removing itself;
    // sorted by id.  Empty unless role() is leader: a follower or candidate
    // tracks no one's log.  A copy, stale after the next input to the core.
    std::vector<PeerProgress> progress() const;
    // One member's match of progress() without the copy (the runtime's
    // status after every batch): 0 unless role() is leader and it
    // replicates to `id`; its persisted_index() for itself.
    Index match_index(NodeId id) const;
    // Whether the leader replicates to `id` (its progress is in replicate:
    // not probing it since report_unreachable or a rejection, not sending
    // it a snapshot); true for itself; false unless role() is leader.
    bool replicating(NodeId id) const;
    // False when this node is the only member (a voter) and leads, or when
    // it is quiescent: the runtime may then run without a tick timer.  (A
    // lone voter deposed by a higher term takes leadership back within the
    // same step, so it never waits for a tick.)
    bool needs_ticks() const;
    // Quiescent (Options::quiesce): ticks are ignored until an input wakes
    // it.  Reported in SoftState::quiescent as well.
    bool quiescent() const;
    // How many ticks, at least 1, until one may do more than move the
    // clocks (campaign, poke a quiet leader, CheckQuorum, heartbeat, abort
    // a transfer, count towards quiescence), if no other input comes first;
    // kNeverDue while quiescent.  A runtime may hold back the ticks before
    // that one, provided it hands them over (tick(n)) before any other
    // input: the core then behaves exactly as if ticked one by one
    // (docs/decisions/0041-idle-ticks.md).  The answer changes with every
    // input: ask again after each.
    std::uint64_t ticks_until_due() const;
    static constexpr std::uint64_t kNeverDue = UINT64_MAX;

private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace keel::raft
