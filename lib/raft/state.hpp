// raft/state.hpp — the private state of a Core and the functions that
// implement each part of the algorithm.  Each group of member functions
// lives in its own file (named in the comment above it); step.cpp holds
// a message's dispatch, core.cpp the assembly of Actions.  Private to lib/raft.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "keel/ring_queue.hpp"
#include "raft/config_history.hpp"
#include "raft/core.hpp"
#include "raft/log.hpp"
#include "raft/progress.hpp"

namespace keel::raft {

// One ReadIndex round: requests answered once a quorum acknowledged the
// heartbeat `seq` (the one broadcast to start the round) or a later one.
struct ReadRound {
    std::uint64_t seq = 0;
    Index index = 0;  // the commit index when the round started
    std::vector<std::uint64_t> request_ids;
};

// A heartbeat broadcast by this leader: its context and the tick it left at.
struct HeartbeatSent {
    std::uint64_t seq = 0;
    std::int64_t tick = 0;
};

// Checks of a message's fields that need no state (admission.cpp).
Status validate_message(const Message& m, NodeId self);
// Messages that only a leader of m.term sends (step.cpp).
bool from_leader(const Message& m);

struct Core::State {
    State(const Options& options, RestoredState restored);

    // ---- fixed --------------------------------------------------------------
    Options opt;
    std::mt19937_64 rng;

    // ---- persistent (Figure 2): term and vote, and the log ------------------
    Term term = 0;
    NodeId vote = kNoNode;
    RaftLog log;
    ConfigHistory configs;
    std::optional<SnapshotMeta> snapshot;  // latest snapshot known here

    // ---- volatile -------------------------------------------------------------
    Role role = Role::follower;
    NodeId leader = kNoNode;
    std::map<NodeId, bool> votes;  // candidate / pre-candidate: voter -> granted

    // The clocks, in ticks (election.cpp).
    struct Clocks {
        int election_elapsed_ticks = 0;
        int heartbeat_elapsed_ticks = 0;
        int randomized_election_ticks = 0;
        // Ticks since this core started (any role): the leader's lease clock.
        std::int64_t ticks = 0;
        // Ticks since a leader last reached this node, counted from start-up
        // (a voter may have acknowledged a heartbeat just before it
        // restarted) and never reset by a change of term or role.  With
        // lease_reads, a voter gives no vote while it is below
        // election_ticks_min: that is the promise a leader's lease rests on
        // (lease_held, read_index.cpp).
        int ticks_since_leader_contact = 0;
        // Campaigns this node's election timer started since it last heard
        // a leader or won (capped): each one after the first widens the
        // range the next timeout is drawn from (randomize_election_timeout).
        int campaigns_without_leader = 0;
    };
    Clocks clocks;

    // Quiescence (quiescence.cpp): ticks are ignored while `quiescent`.
    struct Quiescence {
        bool quiescent = false;
        // Leader: consecutive ticks that may_quiesce() held
        // (Options::quiesce_after_ticks).
        int quiet_ticks = 0;
        // The context (heartbeat sequence number) of the quiesce heartbeat
        // this leader sent last, or this follower obeyed last, in this term:
        // what was sent before it and arrives late is no news.
        std::uint64_t quiesce_seq = 0;
        // Follower: the leader's last index when this follower last quiesced.
        Index quiesce_index = 0;
    };
    Quiescence quiet;

    // ---- leader ---------------------------------------------------------------
    std::map<NodeId, Progress> progress;  // every member but this node

    // The leader's term: its start, its durability and what it has in flight
    // (replication.cpp, election.cpp).
    struct LeaderTerm {
        // Whether a quorum of voters was heard from within the last full
        // election timeout (checked every election_ticks_min ticks, with or
        // without CheckQuorum): a leader that was not is out of contact.
        bool quorum_heard = true;
        Index term_start_index = 0;  // index of this term's no-op
        // False while a leader elected by its own vote alone has not seen
        // that vote (the batch with its hard state and no-op) become durable.
        bool term_durable = true;
        std::size_t uncommitted_bytes = 0;
        // Entries appended by append_own() not yet offered to the followers
        // (send_pending_appends, when the batch is taken).
        bool appends_pending = false;
        // The commit index advanced and some follower may not have been told
        // yet (send_pending_appends; Progress::commit_sent says who was).
        // Not derived from commit_sent: a follower paused by flow control
        // cannot be told until its window opens (its next append carries the
        // commit), and the news must not keep has_actions() true meanwhile.
        bool commit_news_pending = false;
    };
    LeaderTerm lead;

