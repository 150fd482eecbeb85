// runtime/replica.hpp — keel::Node's implementation: one Raft core, its
// WAL-backed log, snapshots, a transport and the application's state
// machine.
//
// Who runs the core: whichever thread brings the input, holding the core
// lock (core_mu_).  There is no hop to a dedicated thread for a proposal
// or a WAL completion; each input is followed at once, under the same lock,
// by the batch of core output it produced (Core::take_actions).
//
// Threads (see also keel/node.hpp):
//   callers         propose/read/membership calls run the core themselves.
//   WAL flusher     writes + fdatasyncs batches; its completion runs
//                   core.on_persisted (commit) under the core lock and
//                   hands committed entries to the apply thread (in
//                   single-node mode with the next batch already queued, it
//                   hands the commit itself to the apply thread and writes
//                   on: see on_wal_batch_done).
//   apply thread    ApplyWorker: StateMachine::apply/snapshot/restore and
//                   proposal callbacks; proposals those callbacks submit are
//                   gathered and handed to the core once per apply batch.
//   I/O thread      the asio::io_context: the transport (every socket call
//                   and every received message), the ticker.  Work for it
//                   produced under the core lock (messages to send, peers to
//                   set, the ticker to arm) goes through an ordered outbox.
//   background      BackgroundWorker: writes snapshot files, compacts the log.
//
// The single-node write path, two thread handoffs per round trip of a
// closed-loop client: propose() (caller, under the core lock) -> WAL append
// -> flusher: write + fdatasync -> completion (flusher, under the core
// lock): the lone voter commits -> apply thread applies and completes the
// caller's future.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "keel/node.hpp"
#include "keel/observer.hpp"
#include "keel/spare_vectors.hpp"
#include "raft/core.hpp"
#include "runtime/apply_worker.hpp"
#include "runtime/background_worker.hpp"
#include "runtime/durability_gate.hpp"
#include "runtime/event_queue.hpp"
#include "runtime/latency_histogram.hpp"
#include "runtime/log_store.hpp"
#include "runtime/peer_directory.hpp"
#include "runtime/peer_transport.hpp"
#include "runtime/proposal_tracker.hpp"
#include "runtime/read_tracker.hpp"
#include "runtime/snapshot_store.hpp"
#include "runtime/ticker.hpp"

