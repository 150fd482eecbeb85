// runtime/replica.hpp — one Raft group of a process: its core, its
// WAL-backed log, snapshots and state machine, and the state around them.
// It is handed its process's services (process_services.hpp: the I/O
// thread, its outbox, the background thread, the transport) and its
// GroupId, and owns none of them: several groups may share one
// ProcessServices, which must outlive them.  It has keel::Node's API;
// keel::Node itself is one ProcessServices with one group
// (single_group_node.hpp).
//
// Owns: the core, the log store (on the process's shared WAL, or on a WAL
// of its own with its flusher thread: log_store.hpp, shared_wal.hpp), the
// snapshot store, the apply worker (its thread, and through it the state
// machine, shared with the application), the group's MessageChannel
// (peer_transport.hpp), its timers (on the process's io_context), the
// observer's thread, the status board, and the parts below.
//
// The parts, each in its own file, each saying which thread may touch it:
//   core_lock.hpp         who runs the core: the core lock, settling what
//                         other threads report while it is held
//   proposal_inbox.hpp    proposals from any thread, waiting for the lock
//   durability_gate.hpp   what may leave after which write (pure)
//   inline_policy.hpp     which thread applies or writes a batch itself
//   snapshot_staging.hpp  snapshots received, waiting for the core
//   peer_directory.hpp    where each peer is
//   status_board.hpp      what status() reports, without the core lock
//   announcer.hpp         what the observer hears
//   storage_health.hpp    the no_space alarm and the retries
//   background_tasks.hpp  this group's tasks on the shared background thread
//
// Threads (see also keel/node.hpp and docs/runtime.md, "Threads"):
//   callers       propose/read/membership calls run the core themselves,
//                 under the core lock.
//   WAL flusher   writes and fdatasyncs batches; after each group commit it
//                 commits under the core lock (on_wal_batch_done).
//   apply thread  ApplyWorker: StateMachine::apply/snapshot/restore and the
//                 proposers' callbacks.
//   I/O thread    the process's: the transport, the timers, the outbox.
//   background    the process's: snapshot files, log compaction.
//   observer      the observer's callbacks (announcer.hpp).
//
// The write path, file by file: docs/architecture.md.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "keel/node.hpp"
#include "keel/observer.hpp"
#include "keel/spare_vectors.hpp"
#include "raft/core.hpp"
#include "runtime/announcer.hpp"
#include "runtime/apply_worker.hpp"
#include "runtime/background_tasks.hpp"
#include "runtime/core_lock.hpp"
#include "runtime/durability_gate.hpp"
#include "runtime/inline_policy.hpp"
#include "runtime/log_store.hpp"
#include "runtime/peer_directory.hpp"
#include "runtime/peer_transport.hpp"
#include "runtime/process_services.hpp"
#include "runtime/proposal_inbox.hpp"
#include "runtime/proposal_tracker.hpp"
#include "runtime/read_tracker.hpp"
#include "runtime/snapshot_staging.hpp"
#include "runtime/snapshot_store.hpp"
#include "runtime/status_board.hpp"
#include "runtime/storage_health.hpp"
#include "runtime/thread_annotations.hpp"
#include "runtime/ticker.hpp"

namespace keel::runtime {

class Replica final : public Node, private CoreLock::Client {
public:
    // keel::Node::open: a ProcessServices with this one group, 0
    // (single_group_node.hpp).  `fs`: where the WAL and the snapshots live
    // (null: the POSIX file system; tests inject faults).  Not owned; must
    // outlive the node.
    static Result<std::unique_ptr<Node>> open(const NodeOptions& options,
                                              std::shared_ptr<StateMachine> state_machine,
                                              wal::FileSystem* fs = nullptr);
    // Group `group` of a process, on `services`, whose transport (if any) is
    // started (ProcessServices::start_transport) and whose I/O thread is
    // started here if it is not yet.  options.transport is not used: the
    // process's transport is.  `services` and `fs` must outlive the group.
    // A lone voter's first election is waited for (bounded) unless
    // `wait_for_lone_voter` is false (Host::open_groups waits for all at once:
    // lone_voter()).
    static Result<std::unique_ptr<Replica>> open_group(const NodeOptions& options,
                                                       std::shared_ptr<StateMachine> state_machine,
                                                       ProcessServices& services, GroupId group,
                                                       wal::FileSystem* fs = nullptr,
                                                       bool wait_for_lone_voter = true);
    // keel::Node's group: group 0 of `services`, whose transport it makes
    // and starts from its own options (single_group_node.hpp).
    static Result<std::unique_ptr<Replica>> open_process_group(
        const NodeOptions& options, std::shared_ptr<StateMachine> state_machine,
        ProcessServices& services, wal::FileSystem* fs);
    // Stops the group (stop(false)); the process's services go on.
    ~Replica() override;