    // A leadership transfer in progress (transfer.cpp).
    struct LeadershipTransfer {
        NodeId target = kNoNode;
        int elapsed_ticks = 0;  // the transfer is aborted at election_ticks_min
        // Set once this leader sent timeout_now in its term: the target may
        // win a forced election (voters ignore leases for it) at any moment,
        // even after the transfer is aborted here, so the lease no longer
        // holds.
        bool lease_forfeited = false;
    };
    LeadershipTransfer leadership_transfer;

    // Linearizable reads (read_index.cpp).
    struct Reads {
        // Every heartbeat broadcast carries a new sequence number as its
        // context (never reset, so contexts never repeat across terms); a
        // follower's acknowledgement of one confirms this leader as of its
        // sending, for every ReadIndex round started before it and for the
        // lease.
        std::uint64_t heartbeat_seq = 0;
        RingQueue<HeartbeatSent> heartbeats_sent;  // the recent ones, oldest first
        RingQueue<ReadRound> read_rounds;          // oldest first
        std::vector<std::uint64_t> reads_waiting;  // until an entry of this term commits
        std::size_t pending_read_count = 0;
    };
    Reads reads;

    // Whether a follower that gets no append in this batch is told the
    // commit index now, in an append of its own (see on_commit_advanced).
    bool commit_news_due() const;
    // The commit index alone to `to` (replication.cpp).
    void send_commit_news(NodeId to, Progress& pr);
    void commit_news_after_answer(NodeId from, Progress& pr);
    // Whether a lagging follower's heartbeat answer calls for an append.
    bool append_due_on_answer(const Progress& pr) const;

    // Compaction without a snapshot behind it (snapshot.cpp).
    struct Compaction {
        // Terms of the entries forget_stored_everywhere() dropped that no
        // snapshot covers yet, as (first index, term) runs, ascending: a
        // snapshot the runtime took at an index dropped since still needs
        // its term (on_snapshot_taken).  One run per term, so a handful.
        std::vector<std::pair<Index, Term>> forgotten_terms;
        // The log was compacted on a durable state machine's word, behind no
        // snapshot (on_state_machine_durable,
        // RestoredState::snapshot_is_floor): a follower that needs what was
        // dropped is sent a snapshot taken on demand (snapshot_wanted).
        bool compacted_without_snapshot = false;
        // Core::stored_everywhere(): raised by a leader's count
        // (raise_stored_everywhere), or by what a leader tells (appends
        // and heartbeats carry it in Message::index).
        Index stored_everywhere = 0;
    };
    Compaction compaction;
    std::optional<Term> term_at_or_forgotten(Index index) const;

    // ---- outputs not yet taken (core.cpp assembles them into Actions) --------
    struct Outputs {
        std::vector<Message> msgs;
        std::vector<Message> msgs_after_persist;
        std::vector<ReadState> read_states;
        std::vector<ReadFailure> read_failures;
        std::optional<SnapshotMeta> snapshot_to_install;
        bool snapshot_wanted = false;  // Actions::snapshot_wanted
    };
    Outputs out;
    // What the last Actions reported, to report only changes.
    struct Reported {
        HardState hard_state;
        SoftState soft_state;
        Configuration config;
        // configs.version() when `config` was last compared with it.
        std::uint64_t config_version = 0;
    };
    Reported reported;

    // ---- step.cpp: a message's receipt and dispatch by role ------------------
    Status step(const Message& m);
    Status step_message(const Message& m);
    Status step_by_term(const Message& m, bool& handled);
    void step_follower(const Message& m);
    void step_candidate(const Message& m);
    Status step_leader(const Message& m);

    // ---- core.cpp: shared helpers ----------------------------------------------
    void send(Message m);
    void send_after_persist(Message m);
    HardState hard_state() const;
    SoftState soft_state() const;
    const Configuration& config() const { return configs.latest(); }
    bool is_voter() const { return config().is_voter(opt.id); }
    bool may_campaign() const;
    bool committed_own_term() const { return log.term_at(log.committed()) == term; }
    Status not_leader_status() const;