namespace keel::runtime {

// Single-node mode: how long the WAL flusher looks for the next append
// before sleeping (wal::Options::idle_spin_us).  A closed-loop client's next
// proposal comes microseconds after its answer, a network client's (raftd's)
// one round trip later (a loopback round trip); finding the flusher awake
// saves a thread wakeup per write (the measurement behind the value:
// docs/decisions/0004-runtime-write-path-tuning.md).  The spin holds its core, never
// yields (a yielding spinner that hands its core to a CPU-bound process waits
// out that process's whole time slice, milliseconds, when its work arrives;
// a sleeper that is woken preempts it), and costs at most this much CPU per
// write; an idle node sleeps.  Zero in cluster mode, where more threads
// share the cores.
inline constexpr std::uint32_t k_single_mode_flusher_spin_us = 250;
// Single-node mode: a committed batch predicted to apply (with its
// proposers' callbacks) within about one write's time to durability (the
// smoothed time from append to durable, within these bounds) is applied by
// the WAL flusher right after its fsync, instead of waking the apply thread.
// The answer leaves one thread hop sooner, and the proposals its callbacks
// make join the next write whole: a closed loop of K proposers keeps one
// batch of K per fsync.  A write from elsewhere that arrives meanwhile waits
// for the apply, at most about as long as it would wait behind one more
// fsync.  A larger batch goes to the apply thread, and the closed loop splits
// into two cohorts, one syncing while the other is applied (docs/runtime.md,
// "Inline apply": at K=256, once the batch vectors were reused, one batch
// did +0.04 of the WAL's throughput and 0.56-0.63x its p99 against 1.34x,
// for a p50 +0.07 of the WAL's, over 32 alternating pairs).
inline constexpr std::uint64_t k_single_mode_inline_apply_min_ns = 50'000;
inline constexpr std::uint64_t k_single_mode_inline_apply_max_ns = 2'000'000;
// Cluster mode: the I/O thread, when a message it steps in commits a batch
// predicted to apply (with its proposers' callbacks) within this long,
// applies it itself once it lets go of the core lock, if the apply thread
// is idle.  On a leader the proposer's answer then leaves without waking
// the apply thread, and the proposals its callbacks make are replicated by
// the same thread; on a follower one thread does all the work of a round
// (see k_follower_io_write_max_entries).  The I/O thread takes every
// member's messages, so the budget is of the order of stepping one in.  An
// inline batch that takes longer than k_io_inline_apply_limit_ns (a slow
// state machine, mispredicted) turns inline apply on the I/O thread off
// for good: a stalled I/O thread delays heartbeats, and a long enough stall
// costs the leadership.
inline constexpr std::uint64_t k_io_inline_apply_ns = 20'000;
inline constexpr std::uint64_t k_io_inline_apply_limit_ns = 1'000'000;
// Cluster mode: a follower's I/O thread that appends at most this many
// entries from a leader's message writes and fdatasyncs them itself
// (wal::Wal::Writer::caller), after it lets go of the core lock, instead of
// waking the WAL flusher, unless a batch is being written already.  It has
// nothing else to do meanwhile: its answer to the leader waits for that
// write.  A larger batch goes to the flusher, so that the I/O thread takes
// in the leader's next message (decoding and stepping in hundreds of
// entries) while it is written: without the bound, cluster3 at K=256 lost
// 28% of its throughput (docs/benchmarks.md).
inline constexpr std::size_t k_follower_io_write_max_entries = 8;

// Proposals submitted from inside a batch of proposal callbacks are handed
// to the core (one WAL append) at the batch's end or in chunks of this many.
inline constexpr std::size_t k_deferred_proposals_chunk = 128;

// Complete snapshots from leaders kept until the core installs one.
inline constexpr std::size_t k_max_staged_snapshots = 2;

// Why the node refuses writes with ErrorCode::no_space (the no_space alarm,
// docs/runtime.md "A full disk"): a bit per storage operation that found no
// room and is being retried.
enum NoSpaceCause : unsigned {
    kNoSpaceWal = 1u << 0,         // the WAL waits for room (wal::Wal::no_space)
    kNoSpaceHardState = 1u << 1,   // a term/vote change could not be saved
    kNoSpaceSnapshot = 1u << 2,    // a snapshot could not be written
    kNoSpaceCompaction = 1u << 3,  // the log could not be compacted behind one
};
// While the alarm is up, the runtime retries its own operations this often
// (the WAL retries its own at the same rate: wal::kNoSpaceRetryMs).
inline constexpr std::uint32_t kNoSpaceRetryMs = 100;
// A leader that cannot write hands leadership to another voter at most this
// many times per alarm (it cannot know which member has room; a bound keeps
// a cluster whose disks are all full from passing leadership round).
inline constexpr int kMaxNoSpaceTransfers = 3;

// The public name of a core role (NodeStatus::role, the observer's events).
Role public_role(raft::Role role);

// Makes the TCP transport for a replica (peer_transport_tcp.cpp), or null
// when this build has none.  The cluster id is unset for a joiner that has
// not heard from its cluster yet.  `advertised_address`: what the hellos say
// this node listens at (empty: the transport's bound listen address).
using TransportFactory = std::function<Result<std::unique_ptr<PeerTransport>>(
    boost::asio::io_context&, const NodeOptions&, const transport::ClusterId&,
    const std::string& advertised_address, PeerTransport::Handlers)>;

class Replica final : public Node {
public:
    // `fs`: where the WAL and the snapshots live (null: the POSIX file
    // system; tests inject faults).  Not owned; must outlive the node.
    static Result<std::unique_ptr<Node>> open(const NodeOptions& options,
                                              std::shared_ptr<StateMachine> state_machine,
                                              wal::FileSystem* fs = nullptr);
    ~Replica() override;

