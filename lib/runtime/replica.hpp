// runtime/replica.hpp — keel::Node's implementation: one Raft core, its
// WAL-backed log, snapshots, a transport and the application's state
// machine, driven by an asio::io_context on one I/O thread.
//
// Threads (see also keel/node.hpp):
//   I/O thread      the core (every call), the transport, the ticker, the
//                   trackers; runs a batch of core output after every input
//                   (proposals drained from the inbox, a message, a WAL
//                   completion, an apply report, a tick) — never on a poll.
//   WAL flusher     writes + fdatasyncs batches; its completions only record
//                   progress in atomics and post one handler to the I/O thread.
//   apply thread    ApplyWorker: StateMachine::apply/snapshot/restore and
//                   proposal callbacks.
//   background      BackgroundWorker: writes snapshot files, compacts the log.
//
// The single-node write path: propose() (caller) -> inbox + one post ->
// I/O: core.propose for everything queued, take_actions -> WAL append ->
// flusher fsync -> post -> I/O: core.on_persisted commits -> apply queue ->
// apply thread applies and completes the caller's future.
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
#include "raft/core.hpp"
#include "runtime/apply_worker.hpp"
#include "runtime/background_worker.hpp"
#include "runtime/latency_histogram.hpp"
#include "runtime/log_store.hpp"
#include "runtime/peer_transport.hpp"
#include "runtime/proposal_tracker.hpp"
#include "runtime/read_tracker.hpp"
#include "runtime/snapshot_store.hpp"
#include "runtime/ticker.hpp"

namespace keel::runtime {

// Complete snapshots from leaders kept until the core installs one.
inline constexpr std::size_t k_max_staged_snapshots = 2;

// Makes the TCP transport for a replica (peer_transport_tcp.cpp), or null
// when this build has none.
using TransportFactory = std::function<Result<std::unique_ptr<PeerTransport>>(
    boost::asio::io_context&, const NodeOptions&, PeerTransport::Handlers)>;

class Replica final : public Node {
public:
    static Result<std::unique_ptr<Node>> open(const NodeOptions& options,
                                              std::shared_ptr<StateMachine> state_machine);
    ~Replica() override;

    void propose_async(std::string data, std::function<void(ProposeResult)> done) override;
    void read_index_async(bool wait_applied, std::function<void(ReadResult)> done) override;
    void add_member_async(const MemberSpec& member, std::function<void(Status)> done) override;
    void promote_member_async(NodeId id, std::function<void(Status)> done) override;
    void remove_member_async(NodeId id, std::function<void(Status)> done) override;
    void transfer_leadership_async(NodeId to, std::function<void(Status)> done) override;
    void snapshot_async(std::function<void(Status)> done) override;
    NodeStatus status() const override;
    Result<MemberSpec> member(NodeId id) const override;
    void stop(bool transfer_leadership_first = false) override;

private:
    struct InboxProposal {
        std::string data;
        std::function<void(ProposeResult)> done;
        std::uint64_t start_ns = 0;
    };
    struct InFlightWrite {  // a WAL append or reset not yet durable
        std::uint64_t seq = 0;
        raft::Index index = 0;  // last entry appended (0 for a reset)
        raft::Term term = 0;
    };
    struct PendingTransfer {
        raft::NodeId target = 0;
        std::function<void(Status)> done;
        std::uint64_t ticks_left = 0;
    };

    Replica(NodeOptions options, std::shared_ptr<StateMachine> sm);
    Status start(TransportFactory factory);
    void log(LogLevel level, const std::string& message) const;
    // Runs `f` on the I/O thread (thread-safe).
    void post(std::function<void()> f);
    bool on_io_thread() const { return std::this_thread::get_id() == io_thread_id_; }

    // ---- I/O thread (actions_executor.cpp) ----
    void drain_inbox();
    void run_core();
    void execute(raft::Actions& a);
    void on_soft_state(const raft::SoftState& ss);
    void install_snapshot(const raft::SnapshotMeta& meta);
    void persist_entries(std::vector<raft::Entry> entries);
    void send_messages(std::vector<raft::Message> messages);
    void send_snapshot(const raft::Message& m);
    void on_configuration(const raft::Configuration& config);
    void on_wal_progress();
    void on_applied_progress();
    void on_snapshot_written(const raft::SnapshotMeta& meta);
    void on_tick();
    void on_snapshot_received(raft::Message message, std::string path);
    void fail_stop(const Status& why);
    void shutdown_on_io();
    void publish_status();
    void flush_deferred_inbox_post();
    void propose_config(raft::ConfigChange change, std::function<void(Status)> done);

    const NodeOptions options_;
    std::shared_ptr<StateMachine> sm_;

    std::unique_ptr<boost::asio::io_context> io_;
    struct WorkGuard;
    std::unique_ptr<WorkGuard> work_;
    std::thread io_thread_;
    std::thread::id io_thread_id_;

    std::unique_ptr<LogStore> log_;
    std::unique_ptr<SnapshotStore> snapshots_;
    std::unique_ptr<raft::Core> core_;
    std::unique_ptr<ApplyWorker> apply_;
    std::unique_ptr<BackgroundWorker> background_;
    std::unique_ptr<Ticker> ticker_;
    std::unique_ptr<PeerTransport> transport_;

    // I/O-thread state.
    ProposalTracker proposals_;
    ReadTracker reads_;
    raft::HardState saved_hard_state_;
    raft::Role role_ = raft::Role::follower;
    std::uint64_t write_seq_ = 0;
    std::deque<InFlightWrite> in_flight_;
    std::deque<std::pair<std::uint64_t, std::vector<raft::Message>>> after_persist_;
    std::optional<PendingTransfer> transfer_;
    // Snapshots received from leaders, staged until the core installs one.
    std::map<std::pair<raft::Index, raft::Term>, std::string> staged_;
    std::map<raft::NodeId, raft::Index> outgoing_snapshot_;  // peer -> index being sent
    std::map<raft::NodeId, std::string> peers_;              // id -> raft address
    bool failed_ = false;
    bool core_config_single_voter_ = false;  // at start (set before threads run)
    bool shut_down_ = false;

    // Inbox: proposals from any thread, drained by the I/O thread.
    std::mutex inbox_mu_;
    std::vector<InboxProposal> inbox_;     // GUARDED_BY(inbox_mu_)
    std::vector<InboxProposal> draining_;  // I/O thread
    bool inbox_posted_ = false;            // GUARDED_BY(inbox_mu_)
    bool inbox_post_deferred_ = false;     // GUARDED_BY(inbox_mu_)

    // Progress reported by other threads (coalesced into one post each).
    std::atomic<std::uint64_t> durable_seq_{0};
    std::atomic<bool> wal_post_pending_{false};
    std::atomic<bool> wal_failed_{false};
    std::atomic<bool> applied_post_pending_{false};

    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> pending_proposals_{0};
    std::atomic<std::uint64_t> elections_{0};
    std::atomic<std::uint64_t> proposals_accepted_{0};
    LatencyHistogramRecorder commit_latency_;
    LatencyHistogramRecorder fsync_latency_;
    std::once_flag stop_once_;

    // Published by the I/O thread for status()/member().
    mutable std::mutex status_mu_;
    NodeStatus status_;  // GUARDED_BY(status_mu_); counters filled in at read time
};

}  // namespace keel::runtime