    // ---- admission.cpp: which messages are heard at all -----------------------
    bool knows_member(NodeId id) const;
    // Heard from no leader for an election timeout (a leader: from no quorum).
    bool out_of_contact() const;
    Status admit(const Message& m) const;

    // ---- election.cpp ---------------------------------------------------------
    void tick();  // the clocks, then the role's timer
    void tick_election();
    void tick_leader();
    // ---- idle_ticks.cpp: ticks that only count ---------------------------------
    std::uint64_t ticks_until_due() const;
    void count_quiet_ticks(std::uint64_t n);
    void tick_many(std::uint64_t n);
    void reset(Term new_term);
    void become_follower(Term new_term, NodeId new_leader);
    void become_pre_candidate();
    void become_candidate();
    void become_leader();
    void campaign(bool pre, bool transfer);
    void maybe_campaign_alone();
    bool single_voter() const;
    void randomize_election_timeout();
    void heard_leader();
    void handle_vote_request(const Message& m);
    bool crossing_pre_vote_lost(const Message& m) const;
    static std::uint64_t tie_order(NodeId id, Term t);
    void handle_vote_response(const Message& m);
    bool log_up_to_date(Index last_index, Term last_term) const;
    bool quorum_active();

    // ---- replication.cpp --------------------------------------------------------
    bool send_append(NodeId to, bool send_if_empty);
    void broadcast_append();
    std::uint64_t broadcast_heartbeat();
    std::uint64_t next_heartbeat_seq();
    void send_heartbeat(NodeId to, Progress& pr, std::uint64_t seq);
    void tick_heartbeat();
    bool heartbeat_needed(const Progress& pr) const;
    bool heartbeat_answer_needed(const Progress& pr) const;
    void handle_append(const Message& m);
    void handle_heartbeat(const Message& m);
    Status handle_append_response(const Message& m);
    void handle_heartbeat_response(const Message& m);
    void append_own(EntryType type, SharedBytes data);
    void send_pending_appends();
    bool maybe_commit();
    void on_commit_advanced(Index old_commit);
    void step_down_if_removed();
    void follower_merge(const std::vector<Entry>& entries);

    // ---- membership.cpp -------------------------------------------------------
    Result<Configuration> apply_change(const ConfigChange& change) const;
    Result<Proposed> propose_config_change(const ConfigChange& change);
    bool note_config_entries(const std::vector<Entry>& entries);
    void on_config_changed();
    void sync_progress();

    // ---- read_index.cpp -------------------------------------------------------
    Status read_index(std::uint64_t request_id);
    bool lease_read_allowed() const;
    bool lease_held() const;
    void start_read_round(std::vector<std::uint64_t> request_ids);
    void handle_heartbeat_ack(Progress& pr, std::uint64_t context);
    void release_confirmed_reads();
    void release_waiting_reads();
    void fail_pending_reads(NodeId leader_hint);

    // ---- quiescence.cpp -------------------------------------------------------
    bool may_quiesce() const;
    void maybe_quiesce();  // leader, once per tick
    void quiesce();
    void wake();
    bool accept_quiesce(const Message& m) const;  // follower: a quiesce heartbeat it may obey
    bool wakes_leader(const Message& m) const;    // a quiescent leader's: news, not a late answer
    bool stale_append(const Message& m) const;    // a quiescent follower's: nothing new in it
    void poke_quiet_leader();                     // a follower that may not campaign
    void peer_down(NodeId peer);

    // ---- transfer.cpp ---------------------------------------------------------
    Status transfer_leadership(NodeId target);
    void maybe_send_timeout_now(NodeId to);
    void abort_transfer();

    // ---- snapshot.cpp ---------------------------------------------------------
    bool send_snapshot(NodeId to, Progress& pr);
    void raise_stored_everywhere();
    // What a message to a follower may say is stored everywhere: no more
    // than the commit index it carries (validate_message's rule).
    Index stored_everywhere_to_send(Index commit) const;
    void forget_stored_everywhere();
    void handle_snapshot(const Message& m);
    Result<SnapshotMeta> on_snapshot_taken(Index index);
    Result<SnapshotMeta> on_state_machine_durable(Index index);
    void report_snapshot(NodeId peer, bool ok);
};

}  // namespace keel::raft