    void propose_async(SharedBytes data, std::function<void(ProposeResult)> done) override;
    void read_index_async(bool wait_applied, std::function<void(ReadResult)> done) override;
    void add_member_async(const MemberSpec& member, std::function<void(Status)> done) override;
    void promote_member_async(NodeId id, std::function<void(Status)> done) override;
    void remove_member_async(NodeId id, std::function<void(Status)> done) override;
    void transfer_leadership_async(NodeId to, std::function<void(Status)> done) override;
    void snapshot_async(std::function<void(Status)> done) override;
    Result<std::unique_ptr<SnapshotFileSource>> open_latest_snapshot() override;
    NodeStatus status() const override;
    Result<MemberSpec> member(NodeId id) const override;
    void stop(bool transfer_leadership_first = false) override;

    // Tests: events and completions waiting for the observer's thread (0
    // without an observer).
    std::size_t observer_queue_size() const { return events_ ? events_->queued() : 0; }

private:
    struct InboxProposal {
        SharedBytes data;
        std::function<void(ProposeResult)> done;
        std::uint64_t start_ns = 0;
    };
    struct PendingTransfer {
        raft::NodeId target = 0;
        std::function<void(Status)> done;
        std::uint64_t ticks_left = 0;
    };

    Replica(NodeOptions options, std::shared_ptr<StateMachine> sm);
    Status start(TransportFactory factory, wal::FileSystem* fs);
    // What the services call back (replica_wiring.cpp, replica_peers.cpp; apply_hooks in
    // replica.cpp; the transport's handlers run on the I/O thread).
    wal::Options wal_options(wal::FileSystem* fs);
    PeerTransport::Handlers transport_handlers();
    ApplyWorker::Hooks apply_hooks();
    // Node::open's check of the Raft port's security (peer_security.hpp):
    // the options alone before the core exists, then with the addresses of
    // the configuration from the log too (and the warning, if any, logged).
    Status check_peer_security() const;
    // A joiner's first valid hello: stores the cluster id (I/O thread).
    Status adopt_cluster_id(const transport::ClusterId& id, raft::NodeId from);
    // A peer's hello said where it listens (I/O thread): kept for an id the
    // configuration does not place, so that answers reach it.
    void on_peer_hello(raft::NodeId from, std::string address);
    // What this node's hellos say it listens at: its own address in the
    // configuration, or empty (the transport's bound listen address).
    std::string advertised_address() const;
    // Sets the transport's peers to directory_'s.  REQUIRES: the core lock.
    void update_peer_directory();
    void count_rejection(std::string_view reason, std::string_view detail);
    void log(LogLevel level, const std::string& message) const;
    // Runs `f` on the I/O thread (thread-safe).
    void post(std::function<void()> f);
    bool on_io_thread() const { return std::this_thread::get_id() == io_thread_id_; }
    // True while the calling thread holds this replica's core lock.
    bool holding_core() const;
    // On the WAL flusher, committing its group commit (on_wal_batch_done),
    // or on the I/O thread, stepping a received message in (on_message).
    bool may_apply_inline() const;
    // On the I/O thread, inside on_message().
    bool handling_message() const;
    // Where this thread keeps the batches it claimed (may_apply_inline()).
    std::deque<ApplyItem>& inline_queue();
    // Under the core lock: how long a batch this thread applies inline may
    // take (0: none).  The flusher: single-node mode only (in cluster mode
    // it must not wait for the state machine while followers wait for it).
    // The I/O thread: cluster mode only (k_io_inline_apply_ns).
    std::uint64_t inline_apply_budget_ns() const;
    // The I/O thread, on a message: steps it in; then, with the core lock
    // let go, writes the entries it appended (k_follower_io_write_max_entries)
    // and applies what it claimed (k_io_inline_apply_ns).
    void on_message(raft::Message& message);

