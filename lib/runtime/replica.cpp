// A group's start-up and shutdown: opening (recovery), wiring the parts to
// the process's services and to each other (what the WAL and the apply
// thread call back), stopping, and status().  The public calls are in replica_calls.cpp,
// the write path in write_path.cpp.
#include "runtime/replica.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>

#include <fmt/format.h>

#include "keel/wal/wal.hpp"

#include "runtime/bootstrap.hpp"
#include "runtime/member_context.hpp"
#include "runtime/peer_security.hpp"
#include "runtime/single_group_node.hpp"
#include "runtime/snapshot_file.hpp"

namespace keel::runtime {

namespace {

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
    c.quiesce = o.quiesce;
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
    return SingleGroupNode::open(options, std::move(state_machine), fs);
}

Result<std::unique_ptr<Replica>> Replica::open_group(const NodeOptions& options,
                                                     std::shared_ptr<StateMachine> state_machine,
                                                     ProcessServices& services, GroupId group,
                                                     wal::FileSystem* fs,
                                                     bool wait_for_lone_voter) {
    if (Status s = validate(options); !s.ok()) return s;
    if (!state_machine) return Status(ErrorCode::invalid_argument, "state machine is null");
    std::unique_ptr<Replica> r(new Replica(options, services, group));
    if (Status s = r->start(std::move(state_machine), fs, /*open_process_transport=*/false);
        !s.ok())
        return s;
    if (wait_for_lone_voter) r->await_lone_voter();
    return r;
}

Result<std::unique_ptr<Replica>> Replica::open_process_group(
    const NodeOptions& options, std::shared_ptr<StateMachine> state_machine,
    ProcessServices& services, wal::FileSystem* fs) {
    if (Status s = validate(options); !s.ok()) return s;
    if (!state_machine) return Status(ErrorCode::invalid_argument, "state machine is null");
    std::unique_ptr<Replica> r(new Replica(options, services, 0));
    if (Status s = r->start(std::move(state_machine), fs, /*open_process_transport=*/true); !s.ok())
        return s;
    r->await_lone_voter();
    return r;
}

bool Replica::lone_voter() {
    bool single_voter = false;
    with_core([&]() REQUIRES(core_lock_) {
        const raft::Configuration& c = core_->configuration();
        single_voter = c.members.size() == 1 && c.is_voter(options_.id);
    });
    return single_voter;
}

// A lone voter elects itself at once but refuses proposals (busy) until its
// first entry of the new term is durable (raft/core: its own vote must be
// on disk first).  Bounded; in a cluster the read fails fast on a follower
// and opening does not wait for an election.
void Replica::await_lone_voter() {
    if (lone_voter()) {
        auto ready = read_index(false);
        (void)ready.wait_for(std::chrono::seconds(10));
    }
}

Replica::Replica(NodeOptions options, ProcessServices& services, GroupId group)
    : options_(std::move(options)),
      seat_(services, group),
      announcer_(
          options_.observer,
          [this]() REQUIRES(core_lock_) {
              fail_stop(Status(
                  ErrorCode::failed,
                  fmt::format("the observer fell {} events behind (its callbacks must not block)",
                              kMaxQueuedObserverEvents)));
          },
          services.event_pool()) {}

Replica::~Replica() {
    stop(false);
    // Close the channel and the WAL while every member their callbacks
    // touch is still alive (the WAL completes queued writes when closed).
    transport_.reset();
    timers_.tick.reset();
    timers_.no_space.reset();
    log_.reset();
}

void Replica::post(std::function<void()> f) {
    seat_.services.post([closed = seat_.io_closed, f = std::move(f)] {
        if (!*closed) f();
    });
}

void Replica::log(LogLevel level, const std::string& message) const {
    if (options_.logger) {
        options_.logger(level, message);
    } else if (level == LogLevel::warn || level == LogLevel::error) {
        std::fprintf(stderr, "keel[%llu] %s: %s\n", static_cast<unsigned long long>(options_.id),
                     level == LogLevel::warn ? "warn" : "error", message.c_str());
    }
}

Status Replica::start(std::shared_ptr<StateMachine> sm, wal::FileSystem* fs,
                      bool open_process_transport) {
    // What the options alone break, before anything is written; the
    // configuration from the log is checked once it is read.
    if (Status s = check_peer_security(); !s.ok()) return s;
    // On the process's shared WAL if it has one, else on a WAL of its own.
    wal::Options wo = wal_options(fs);
    std::unique_ptr<LogStore> shared_log;
    if (SharedWal* shared = seat_.services.wal()) {
        auto store =
            shared->open_group(seat_.group, SharedWal::Hooks{wo.after_batch, wo.on_health_change});
        if (!store.ok()) return store.status();
        shared_log = std::move(store.value());
    }
    auto recovered = recover_or_bootstrap(
        options_, *sm, wo, [this](LogLevel l, const std::string& m) { log(l, m); },
        std::move(shared_log));
    if (!recovered.ok()) return recovered.status();
    Recovered& rec = recovered.value();
    log_ = std::move(rec.log);
    wal_ = &log_->wal();
    snapshots_ = std::move(rec.snapshots);
    // Large pruned snapshot files are deleted in steps on the background
    // thread, never on the I/O thread that adopts a leader's snapshot.  The
    // tasks outlive the store (seat_ is destroyed after it) but not seat_.
    snapshots_->set_remover([tasks = &seat_.background](std::function<void()> task) {
        return tasks->submit(std::move(task));
    });
    locked_.gate.start_from(rec.state.hard_state);
    if (rec.state.snapshot && !rec.state.snapshot_is_floor)
        board_.set_snapshot_index(rec.state.snapshot->index);
    if (rec.state.snapshot && rec.state.snapshot_is_floor)
        health_.saved_floor.store(rec.state.snapshot->index);
    board_.set_cluster_id(rec.cluster_id.hex());
    core_ = std::make_unique<raft::Core>(core_options(options_), std::move(rec.state));

    // The process's one timer ticks this group while its core needs it.
    auto ticks = seat_.services.clock().subscribe(
        std::chrono::milliseconds(options_.heartbeat_interval_ms),
        [this] { with_core([this]() REQUIRES(core_lock_) { on_tick(); }); });
    if (!ticks.ok()) return ticks.status();
    timers_.tick = std::move(ticks.value());
    if (options_.quiesce) {
        if (Status s = seat_.services.liveness().enable(
                options_.id, std::chrono::milliseconds(options_.heartbeat_interval_ms),
                std::uint64_t{options_.election_timeout_max_ms} * 1000);
            !s.ok())
            return s;
    }
    timers_.no_space = std::make_unique<Ticker>(
        seat_.services.io(), std::chrono::milliseconds(kNoSpaceRetryMs),
        [this] { with_core([this]() REQUIRES(core_lock_) { on_no_space_tick(); }); });
    apply_ = std::make_unique<ApplyWorker>(std::move(sm), rec.applied, rec.last_snapshot_index,
                                           options_.snapshot_every_entries, apply_hooks(),
                                           &board_.commit_latency, seat_.services.apply_pool());
    // Single-node mode until the core needs ticks (set_ticker_needed).
    log_->set_single_mode(true);

    if (Status s = check_peer_security(); !s.ok()) return s;
    if (open_process_transport) {
        auto t = make_process_transport(seat_.services.io(), options_, rec.cluster_id,
                                        advertised_address(), process_transport_hooks());
        if (!t.ok()) return t.status();
        auto on_rejected = [this](std::string_view reason, std::string_view detail) {
            count_rejection(reason, detail);
        };
        if (Status s = seat_.services.start_transport(std::move(*t), on_rejected); !s.ok())
            return s;
    }
    if (seat_.services.router().started()) {
        auto channel =
            make_group_channel(seat_.services, options_, seat_.group, transport_handlers());
        if (!channel.ok()) {
            // The transport's hooks are this group's: stop it before the group goes.
            if (open_process_transport) seat_.services.stop();
            return channel.status();
        }
        transport_ = std::move(channel.value());
    }

    publish_status();
    // The host's verdict on a peer process (process_liveness.hpp).
    seat_.services.liveness().attach(seat_.group, [this](raft::NodeId peer) {
        with_core([this, peer]() REQUIRES(core_lock_) {
            if (halted()) return;
            core_->peer_down(peer);
            run_core();
        });
    });
    apply_->start();
    if (!seat_.services.io_started()) seat_.services.start_io();
    lifecycle_.store(Lifecycle::running);
    with_core([this]() REQUIRES(core_lock_) {
        on_configuration(core_->configuration());
        // The WAL may have reported during open (settle takes it).
        core_lock_.note(CoreLock::kWalHealth);
        run_core();
    });
    return Status::ok_status();
}

// What the WAL calls back: each callback records its news or takes the core
// lock; none blocks its caller's thread longer than that.
wal::Options Replica::wal_options(wal::FileSystem* fs) {
    wal::Options wo;
    wo.fs = fs;
    wo.segment_bytes = options_.wal_segment_bytes;
    wo.write_path = options_.wal_direct_io ? wal::WritePath::automatic : wal::WritePath::buffered;
    wo.max_record_bytes = std::max<std::uint64_t>(options_.max_entry_bytes, 1 << 20);
    // The per-write callbacks only record progress; one commit per group
    // commit, so entries fsynced together are applied (and their proposers'
    // next proposals appended) together.
    wo.after_batch = [this] { on_wal_batch_done(); };
    // A failure or a full disk (and space coming back): settled under the
    // core lock like any other progress.
    wo.on_health_change = [this] {
        core_lock_.note(CoreLock::kWalHealth);
        if (lifecycle_.load() == Lifecycle::running) kick_core();
    };
    // The core keeps the log in memory; the WAL is read at open only.
    wo.cache_bytes = 0;
    return wo;
}

ApplyWorker::Hooks Replica::apply_hooks() {
    ApplyWorker::Hooks hooks;
    hooks.on_applied = [this](raft::Index) {
        core_lock_.note(CoreLock::kAppliedProgress);
        kick_core();
    };
    hooks.on_snapshot = [this](SnapshotFunction fn, raft::SnapshotMeta meta, bool asked_for,
                               std::function<void(Status)> done) {
        const std::uint64_t generation = log_->generation();
        // One asked for (snapshot_now()) is durable when answered; an
        // automatic one is flushed when the log's compaction needs it.
        const Durability durability = asked_for ? Durability::now : Durability::deferred;
        auto task = [this, fn = std::move(fn), meta = std::move(meta), done = std::move(done),
                     generation, durability]() mutable {
            write_snapshot(std::move(fn), meta, durability, generation, done);
        };
        if (!seat_.background.submit(std::move(task)))
            log(LogLevel::warn, "snapshot not started: background queue full or stopping");
    };
    // A state machine that failed half-way through a restore cannot go on
    // applying: fail-stop (a restart restores again from the files).
    hooks.on_restore_failed = [this](Status why) {
        with_core([this, why = std::move(why)]() REQUIRES(core_lock_) { fail_stop(why); });
    };
    hooks.log = [this](LogLevel l, const std::string& m) { log(l, m); };
    hooks.batch_begin = [this] { inline_.begin_callbacks(); };
    hooks.batch_end = [this] {
        inline_.end_callbacks();
        if (inbox_.nonempty()) kick_core();
    };
    hooks.recycle = [this](std::vector<raft::Entry> entries, std::vector<ApplyWaiter> waiters) {
        spares_.entries.give(std::move(entries));
        spares_.waiters.give(std::move(waiters));
    };
    return hooks;
}

NodeStatus Replica::status() const {
    NodeStatus s = board_.read();
    s.applied_index = apply_->applied_index();
    // status_ is published after each batch of core output; the apply thread may be
    // ahead of that publication, and commit >= applied always holds.
    s.commit_index = std::max(s.commit_index, s.applied_index);
    s.last_index = std::max(s.last_index, s.commit_index);
    // The mode as the timer has it.  The core's change of mode reaches the
    // ticker through the I/O thread, so the two differ for a moment; a
    // status that says single must mean no tick is counted any more (read
    // before the wakeups: Ticker::armed).
    if (timers_.tick->armed()) s.mode = Mode::cluster;
    s.timer_wakeups = timers_.tick->wakeups() + timers_.no_space->wakeups();
    if (health_.no_space_causes.load() != 0) s.alarms.push_back(kAlarmNoSpace);
    s.snapshots_damaged = snapshots_->damaged().size() + board_.snapshots_rejected.load();
    s.elections = board_.elections.load();
    s.messages_received = board_.received();
    s.proposals = board_.proposals_accepted.load();
    s.commits = apply_->entries_applied();
    if (log_) {
        const wal::Stats w = log_->wal().stats();
        s.wal.segments = w.segments;
        s.wal.bytes = w.disk_bytes;
        s.wal.fsyncs = w.fsyncs;
        s.wal.records = w.records_written;
        s.wal.records_per_fsync = w.records_per_fsync();
    }
    s.commit_latency = board_.commit_latency.snapshot();
    s.fsync_latency = board_.fsync_latency.snapshot();
    return s;
}

Result<MemberSpec> Replica::member(NodeId id) const {
    return board_.member(id);
}

void Replica::hand_leadership_on() {
    const NodeStatus st = status();
    if (st.role != Role::leader) return;
    // A voter that holds every committed entry, else any other voter.
    NodeId target = 0;
    for (const MemberStatus& m : st.members)
        if (m.spec.id != options_.id && m.spec.voter && m.match_index >= st.commit_index)
            target = m.spec.id;
    for (const MemberStatus& m : st.members)
        if (target == 0 && m.spec.id != options_.id && m.spec.voter) target = m.spec.id;
    if (target == 0) return;
    auto done = transfer_leadership(target);
    done.wait_for(std::chrono::milliseconds(4 * options_.election_timeout_max_ms));
}

void Replica::stop(bool transfer_leadership_first) {
    KEEL_ASSERT(!on_io_thread(), "stop() from a keel callback");
    KEEL_ASSERT(!holding_core() && !inline_.in_callbacks(), "stop() from a keel callback");
    std::call_once(stop_once_, [&] {
        const bool ran = lifecycle_.load() == Lifecycle::running;
        // The transfer goes first: it is a public call, refused once stopping.
        if (transfer_leadership_first && ran) hand_leadership_on();
        // Public calls are refused from here on.
        lifecycle_.store(Lifecycle::stopping);
        if (ran) {
            // The channel, the timers and the work queued for them go now,
            // on the I/O thread, which goes on for the process's other
            // groups (the outbox is flushed as the lock is let go: nothing
            // of this group is left in it).
            std::promise<void> done;
            seat_.services.post([this, &done] {
                with_core([this]() REQUIRES(core_lock_) { shutdown_on_io(); });
                // What a message claimed to apply after a write of this
                // thread's (write_io_batch) that is still queued: posts are
                // dropped from now on, so it is applied here, or closing
                // the apply queue below would wait for it for ever.
                apply_io_claims();
                done.set_value();
            });
            done.get_future().wait();
        }
        if (apply_) apply_->stop();
        seat_.background.close();
        // Last: every thread above queues events.  What is queued is delivered.
        announcer_.stop();
        // The WAL stays open (status() reads it) until the destructor.
    });
}

}  // namespace keel::runtime