    GroupId group() const { return seat_.group; }
    // Whether this node is its group's only voter: it elects itself at once
    // and refuses proposals (busy) until its first entry of the new term is
    // durable, which a read_index waits for.  Any thread but a keel one.
    bool lone_voter();

    void propose_async(SharedBytes data, std::function<void(ProposeResult)> done) override;
    void propose_batch_async(std::vector<Proposal> proposals) override;
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
    std::size_t observer_queue_size() const { return announcer_.queued(); }

private:
    struct PendingTransfer {
        raft::NodeId target = 0;
        std::function<void(Status)> done;
        std::uint64_t ticks_left = 0;
    };
    // Where the node is in its life.  Only ever moves forward.
    enum class Lifecycle : std::uint8_t {
        starting,   // start() runs; WAL reports are only recorded
        running,    // start() finished, stop() has not begun
        stopping,   // stop() began: public calls are refused
        shut_down,  // the I/O thread shut the group down (under the core lock)
    };

    Replica(NodeOptions options, ProcessServices& services, GroupId group);
    // Before any other thread of this group exists, then starts them.  With
    // `open_process_transport` (keel::Node: the process's only group), it
    // first makes and starts the process's transport, whose connection
    // hooks (cluster id, hellos, refusals) are this group's.
    // The state machine goes to the apply worker, which keeps it.
    Status start(std::shared_ptr<StateMachine> sm, wal::FileSystem* fs,
                 bool open_process_transport) NO_THREAD_SAFETY_ANALYSIS;
    // A lone voter elects itself at once but refuses proposals until its
    // first entry of the new term is durable: waits (bounded) for that, so
    // that the group is ready to write when it is opened.
    void await_lone_voter();
    // stop(true)'s first step, before public calls are refused: a leader
    // transfers leadership to the most caught-up voter and waits for it
    // (bounded by four maximal election timeouts).
    void hand_leadership_on();
    // What the services call back (replica.cpp; the transport's handlers,
    // replica_peers.cpp, run on the I/O thread).
    wal::Options wal_options(wal::FileSystem* fs);
    transport::MessageChannel::Handlers transport_handlers();
    ProcessTransportHooks process_transport_hooks();
    ApplyWorker::Hooks apply_hooks();
    // Node::open's check of the Raft port's security (peer_security.hpp):
    // the options alone before the core exists, then with the addresses of
    // the configuration from the log too (and the warning, if any, logged).
    // At start, before other threads exist.
    Status check_peer_security() const NO_THREAD_SAFETY_ANALYSIS;
    // A joiner's first valid hello: stores the cluster id (I/O thread).
    Status adopt_cluster_id(const transport::ClusterId& id, raft::NodeId from);
    // A peer's hello said where it listens (I/O thread): kept for an id the
    // configuration does not place, so that answers reach it.
    void on_peer_hello(raft::NodeId from, std::string address);
    // What this node's hellos say it listens at: its own address in the
    // configuration, or empty.  At start, before other threads exist.
    std::string advertised_address() const NO_THREAD_SAFETY_ANALYSIS;
    // Sets the transport's peers to directory_'s.
    void update_peer_directory() REQUIRES(core_lock_);
    void count_rejection(std::string_view reason, std::string_view detail);
    void log(LogLevel level, const std::string& message) const;
    // Runs `f` on the I/O thread (thread-safe), unless the group has shut
    // down by then (the process's I/O thread outlives the group).
    void post(std::function<void()> f) override;
    bool on_io_thread() const { return seat_.services.on_io_thread(); }
    bool holding_core() const { return core_lock_.holding(); }
    bool stopping() const { return lifecycle_.load() >= Lifecycle::stopping; }
    bool shut_down() const { return lifecycle_.load() == Lifecycle::shut_down; }
    // Nothing more may reach the core: shut down or failed.
    bool halted() const REQUIRES(core_lock_) { return shut_down() || locked_.failed; }