    // Runs `f` holding the core lock, then settles (see settle_locked), then
    // hands the I/O outbox to the I/O thread.  REQUIRES: the calling thread
    // does not hold the core lock (a callback running under it posts instead,
    // see run_or_post).
    template <typename F>
    void with_core(F&& f);
    // with_core(f) now, or on the I/O thread when called under the core
    // lock (from a callback keel runs there).
    void run_or_post(std::function<void()> f);
    // Drains work reported while the lock was busy or taken recursively:
    // queued proposals, WAL completions, apply progress.  Bounded rounds.
    void settle_locked();
    // Work was recorded (a pending flag, the inbox): settle it now if the
    // core lock is free; if another thread holds it, that thread does after
    // letting go.  Never blocks on the lock.
    void kick_core();
    bool work_pending() const;
    // Marks this thread as the core lock's holder; returns the holder it
    // replaces (another replica's, or null), for leave_core.
    const Replica* enter_core();
    void leave_core(const Replica* outer);

    // ---- under the core lock (actions_executor.cpp) ----
    void drain_inbox();
    void run_core();
    void execute(raft::Actions& a);
    void on_soft_state(const raft::SoftState& ss);
    void install_snapshot(const raft::SnapshotMeta& meta);
    void persist_entries(std::vector<raft::Entry> entries, raft::WriteId write);
    void send_messages(std::vector<raft::Message> messages);
    // Off the I/O thread, with nothing in the outbox: the transport writes
    // what it can at once (PeerTransport::send_now) and leaves the rest.
    void send_now_if_idle(std::vector<raft::Message>& messages);
    void send_snapshot(const raft::Message& m);
    void on_configuration(const raft::Configuration& config);
    void on_wal_progress();
    void on_applied_progress();
    // A durable state machine holds everything up to `durable`: the core's
    // log follows it, and the WAL once a segment file can go
    // (StateMachine::applied_index; storage_health.cpp).
    void follow_durable_state_machine(raft::Index durable);
    void on_snapshot_written(const raft::SnapshotMeta& meta);
    void on_tick();
    // ---- what peers send (peer_input.cpp) ----
    // Under the core lock: a whole snapshot from a peer, staged at `path`
    // and checked against its checksums already (verify_received_snapshot):
    // stepped in, and kept for install_snapshot if the core takes it.
    void on_snapshot_received(raft::Message message, std::string path);
    // count_rejection() if `stepped` (Core::step's answer) is a refusal.
    void note_refusal(const Status& stepped);
    void fail_stop(const Status& why);

    // ---- the observer's events (replica_events.cpp), under the core lock ----
    // Queues `event` for the observer's thread; without an observer, nothing.
    void announce(std::function<void(Observer&)> event, bool last = false);
    void announce_soft_state(const raft::SoftState& ss);
    void announce_members(std::vector<MemberSpec> members);
    // Runs `complete` after every event queued so far (on the observer's
    // thread), or now without an observer: a refusal never overtakes the
    // event that explains it.
    void complete_after_events(std::function<void()> complete);
    // A proposal refused after it was counted in pending_proposals_.
    void refuse_proposal(std::function<void(ProposeResult)> done, ProposeResult r);

    // ---- storage health (storage_health.cpp) ----
    // Under the core lock: the WAL reported a change (failed, no_space).
    void on_wal_health();
    // Under the core lock: saves a term/vote change; out of space, marks it
    // unsaved (no message leaves until it is saved) and raises the alarm.
    void persist_hard_state(const raft::HardState& hs);
    bool save_unsaved_hard_state();
    // Under the core lock: the alarm's causes (NoSpaceCause).
    void raise_no_space(unsigned cause, const Status& why);
    void clear_no_space(unsigned cause);
    // Under the core lock, every kNoSpaceRetryMs while the alarm is up.
    void on_no_space_tick();
    void step_aside_if_full();
    // Background thread: writes a snapshot, compacts the log behind the
    // older kept one, reports the outcome under the core lock.
    void write_snapshot(SnapshotFunction fn, const raft::SnapshotMeta& meta,
                        std::uint64_t generation, const std::function<void(Status)>& done);
    void compact_log(std::uint64_t generation);
    // Background thread: a snapshot staged by the transport is read whole
    // against its checksums before the core may install it.
    void verify_received_snapshot(raft::Message message, std::string path);
    void shutdown_on_io();
    void publish_status();
    void propose_config(raft::ConfigChange change, std::function<void(Status)> done);
    // Queues work for the I/O thread (transport and ticker calls), in order.
    void to_io(std::function<void()> work);
    void set_ticker_needed(bool needed);
    // ---- not under the core lock ----
    // Runs the outbox now on the I/O thread, else posts one run of it.
    void flush_io_outbox();
    void run_io_outbox();
    // Called by the WAL's flusher for each completed write.
    void on_wal_write_done(std::uint64_t seq, const Status& st);
    // Called by the WAL's flusher after each group commit.
    void on_wal_batch_done();

