// Node's public calls, start-up and shutdown.  The I/O-thread side (what
// happens to each batch of core output) is in actions_executor.cpp.
#include "runtime/replica.hpp"

#include <pthread.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>

#include "keel/wal/wal.hpp"

#include "runtime/bootstrap.hpp"
#include "runtime/member_context.hpp"
#include "runtime/peer_security.hpp"
#include "runtime/snapshot_file.hpp"

namespace keel::runtime {

// Defined in peer_transport_tcp.cpp.
TransportFactory default_transport_factory();

struct Replica::WorkGuard {
    explicit WorkGuard(boost::asio::io_context& io) : guard(io.get_executor()) {}
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard;
};

void Replica::post(std::function<void()> f) {
    boost::asio::post(*io_, std::move(f));
}

namespace {

// The thread-locals below are read on every proposal and every group
// commit.  initial-exec: a load at a fixed offset from the thread pointer,
// where the default model for a shared library calls __tls_get_addr each
// time (docs/decisions/0004-runtime-write-path-tuning.md).  It needs a little static TLS space,
// which glibc reserves even for a library loaded with dlopen.
#define KEEL_FAST_TLS [[gnu::tls_model("initial-exec")]]

// Set on the apply thread while it runs a batch of proposal callbacks:
// proposals those callbacks submit (a closed loop of clients) wait in the
// inbox and are taken into the core once at the end of the batch, so they
// reach the WAL together instead of trickling into separate fsyncs.
KEEL_FAST_TLS thread_local const Replica* t_deferring_replica = nullptr;
// The replica whose core lock this thread holds, if any.  The holder it
// replaced (a callback of one replica may call into another) is kept on
// the stack of the frame that took the lock (enter_core's result).
KEEL_FAST_TLS thread_local const Replica* t_core_holder = nullptr;

// Set on the WAL flusher while it commits what its group commit made
// durable: a small committed batch may then be claimed for inline apply.
KEEL_FAST_TLS thread_local const Replica* t_wal_flusher_of = nullptr;
// Set on the I/O thread while it handles a received message (on_message):
// it may then claim a small committed batch for inline apply, and write the
// entries it appends itself (cluster mode).
KEEL_FAST_TLS thread_local const Replica* t_io_stepping_of = nullptr;

// settle_locked() rounds before what is left goes to the I/O thread: a
// callback that resubmits at once on every failure cannot pin a thread.
constexpr int k_max_settle_rounds = 8;
// kick_core() lock rounds, likewise.
constexpr int k_max_kick_rounds = 4;

Status validate(const NodeOptions& o) {
    if (o.id == 0) return Status(ErrorCode::invalid_argument, "id must be > 0");
    if (o.data_dir.empty()) return Status(ErrorCode::invalid_argument, "data_dir is empty");
    if (o.heartbeat_interval_ms == 0)
        return Status(ErrorCode::invalid_argument, "heartbeat_interval_ms must be > 0");
    if (o.election_timeout_min_ms <= o.heartbeat_interval_ms ||
        o.election_timeout_max_ms < o.election_timeout_min_ms)
        return Status(ErrorCode::invalid_argument,
                      "need heartbeat_interval_ms < election_timeout_min_ms <= "
                      "election_timeout_max_ms");
    if (o.max_pending_proposals == 0 || o.max_pending_reads == 0 ||
        o.max_apply_queue_entries == 0 || o.max_entry_bytes == 0)
        return Status(ErrorCode::invalid_argument, "limits must be > 0");
    return Status::ok_status();
}

raft::Options core_options(const NodeOptions& o) {
    raft::Options c;
    c.id = o.id;
    c.heartbeat_ticks = 1;  // one tick = one heartbeat interval
    c.election_ticks_min = static_cast<int>(
        (o.election_timeout_min_ms + o.heartbeat_interval_ms - 1) / o.heartbeat_interval_ms);
    c.election_ticks_max =
        std::max(c.election_ticks_min + 1,
                 static_cast<int>(o.election_timeout_max_ms / o.heartbeat_interval_ms));
    c.pre_vote = o.pre_vote;
    c.check_quorum = o.check_quorum;
    c.max_proposal_bytes = o.max_entry_bytes;
    c.snapshot_trailing_entries = o.snapshot_trailing_entries;
    c.random_seed =
        o.id * 0x9E3779B97F4A7C15ull ^
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return c;
}

}  // namespace

Result<std::unique_ptr<Node>> Replica::open(const NodeOptions& options,
                                            std::shared_ptr<StateMachine> state_machine,
                                            wal::FileSystem* fs) {
    if (Status s = validate(options); !s.ok()) return s;
    if (!state_machine) return Status(ErrorCode::invalid_argument, "state machine is null");
    std::unique_ptr<Replica> r(new Replica(options, std::move(state_machine)));
    if (Status s = r->start(default_transport_factory(), fs); !s.ok()) return s;
    // A lone voter elects itself at once but refuses proposals (busy) until
    // its first entry of the new term is durable (raft/core: its own vote
    // must be on disk first).  Wait for that one fsync here, so the node is
    // ready to write when open() returns.  Bounded; in a cluster the read
    // fails fast on a follower and open() does not wait for an election.
    if (r->core_config_single_voter_) {
        auto ready = r->read_index(false);
        (void)ready.wait_for(std::chrono::seconds(10));
    }
    return std::unique_ptr<Node>(std::move(r));
}

Replica::Replica(NodeOptions options, std::shared_ptr<StateMachine> sm)
    : options_(std::move(options)), sm_(std::move(sm)) {}

Replica::~Replica() {
    stop(false);
    // Close the transport and the WAL while every member their callbacks
    // touch is still alive (the WAL completes queued writes when closed).
    transport_.reset();
    ticker_.reset();
    log_.reset();
}

void Replica::log(LogLevel level, const std::string& message) const {
    if (options_.logger) {
        options_.logger(level, message);
    } else if (level == LogLevel::warn || level == LogLevel::error) {
        std::fprintf(stderr, "keel[%llu] %s: %s\n", static_cast<unsigned long long>(options_.id),
                     level == LogLevel::warn ? "warn" : "error", message.c_str());
    }
}

Status Replica::start(TransportFactory factory, wal::FileSystem* fs) {
    fs_ = fs != nullptr ? fs : wal::default_file_system();
    // What the options alone break, before anything is written; the
    // configuration from the log is checked once it is read.
    if (Status s = check_peer_security(); !s.ok()) return s;
    auto recovered = recover_or_bootstrap(options_, *sm_, wal_options(fs),
                                          [this](LogLevel l, const std::string& m) { log(l, m); });
    if (!recovered.ok()) return recovered.status();
    Recovered& rec = recovered.value();
    log_ = std::move(rec.log);
    wal_ = &log_->wal();
    snapshots_ = std::move(rec.snapshots);
    gate_.start_from(rec.state.hard_state);
    if (rec.state.snapshot && !rec.state.snapshot_is_floor)
        status_.snapshot_index = rec.state.snapshot->index;
    if (rec.state.snapshot && rec.state.snapshot_is_floor)
        saved_floor_.store(rec.state.snapshot->index);
    status_.cluster_id = rec.cluster_id.hex();
    core_ = std::make_unique<raft::Core>(core_options(options_), std::move(rec.state));
    {
        const raft::Configuration& c = core_->configuration();
        core_config_single_voter_ = c.members.size() == 1 && c.is_voter(options_.id);
    }

    if (options_.observer) events_ = std::make_unique<EventQueue>(kMaxQueuedObserverEvents);
    io_ = std::make_unique<boost::asio::io_context>(1);
    work_ = std::make_unique<WorkGuard>(*io_);
    ticker_ =
        std::make_unique<Ticker>(*io_, std::chrono::milliseconds(options_.heartbeat_interval_ms),
                                 [this] { with_core([this] { on_tick(); }); });
    no_space_ticker_ =
        std::make_unique<Ticker>(*io_, std::chrono::milliseconds(kNoSpaceRetryMs),
                                 [this] { with_core([this] { on_no_space_tick(); }); });
    background_ = std::make_unique<BackgroundWorker>();
    apply_ = std::make_unique<ApplyWorker>(sm_, rec.applied, rec.last_snapshot_index,
                                           options_.snapshot_every_entries, apply_hooks(),
                                           &commit_latency_);
    // Single-node mode until the core needs ticks (set_ticker_needed).
    log_->wal().set_idle_spin_us(k_single_mode_flusher_spin_us);

    if (Status s = check_peer_security(); !s.ok()) return s;
    if (factory) {
        auto t =
            factory(*io_, options_, rec.cluster_id, advertised_address(), transport_handlers());
        if (!t.ok()) return t.status();
        transport_ = std::move(t.value());
    }

    publish_status();
    apply_->start();
    std::promise<void> running;
    io_thread_ = std::thread([this, &running] {
        io_thread_id_ = std::this_thread::get_id();
        pthread_setname_np(pthread_self(), "keel-io");
        running.set_value();
        io_->run();
    });
    running.get_future().wait();
    running_.store(true);
    with_core([this] {
        on_configuration(core_->configuration());
        // The WAL may have reported during open (settle_locked takes it).
        wal_health_pending_.store(true);
        run_core();
    });
    return Status::ok_status();
}

ApplyWorker::Hooks Replica::apply_hooks() {
    ApplyWorker::Hooks hooks;
    hooks.on_applied = [this](raft::Index) {
        applied_progress_pending_.store(true);
        kick_core();
    };
    hooks.on_snapshot = [this](SnapshotFunction fn, raft::SnapshotMeta meta,
                               std::function<void(Status)> done) {
        const std::uint64_t generation = log_->generation();
        auto task = [this, fn = std::move(fn), meta = std::move(meta), done = std::move(done),
                     generation]() mutable {
            write_snapshot(std::move(fn), meta, generation, done);
        };
        if (!background_->submit(std::move(task)))
            log(LogLevel::warn, "snapshot not started: background queue full or stopping");
    };
    // A state machine that failed half-way through a restore cannot go on
    // applying: fail-stop (a restart restores again from the files).
    hooks.on_restore_failed = [this](Status why) {
        with_core([this, why = std::move(why)] { fail_stop(why); });
    };
    hooks.log = [this](LogLevel l, const std::string& m) { log(l, m); };
    hooks.batch_begin = [this] { t_deferring_replica = this; };
    hooks.batch_end = [this] {
        t_deferring_replica = nullptr;
        if (inbox_nonempty_.load()) kick_core();
    };
    hooks.recycle = [this](std::vector<raft::Entry> entries, std::vector<ApplyWaiter> waiters) {
        spare_entries_.give(std::move(entries));
        spare_waiters_.give(std::move(waiters));
    };
    return hooks;
}

// ---- public calls: validate, then hand over to the I/O thread ------------------

void Replica::propose_async(SharedBytes data, std::function<void(ProposeResult)> done) {
    auto fail = [&](ErrorCode code, const char* why) {
        ProposeResult r;
        r.status = Status(code, why);
        done(std::move(r));
    };
    if (stopping_.load(std::memory_order_relaxed)) return fail(ErrorCode::aborted, "node stopped");
    if (data.size() > options_.max_entry_bytes)
        return fail(ErrorCode::too_large, "entry larger than max_entry_bytes");
    if (no_space_causes_.load(std::memory_order_relaxed) != 0)
        return fail(ErrorCode::no_space,
                    "storage is full: writes are refused until space is freed");
    if (apply_->queued_entries() >= options_.max_apply_queue_entries)
        return fail(ErrorCode::busy, "apply queue full");
    if (pending_proposals_.fetch_add(1, std::memory_order_relaxed) >=
        options_.max_pending_proposals) {
        pending_proposals_.fetch_sub(1, std::memory_order_relaxed);
        return fail(ErrorCode::busy, "too many pending proposals");
    }
    InboxProposal p{std::move(data), std::move(done), monotonic_ns()};
    std::size_t queued = 0;
    {
        std::lock_guard lock(inbox_mu_);
        inbox_.push_back(std::move(p));
        queued = inbox_.size();
        // The flag is cleared only under this lock, with the whole inbox
        // taken: with others queued before this one, it is set already.
        if (queued == 1) inbox_nonempty_.store(true);
    }
    // Under the core lock, the holder takes the inbox in before releasing
    // it.  Inside a batch of proposal callbacks, the batch's end does, or
    // every k_deferred_proposals_chunk proposals: the WAL starts on the first
    // chunk while the apply thread is still answering the rest.  Otherwise
    // this thread runs the core itself.
    if (holding_core()) return;
    if (t_deferring_replica == this && queued < k_deferred_proposals_chunk) return;
    kick_core();
}

// The WAL's flusher, after the callbacks of one group commit: commit what
// it made durable, then apply inline what the commit claimed (no lock held).
void Replica::on_wal_batch_done() {
    if (!wal_progress_pending_.load()) return;
    // Single-node mode with the next batch already queued: the flusher goes
    // on to write it, and the apply thread (idle while that batch's
    // proposers wait for their fsync) commits this one.  The commit would
    // otherwise sit between two fsyncs on the only thread that writes.  A
    // closed loop of K proposers then keeps two cohorts of K/2 in turn on
    // the disk and in the state machine, overlapping each one's CPU work
    // with the other's fsync.  (Cluster mode commits here: the commit also
    // releases messages held for this write.)
    if (single_mode_.load(std::memory_order_relaxed) && wal_->has_queued()) {
        apply_->enqueue(ApplyTask{[this] { kick_core(); }});
        return;
    }
    t_wal_flusher_of = this;
    kick_core();
    t_wal_flusher_of = nullptr;
    if (!inline_apply_.empty()) apply_->apply_claimed(inline_apply_);
}

void Replica::on_message(raft::Message& message) {
    // A snapshot's metadata travels with its data (the transport's
    // on_snapshot): alone, in a frame of messages, the core would install a
    // snapshot whose data was never staged.  (The TCP transport refuses it
    // already; another transport might not.)
    if (message.type == raft::MessageType::snapshot)
        return count_rejection(kRejectedWrongFrameKind, "snapshot message from node " +
                                                            std::to_string(message.from) +
                                                            " outside a snapshot stream");
    t_io_stepping_of = this;
    with_core([this, &message] {
        if (shut_down_ || failed_) return;
        note_refusal(core_->step(message));
        run_core();
    });
    // The write first: the leader waits for its acknowledgement, which the
    // commit after it (after_batch, on this thread) releases; no one waits
    // for a follower's apply.  The commit may append more: written in turn.
    // If a batch is being written, its writer takes these after it.
    while (io_write_queued_) {
        io_write_queued_ = false;
        (void)log_->wal().write_queued();
    }
    t_io_stepping_of = nullptr;
    if (io_inline_apply_.empty()) return;
    const std::uint64_t start = monotonic_ns();
    apply_->apply_claimed(io_inline_apply_);
    const std::uint64_t took = monotonic_ns() - start;
    if (took > k_io_inline_apply_limit_ns && !io_inline_apply_off_.exchange(true)) {
        log(LogLevel::warn,
            "a batch applied inline on the I/O thread took " + std::to_string(took / 1000) +
                " us; from now on only the apply thread applies " + "(NodeOptions::inline_apply)");
    }
}

bool Replica::may_apply_inline() const {
    return options_.inline_apply && (t_wal_flusher_of == this || handling_message());
}

bool Replica::handling_message() const {
    return t_io_stepping_of == this;
}

std::deque<ApplyItem>& Replica::inline_queue() {
    return handling_message() ? io_inline_apply_ : inline_apply_;
}

std::uint64_t Replica::inline_apply_budget_ns() const {
    if (handling_message()) {
        const bool off = io_inline_apply_off_.load(std::memory_order_relaxed);
        return ticker_wanted_ && !off ? k_io_inline_apply_ns : 0;
    }
    if (ticker_wanted_) return 0;
    return std::clamp(durable_ns_smoothed_.load(std::memory_order_relaxed),
                      k_single_mode_inline_apply_min_ns, k_single_mode_inline_apply_max_ns);
}

bool Replica::holding_core() const {
    return t_core_holder == this;
}

const Replica* Replica::enter_core() {
    const Replica* outer = t_core_holder;
    t_core_holder = this;
    return outer;
}

void Replica::leave_core(const Replica* outer) {
    KEEL_ASSERT(t_core_holder == this, "core lock nesting");
    t_core_holder = outer;
}

void Replica::run_or_post(std::function<void()> f) {
    if (holding_core()) {
        post([this, f = std::move(f)] { with_core(f); });
    } else {
        with_core(f);
    }
}

void Replica::settle_locked() {
    for (int round = 0; round < k_max_settle_rounds; ++round) {
        bool worked = false;
        if (wal_progress_pending_.exchange(false)) {
            on_wal_progress();
            worked = true;
        }
        // Proposals before the applied progress: those the applied entries'
        // callbacks made carry the new commit index to the followers, which
        // the core sends alone once the leader has applied it
        // (raft/replication.cpp, on_commit_advanced).
        if (inbox_nonempty_.load()) {
            drain_inbox();
            worked = true;
        }
        if (applied_progress_pending_.exchange(false)) {
            on_applied_progress();
            worked = true;
        }
        if (wal_health_pending_.exchange(false)) {
            on_wal_health();
            worked = true;
        }
        if (!worked) return;
    }
    post([this] { with_core([] {}); });
}

bool Replica::work_pending() const {
    return wal_progress_pending_.load() || applied_progress_pending_.load() ||
           inbox_nonempty_.load() || wal_health_pending_.load();
}

void Replica::kick_core() {
    if (holding_core()) return;  // settled before this thread lets go
    for (int round = 0; round < k_max_kick_rounds; ++round) {
        // Busy: the holder sees the work after it lets go (with_core's tail)
        // and takes the lock again, or leaves it to the next holder.  The
        // work was recorded before this try, the holder checks after its
        // unlock, so nothing is stranded (the fences pair with the one in
        // with_core: the work's store and the holder's unlock cannot both be
        // missed).
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (!core_mu_.try_lock()) return;
        {
            std::lock_guard lock(core_mu_, std::adopt_lock);
            const Replica* outer = enter_core();
            settle_locked();
            leave_core(outer);
        }
        flush_io_outbox();
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (!work_pending()) return;
    }
    post([this] { with_core([] {}); });
}

void Replica::read_index_async(bool wait_applied, std::function<void(ReadResult)> done) {
    if (stopping_) return done(ReadResult{Status(ErrorCode::aborted, "node stopped"), 0, 0});
    run_or_post([this, wait_applied, done = std::move(done)]() mutable {
        if (shut_down_ || failed_)
            return done(ReadResult{Status(ErrorCode::aborted, "node stopped"), 0, 0});
        if (reads_.size() >= options_.max_pending_reads)
            return done(ReadResult{Status(ErrorCode::busy, "too many pending reads"), 0, 0});
        const std::uint64_t id = reads_.add(wait_applied, std::move(done));
        if (Status s = core_->read_index(id); !s.ok()) reads_.fail(id, s, core_->leader());
        run_core();
    });
}

void Replica::propose_config(raft::ConfigChange change, std::function<void(Status)> done) {
    if (stopping_) return done(Status(ErrorCode::aborted, "node stopped"));
    if (no_space_causes_.load() != 0)
        return done(Status(ErrorCode::no_space, "storage is full: writes are refused"));
    run_or_post([this, change = std::move(change), done = std::move(done)]() mutable {
        if (shut_down_ || failed_) return done(Status(ErrorCode::aborted, "node stopped"));
        auto r = core_->propose_config_change(change);
        if (!r.ok()) {
            return complete_after_events(
                [done = std::move(done), s = r.status()]() mutable { done(std::move(s)); });
        }
        pending_proposals_.fetch_add(1, std::memory_order_relaxed);
        proposals_.add(PendingProposal{
            r->index, r->term,
            [done = std::move(done)](ProposeResult pr) { done(std::move(pr.status)); }, 0});
        run_core();
    });
}

void Replica::add_member_async(const MemberSpec& member, std::function<void(Status)> done) {
    if (Status s = validate_member(member); !s.ok()) return done(s);
    if (Status s = check_new_member_address(options_, member.raft_address); !s.ok()) return done(s);
    raft::ConfigChange c;
    c.kind =
        member.voter ? raft::ConfigChange::Kind::add_voter : raft::ConfigChange::Kind::add_learner;
    c.node = member.id;
    c.context = encode_member_context(member);
    propose_config(std::move(c), std::move(done));
}

void Replica::promote_member_async(NodeId id, std::function<void(Status)> done) {
    raft::ConfigChange c;
    c.kind = raft::ConfigChange::Kind::promote;
    c.node = id;
    propose_config(std::move(c), std::move(done));
}

void Replica::remove_member_async(NodeId id, std::function<void(Status)> done) {
    raft::ConfigChange c;
    c.kind = raft::ConfigChange::Kind::remove;
    c.node = id;
    propose_config(std::move(c), std::move(done));
}

void Replica::transfer_leadership_async(NodeId to, std::function<void(Status)> done) {
    if (stopping_) return done(Status(ErrorCode::aborted, "node stopped"));
    run_or_post([this, to, done = std::move(done)]() mutable {
        if (shut_down_ || failed_) return done(Status(ErrorCode::aborted, "node stopped"));
        if (transfer_) return done(Status(ErrorCode::busy, "a transfer is already under way"));
        if (Status s = core_->transfer_leadership(to); !s.ok()) return done(s);
        // Bounded: two maximal election timeouts.
        const std::uint64_t ticks =
            2 * (options_.election_timeout_max_ms / options_.heartbeat_interval_ms + 1);
        transfer_ = PendingTransfer{to, std::move(done), ticks};
        run_core();
    });
}

Result<std::unique_ptr<SnapshotFileSource>> Replica::open_latest_snapshot() {
    // The store may delete the newest file's predecessor between latest()
    // and the open (a newer snapshot came): then the next latest() has it.
    for (int attempt = 0; attempt < 3; ++attempt) {
        std::optional<SnapshotFile> latest = snapshots_->latest();
        if (!latest)
            return Status(ErrorCode::not_found, "this node has no snapshot yet: take one first");
        auto source = open_snapshot_source(*fs_, *latest);
        if (source.ok() || source.status().code() != ErrorCode::not_found) return source;
    }
    return Status(ErrorCode::busy, "the snapshots changed while the latest was opened; try again");
}

void Replica::snapshot_async(std::function<void(Status)> done) {
    if (stopping_) return done(Status(ErrorCode::aborted, "node stopped"));
    ApplySnapshot request;
    request.done = std::move(done);
    apply_->enqueue(std::move(request));
}

NodeStatus Replica::status() const {
    NodeStatus s;
    {
        std::lock_guard lock(status_mu_);
        s = status_;
    }
    s.applied_index = apply_->applied_index();
    // status_ is published after each batch of core output; the apply thread may be
    // ahead of that publication, and commit >= applied always holds.
    s.commit_index = std::max(s.commit_index, s.applied_index);
    s.last_index = std::max(s.last_index, s.commit_index);
    // The mode as the timer has it.  The core's change of mode reaches the
    // ticker through the I/O thread, so the two differ for a moment; a
    // status that says single must mean no tick is counted any more (read
    // before the wakeups: Ticker::armed).
    if (ticker_->armed()) s.mode = Mode::cluster;
    s.timer_wakeups = ticker_->wakeups() + no_space_ticker_->wakeups();
    if (no_space_causes_.load() != 0) s.alarms.push_back(kAlarmNoSpace);
    s.snapshots_damaged = snapshots_->damaged().size() + snapshots_rejected_.load();
    s.elections = elections_.load();
    s.proposals = proposals_accepted_.load();
    s.commits = apply_->entries_applied();
    if (log_) {
        const wal::Stats w = log_->wal().stats();
        s.wal.segments = w.segments;
        s.wal.bytes = w.disk_bytes;
        s.wal.fsyncs = w.fsyncs;
        s.wal.records = w.records_written;
        s.wal.records_per_fsync = w.records_per_fsync();
    }
    s.commit_latency = commit_latency_.snapshot();
    s.fsync_latency = fsync_latency_.snapshot();
    {
        std::lock_guard lock(rejected_mu_);
        for (const auto& [reason, count] : rejected_) s.peer_messages_rejected[reason] += count;
    }
    return s;
}

Result<MemberSpec> Replica::member(NodeId id) const {
    std::lock_guard lock(status_mu_);
    for (const MemberStatus& m : status_.members)
        if (m.spec.id == id) return m.spec;
    return Status(ErrorCode::not_found, "no member " + std::to_string(id));
}

void Replica::stop(bool transfer_leadership_first) {
    KEEL_ASSERT(!io_thread_.joinable() || !on_io_thread(), "stop() from a keel callback");
    KEEL_ASSERT(!holding_core() && t_deferring_replica != this, "stop() from a keel callback");
    std::call_once(stop_once_, [&] {
        stopping_ = true;
        running_.store(false);
        if (!io_thread_.joinable()) {  // start() failed before the I/O thread ran
            if (apply_) apply_->stop();
            if (background_) background_->stop();
            if (events_) events_->stop();
            return;
        }
        if (transfer_leadership_first) {
            NodeStatus st = status();
            NodeId target = 0;
            for (const MemberStatus& m : st.members)
                if (m.spec.id != options_.id && m.spec.voter && m.match_index >= st.commit_index)
                    target = m.spec.id;
            for (const MemberStatus& m : st.members)
                if (target == 0 && m.spec.id != options_.id && m.spec.voter) target = m.spec.id;
            if (st.role == Role::leader && target != 0) {
                auto f = transfer_leadership(target);
                f.wait_for(std::chrono::milliseconds(4 * options_.election_timeout_max_ms));
            }
        }
        stopping_ = true;
        std::promise<void> done;
        post([this, &done] {
            with_core([this] { shutdown_on_io(); });
            done.set_value();
        });
        done.get_future().wait();
        work_.reset();
        io_->stop();
        io_thread_.join();
        apply_->stop();
        background_->stop();
        // Last: every thread above queues events.  What is queued is delivered.
        if (events_) events_->stop();
        // The WAL stays open (status() reads it) until the destructor.
    });
}

}  // namespace keel::runtime
