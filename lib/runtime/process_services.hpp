// runtime/process_services.hpp — what one process gives every Raft group it
// hosts: the I/O thread (an asio::io_context: the transport's sockets and
// every group's timers run on it), the ordered outbox of work for that
// thread, the background thread (snapshot files, log compaction, checking
// received snapshots), and the transport with its demultiplexer by GroupId
// (group_router.hpp), the one tick timer every group shares
// (process_clock.hpp), the host liveness of quiescent groups
// (process_liveness.hpp) and, with start_pools() (keel::Host), the pools
// that apply for every group and deliver every group's observer events
// (strand_pool.hpp).  None of it knows Raft.  A group (replica.hpp) is
// handed these services and its GroupId and owns none of them; keel::Node
// is one ProcessServices with one group, 0 (single_group_node.hpp).  With
// open_wal(), the groups share one WAL (shared_wal.hpp): one flusher, one
// write and one fdatasync per batch whatever the groups; without, each
// group has a WAL of its own in its data dir (keel::Node's layout).
//
// The outbox: work produced under a group's core lock that must run on the
// I/O thread (a message to send, a peer to set, a timer to arm) is queued
// here in the order it was produced, and run there in that order.  One
// outbox for all groups: a group's direct send (if_outbox_idle) overtakes
// nothing queued, and the transport's send_now is called by one thread at a
// time, whatever the number of groups.
//
// Owns: the io_context and the I/O thread, the outbox, the background
// worker, the router (and through it the transport), the clock, the
// liveness, the shared WAL.  Outlives its groups.
// Threads: post, to_io, flush_outbox and if_outbox_idle from any thread;
// run_outbox on the I/O thread; start_transport, start_io and stop from a
// thread that is not the I/O thread.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/background_worker.hpp"
#include "runtime/group_router.hpp"
#include "runtime/process_clock.hpp"
#include "runtime/process_liveness.hpp"
#include "runtime/shared_wal.hpp"
#include "runtime/strand_pool.hpp"
#include "runtime/thread_annotations.hpp"

namespace boost::asio {
class io_context;
}

namespace keel::transport {
class MessageChannel;
}

namespace keel::runtime {

class ProcessServices {
public:
    ProcessServices();
    // Stops what still runs (stop()).
    ~ProcessServices();
    ProcessServices(const ProcessServices&) = delete;
    ProcessServices& operator=(const ProcessServices&) = delete;

    // The groups' timers (ticker.hpp) and sockets run on it.
    boost::asio::io_context& io() { return *io_; }
    // Starts the I/O thread ("keel-io"); returns once it runs.  Once.
    void start_io();
    bool io_started() const { return io_thread_.joinable(); }
    bool on_io_thread() const { return std::this_thread::get_id() == io_thread_id_; }
    // Runs `f` on the I/O thread.
    void post(std::function<void()> f);

    // Starts the process's transport (once, before any group uses it):
    // deliveries go to the router, which hands them to the groups; refusals
    // of unknown groups go to `on_rejected` too.  `process_peers`: the
    // process's peers, the only ones the transport reaches (GroupRouter::start;
    // a keel::Host changes them through the router).
    Status start_transport(
        std::shared_ptr<Transport> transport, GroupRouter::RejectionHook on_rejected,
        std::optional<std::map<NodeId, std::string>> process_peers = std::nullopt);
    GroupRouter& router() { return router_; }

    BackgroundWorker& background() { return background_; }
    // The one tick timer of the process: every group subscribes.
    ProcessClock& clock() { return clock_; }
    // Which peer processes are alive (groups with quiescence on enable it).
    ProcessLiveness& liveness() { return liveness_; }

    // Opens the WAL every group opened from now on shares (once, before
    // the groups; shared_wal.hpp).
    Status open_wal(const std::string& dir, wal::Options options);
    // Null until open_wal().
    SharedWal* wal() { return wal_.get(); }

    // Starts the pools the groups opened from now on share: `apply_threads`
    // threads ("keel-apply") that apply for every group, and one
    // ("keel-events") for every group's observer (once, before the groups).
    // Without, each group has an apply thread and an observer thread of its
    // own (keel::Node).
    void start_pools(std::size_t apply_threads);
    // Null without start_pools().
    StrandPool* apply_pool() { return apply_pool_.get(); }
    StrandPool* event_pool() { return event_pool_.get(); }

    // Stops the transport (on the I/O thread), then the I/O thread (work
    // queued and not run is dropped), then the background thread (what is
    // queued runs), then the pools, then closes the shared WAL.  Idempotent.  REQUIRES: every group
    // has stopped; not on the I/O thread.
    void stop();

    // ---- the outbox ----
    // Queues `work` for the I/O thread, after everything queued before.  It
    // is skipped if `closed` reads true when its turn comes (read on the
    // I/O thread): a group sets its flag as it shuts down there, and what
    // it queued earlier is dropped.  `closed` must outlive the work: a
    // group's shutdown flushes the outbox before the group may go.
    void to_io(const bool& closed, std::function<void()> work) EXCLUDES(mu_);
    // to_io of `channel.send(messages)`, queued without wrapping it in a
    // std::function: the batch is the work nearly every entry of the outbox
    // carries, and the wrapper was a heap allocation per batch (decision 0050).
    void to_io_send(const bool& closed, transport::MessageChannel& channel,
                    std::vector<raft::Message> messages) EXCLUDES(mu_);
    // Runs the outbox now on the I/O thread, else posts one run of it.
    void flush_outbox() EXCLUDES(mu_);
    // I/O thread: runs what is queued, in order.
    void run_outbox() EXCLUDES(mu_);
    // Runs `f` under the outbox lock if nothing is queued for the I/O thread
    // nor being run by it: what `f` sends then overtakes nothing.
    template <typename F>
    void if_outbox_idle(F&& f) EXCLUDES(mu_) {
        MutexLock lock(mu_);
        if (outbox_.empty() && !outbox_running_) f();
    }

private:
    struct WorkGuard;
    // Either `run`, or `channel->send(messages)`.
    struct Work {
        const bool* closed = nullptr;
        std::function<void()> run;
        transport::MessageChannel* channel = nullptr;
        std::vector<raft::Message> messages;
    };

    // Declared first, destroyed last: the router's and the worker's threads
    // may post to it until they stop.
    std::unique_ptr<boost::asio::io_context> io_;
    std::unique_ptr<WorkGuard> work_;
    std::thread io_thread_;
    std::thread::id io_thread_id_;
    BackgroundWorker background_;
    GroupRouter router_;
    ProcessClock clock_{*io_};
    ProcessLiveness liveness_{router_, clock_};
    std::unique_ptr<SharedWal> wal_;
    std::unique_ptr<StrandPool> apply_pool_;
    // apply_pool_ for the I/O thread's batches (post()), set once.
    std::atomic<StrandPool*> batched_pool_{nullptr};
    std::unique_ptr<StrandPool> event_pool_;
    bool stopped_ = false;

    Mutex mu_;
    std::vector<Work> outbox_ GUARDED_BY(mu_);
    bool outbox_posted_ GUARDED_BY(mu_) = false;
    // The I/O thread is running work it took from the outbox.
    bool outbox_running_ GUARDED_BY(mu_) = false;
    // What the I/O thread's outermost run_outbox runs, swapped with outbox_
    // under mu_: the two vectors trade places and keep their capacity, so
    // queueing allocates nothing once they have grown.  I/O thread only.
    std::vector<Work> outbox_taken_;
    // The most entries whose room outbox_taken_ keeps after a run.
    static constexpr std::size_t kOutboxCapacityKept = 1024;
};

}  // namespace keel::runtime