    // ---- the core lock (core_lock.hpp) ----
    // Runs `f` holding the core lock, then settles, then hands the I/O
    // outbox to the I/O thread.  REQUIRES: the calling thread does not hold
    // the core lock (a callback running under it posts: run_or_post).
    template <typename F>
    void with_core(F&& f) {
        core_lock_.run(std::forward<F>(f));
    }
    // with_core(f) now, or on the I/O thread when called under the core
    // lock (from a callback keel runs there).
    void run_or_post(std::function<void()> f);
    // Work was recorded: settle it now if the core lock is free; if another
    // thread holds it, that thread does after letting go.  Never blocks.
    void kick_core() { core_lock_.kick(); }
    // CoreLock::Client.
    void after_lock() override REQUIRES(core_lock_) { catch_up_ticks(); }
    void settle(unsigned work) override REQUIRES(core_lock_);
    void before_unlock() override REQUIRES(core_lock_) { schedule_next_tick(); }
    bool inbox_pending() const override { return inbox_.nonempty(); }
    void after_unlock() override { seat_.services.flush_outbox(); }

    // ---- the write path (write_path.cpp), in the order it runs ----
    void drain_inbox() REQUIRES(core_lock_);
    void run_core() REQUIRES(core_lock_);
    void execute(raft::Actions& a) REQUIRES(core_lock_);
    void persist_entries(std::vector<raft::Entry> entries, raft::WriteId write)
        REQUIRES(core_lock_);
    // The WAL's writing thread, for each completed write.
    void on_wal_write_done(std::uint64_t seq, const Status& st);
    // The WAL's writing thread, after each group commit.
    void on_wal_batch_done();
    void on_wal_progress() REQUIRES(core_lock_);
    void commit(std::vector<raft::Entry>& committed) REQUIRES(core_lock_);
    void on_applied_progress() REQUIRES(core_lock_);

    // ---- the rest of the core's output (actions_executor.cpp) ----
    void on_soft_state(const raft::SoftState& ss) REQUIRES(core_lock_);
    void install_snapshot(const raft::SnapshotMeta& meta) REQUIRES(core_lock_);
    void send_messages(std::vector<raft::Message> messages) REQUIRES(core_lock_);
    // Off the I/O thread, with nothing in the outbox: the transport writes
    // what it can at once (PeerTransport::send_now) and leaves the rest.
    void send_now_if_idle(std::vector<raft::Message>& messages) REQUIRES(core_lock_);
    void send_snapshot(const raft::Message& m) REQUIRES(core_lock_);
    void on_configuration(const raft::Configuration& config) REQUIRES(core_lock_);
    void on_snapshot_written(const raft::SnapshotMeta& meta) REQUIRES(core_lock_);
    void on_tick() REQUIRES(core_lock_);
    void fail_stop(const Status& why) REQUIRES(core_lock_);
    void shutdown_on_io() REQUIRES(core_lock_);
    void publish_status() REQUIRES(core_lock_);
    void propose_config(raft::ConfigChange change, std::function<void(Status)> done);
    // propose_async's checks, then the proposal into the inbox: the number
    // it now holds (> 0), or 0 once `done` has been answered with a refusal.
    std::size_t admit_proposal(SharedBytes data, std::function<void(ProposeResult)> done);
    // Queues work for the I/O thread (transport and ticker calls), in order;
    // nothing once the group has shut down.
    void to_io(std::function<void()> work) REQUIRES(core_lock_) {
        if (!shut_down()) seat_.services.to_io(*seat_.io_closed, std::move(work));
    }
    void set_ticker_needed(bool needed) REQUIRES(core_lock_);