    const NodeOptions options_;
    std::shared_ptr<StateMachine> sm_;
    // Where the data dir's files live (set by start(); never null after).
    wal::FileSystem* fs_ = nullptr;

    std::unique_ptr<boost::asio::io_context> io_;
    struct WorkGuard;
    std::unique_ptr<WorkGuard> work_;
    std::thread io_thread_;
    std::thread::id io_thread_id_;

    // Emptied vectors of the write path, reused batch after batch (taken and
    // given under the core lock, given back by the applying thread too).
    // Declared before the threads' owners, so they outlive them.
    SpareVectors<raft::Entry> spare_entries_;
    SpareVectors<ApplyWaiter> spare_waiters_;
    std::unique_ptr<LogStore> log_;
    // log_->wal(), for the WAL flusher's own callbacks: unlike log_, it does
    // not change while the destructor's log_.reset() closes the WAL, and the
    // flusher may still complete a write then (ThreadSanitizer, crash_test).
    wal::Wal* wal_ = nullptr;
    std::unique_ptr<SnapshotStore> snapshots_;
    std::unique_ptr<raft::Core> core_;
    std::unique_ptr<ApplyWorker> apply_;
    std::unique_ptr<BackgroundWorker> background_;
    std::unique_ptr<Ticker> ticker_;
    // Armed while the no_space alarm is up (on_no_space_tick).  I/O thread.
    std::unique_ptr<Ticker> no_space_ticker_;
    std::unique_ptr<PeerTransport> transport_;
    // The observer's thread; null without NodeOptions::observer.  Stopped
    // after every thread that queues into it.
    std::unique_ptr<EventQueue> events_;

    // The core lock: every member below down to `shut_down_` is GUARDED_BY
    // it, as are core_, log_'s writers and the trackers.
    // Never taken by status(): see publish_status().
    std::mutex core_mu_;
    // Proposals accepted by propose_async (and membership changes) not yet
    // committed or failed: in the inbox or in proposals_.  Not under the lock.
    std::atomic<std::size_t> pending_proposals_{0};
    ProposalTracker proposals_{pending_proposals_};
    ReadTracker reads_;
    raft::Role role_ = raft::Role::follower;
    DurabilityGate gate_;  // WAL writes in flight, the term and vote, what waits for them
    std::optional<PendingTransfer> transfer_;
    // Snapshots received from leaders, staged until the core installs one.
    std::map<std::pair<raft::Index, raft::Term>, std::string> staged_;
    std::map<raft::NodeId, raft::Index> outgoing_snapshot_;  // peer -> index being sent
    PeerDirectory directory_{options_.id};                   // where each peer is
    std::map<raft::NodeId, std::string> peers_;              // id -> raft address, as set
    bool ticker_wanted_ = false;
    bool failed_ = false;
    bool snapshot_retry_in_flight_ = false;
    // The last durable index a durable state machine reported (core lock).
    raft::Index sm_durable_seen_ = 0;
    bool floor_compaction_in_flight_ = false;
    bool compaction_retry_in_flight_ = false;
    // Bytes the last snapshot had written when the disk was full: the next
    // attempt waits until about that much is free.
    std::uint64_t snapshot_bytes_needed_ = 0;
    int no_space_transfers_ = 0;  // leadership handed on during this alarm
    // What the observer was last told (announce_*).
    raft::NodeId announced_leader_ = 0;
    raft::Term announced_term_ = 0;
    Role announced_role_ = Role::follower;
    std::optional<std::vector<MemberSpec>> announced_members_;
    bool core_config_single_voter_ = false;  // at start (set before threads run)
    bool shut_down_ = false;
    std::vector<InboxProposal> draining_;
    // Empty, with capacity: the next batch's entries to persist and to apply.
    std::vector<raft::Entry> entries_buffer_;
    std::vector<raft::Entry> committed_buffer_;
    // Committed entries the WAL flusher claimed to apply inline (see
    // k_single_mode_inline_apply_min_ns); filled under the core lock by
    // the flusher only, applied by it once it lets go of the lock.
    std::deque<ApplyItem> inline_apply_;
    // The same for the I/O thread (k_io_inline_apply_ns).  One claim
    // at a time (ApplyWorker::claim_inline): at most one of the two holds
    // entries, and each is touched by its own thread only.
    std::deque<ApplyItem> io_inline_apply_;
    // An inline batch on the I/O thread overran k_io_inline_apply_limit_ns.
    std::atomic<bool> io_inline_apply_off_{false};
    // The I/O thread appended entries it is to write itself (I/O thread only).
    bool io_write_queued_ = false;

    // Inbox: proposals from any thread, taken into the core by whoever holds
    // the core lock next (one batch per drain: one WAL append).
    std::mutex inbox_mu_;
    std::vector<InboxProposal> inbox_;  // GUARDED_BY(inbox_mu_)
    std::atomic<bool> inbox_nonempty_{false};

    // Work for the I/O thread, in the order it was produced.
    std::mutex outbox_mu_;
    std::vector<std::function<void()>> outbox_;  // GUARDED_BY(outbox_mu_)
    bool outbox_posted_ = false;                 // GUARDED_BY(outbox_mu_)
    // The I/O thread is running outbox work it took: messages written
    // directly now could overtake a send() in it (send_messages).
    bool outbox_running_ = false;  // GUARDED_BY(outbox_mu_)
    bool io_stopped_ = false;      // I/O thread

    // Progress reported by other threads, consumed under the core lock.
    std::atomic<std::uint64_t> durable_seq_{0};
    std::atomic<bool> wal_progress_pending_{false};
    std::atomic<bool> wal_failed_{false};
    std::atomic<bool> applied_progress_pending_{false};
    // The WAL's health changed (wal::Options::on_health_change).
    std::atomic<bool> wal_health_pending_{false};
    // NoSpaceCause bits; written under the core lock, read anywhere.
    std::atomic<unsigned> no_space_causes_{0};
    // start() finished and stop() has not begun: WAL reports may kick the core.
    std::atomic<bool> running_{false};
    std::atomic<std::uint64_t> snapshots_rejected_{0};  // received ones found damaged
    // The durable state machine's compaction point saved in the WAL's
    // metadata (LogStore::save_floor): the log may be compacted up to it.
    std::atomic<raft::Index> saved_floor_{0};
    // !ticker_wanted_, readable without the core lock (the WAL flusher's).
    std::atomic<bool> single_mode_{true};
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> elections_{0};
    std::atomic<std::uint64_t> proposals_accepted_{0};
    LatencyHistogramRecorder commit_latency_;
    LatencyHistogramRecorder fsync_latency_;
    // Append to durable, smoothed (7/8 old, 1/8 new): the inline apply budget.
    std::atomic<std::uint64_t> durable_ns_smoothed_{k_single_mode_inline_apply_min_ns};
    std::once_flag stop_once_;

    // What the transport refused, by reason (any thread; status() reads it).
    mutable std::mutex rejected_mu_;
    std::map<std::string, std::uint64_t, std::less<>> rejected_;  // GUARDED_BY(rejected_mu_)

    // Published under the core lock for status()/member().
    mutable std::mutex status_mu_;
    NodeStatus status_;  // GUARDED_BY(status_mu_); counters filled in at read time
};

template <typename F>
void Replica::with_core(F&& f) {
    {
        std::lock_guard lock(core_mu_);
        const Replica* outer = enter_core();
        f();
        settle_locked();
        leave_core(outer);
    }
    flush_io_outbox();
    // Work recorded while this thread held the lock, by threads that found
    // it busy (kick_core), is this thread's to settle.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (work_pending()) kick_core();
}

}  // namespace keel::runtime