    // ---- ticks (replica_ticks.cpp) ----
    // The process clock's ticks since the core was last brought up to date,
    // handed to it at once (Core::tick(n)), and to a pending transfer's
    // count; a due one among them runs the core.  Every holder of the core
    // lock calls it first (after_lock), so no input reaches the core before
    // the ticks that elapsed before it.
    void catch_up_ticks() REQUIRES(core_lock_);
    // Tells the clock at which of its ticks the core, or a pending
    // transfer, is next due (before_unlock); the clock's ticks before that
    // only count and are left to catch_up_ticks.
    void schedule_next_tick() REQUIRES(core_lock_);
    // A proposal refused after it was counted as pending.
    void refuse_proposal(std::function<void(ProposeResult)> done, ProposeResult r)
        REQUIRES(core_lock_);

    // ---- what peers send (peer_input.cpp) ----
    // The I/O thread, on a message: steps it in; then, with the core lock
    // let go, schedules the write of the entries it appended
    // (write_io_batch) and applies what it claimed (inline_policy.hpp).
    void on_message(raft::Message& message);
    // I/O thread, posted by on_message: writes the entries the messages
    // stepped in since the last call queued for it (InlinePolicy::io_writes).
    void write_io_batch();
    // I/O thread, no lock held: applies what it claimed for inline apply.
    void apply_io_claims();
    // A whole snapshot from a peer, staged at `path` and checked against its
    // checksums already (verify_received_snapshot): stepped in, and kept for
    // install_snapshot if the core takes it.
    void on_snapshot_received(raft::Message message, std::string path) REQUIRES(core_lock_);
    // count_rejection() if `stepped` (Core::step's answer) is a refusal.
    void note_refusal(const Status& stepped);

    // ---- storage health (storage_health.cpp) ----
    // The WAL reported a change (failed, no_space).
    void on_wal_health() REQUIRES(core_lock_);
    // Saves a term/vote change; out of space, marks it unsaved (no message
    // leaves until it is saved) and raises the alarm.
    void persist_hard_state(const raft::HardState& hs) REQUIRES(core_lock_);
    bool save_unsaved_hard_state() REQUIRES(core_lock_);
    // The alarm's causes (NoSpaceCause).
    void raise_no_space(unsigned cause, const Status& why) REQUIRES(core_lock_);
    void clear_no_space(unsigned cause) REQUIRES(core_lock_);
    // Every kNoSpaceRetryMs while the alarm is up.
    void on_no_space_tick() REQUIRES(core_lock_);
    void step_aside_if_full() REQUIRES(core_lock_);
    // A durable state machine holds everything up to `durable`: the core's
    // log follows it, and the WAL once a segment file can go
    // (StateMachine::applied_index).
    void follow_durable_state_machine(raft::Index durable) REQUIRES(core_lock_);
    // Background thread: writes a snapshot (durable at once or deferred),
    // flushes the deferred ones when the log's compaction is due
    // (snapshot_flush_due), compacts the log behind the older durable one,
    // reports the outcome under the core lock.
    void write_snapshot(SnapshotFunction fn, const raft::SnapshotMeta& meta, Durability durability,
                        std::uint64_t generation, const std::function<void(Status)>& done);
    // Background thread: whether the store's deferred snapshots should be
    // flushed now (docs/runtime.md, "Snapshots and compaction").
    bool snapshot_flush_due() const;
    void compact_log(std::uint64_t generation);
    // Background thread: a snapshot staged by the transport is read whole
    // against its checksums before the core may install it.
    void verify_received_snapshot(raft::Message message, std::string path);

    const NodeOptions options_;
    // The group's place in its process: the services (which outlive it),
    // its id there, and what it has queued on their threads.
    struct Seat {
        Seat(ProcessServices& s, GroupId g) : services(s), group(g) {}
        ProcessServices& services;
        const GroupId group;
        // Set on the I/O thread as the group shuts down (shutdown_on_io):
        // what it queued or posted for the I/O thread is skipped from then
        // on.  Shared with posted work, which may run after the group is
        // gone.
        const std::shared_ptr<bool> io_closed = std::make_shared<bool>(false);
        // This group's tasks on the process's background thread.
        BackgroundTasks background{services.background()};
    } seat_;

    // Emptied vectors of the write path, reused batch after batch (taken and
    // given under the core lock, given back by the applying thread too).
    // Declared before the threads' owners, so they outlive them.
    struct Spares {
        SpareVectors<raft::Entry> entries;
        SpareVectors<ApplyWaiter> waiters;
    } spares_;
    std::unique_ptr<LogStore> log_;
    // log_->wal(), for the WAL flusher's own callbacks: unlike log_, it does
    // not change while the destructor's log_.reset() closes the WAL, and the
    // flusher may still complete a write then.
    wal::Wal* wal_ = nullptr;
    std::unique_ptr<SnapshotStore> snapshots_;
    std::unique_ptr<raft::Core> core_ PT_GUARDED_BY(core_lock_);
    std::unique_ptr<ApplyWorker> apply_;
    struct Timers {
        // This group's place on the process's one timer (process_clock.hpp).
        std::unique_ptr<ProcessClock::Subscription> tick;
        // Armed while the no_space alarm is up (on_no_space_tick).  I/O thread.
        std::unique_ptr<Ticker> no_space;
    } timers_;
    std::unique_ptr<PeerTransport> transport_;
    // The observer's thread; stopped after every thread that queues into it.
    Announcer announcer_;

    CoreLock core_lock_{*this};
    ProposalInbox inbox_;
    InlinePolicy inline_{options_.inline_apply};
    StatusBoard board_{options_.id};
    StorageHealth health_;
    std::atomic<Lifecycle> lifecycle_{Lifecycle::starting};
    // The last write the WAL completed (its writing thread), taken under the
    // core lock.
    std::atomic<std::uint64_t> durable_seq_{0};
    std::once_flag stop_once_;

    // ---- the group's state under the core lock ----
    struct Locked {
        explicit Locked(std::atomic<std::size_t>& pending, raft::NodeId self)
            : proposals(pending), directory(self) {}
        ProposalTracker proposals;  // committed entries' waiters
        ReadTracker reads;
        DurabilityGate gate;  // WAL writes in flight, the term and vote, what waits
        SnapshotStaging staged;
        PeerDirectory directory;                    // where each peer is
        std::map<raft::NodeId, std::string> peers;  // id -> raft address, as set
        // Per peer: the index of the snapshot being sent, and pins on the
        // files its sends read (several if a newer send overlapped an older
        // one; all released when the peer's send reports done).
        struct OutgoingSnapshot {
            raft::Index index = 0;
            std::vector<SnapshotPin> pins;
        };
        std::map<raft::NodeId, OutgoingSnapshot> outgoing_snapshot;
        std::optional<PendingTransfer> transfer;
        raft::Role role = raft::Role::follower;
        bool ticks_needed = false;  // as last handed to timers_.tick
        // The clock's tick count (ProcessClock::ticks) the core has been
        // ticked up to while ticks_needed, and the count at which it is next
        // due, as last handed to timers_.tick (replica_ticks.cpp).
        std::uint64_t ticks_seen = 0;
        std::uint64_t due_tick = 0;
        bool failed = false;
        // Reused: the next batch's entries to persist and to apply, and the
        // proposals taken from the inbox.
        std::vector<raft::Entry> entries_buffer;
        std::vector<raft::Entry> committed_buffer;
        std::vector<InboxProposal> draining;
    };
    Locked locked_ GUARDED_BY(core_lock_){inbox_.pending(), options_.id};
};

}  // namespace keel::runtime
