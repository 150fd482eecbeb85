// runtime/services.hpp — the per-process services a replica runs on: the
// I/O thread (an asio::io_context: the transport's sockets, the timers), the
// ordered outbox of work for it, and the background thread (snapshot files,
// log compaction, checking received snapshots).  None of it knows Raft: a
// process hosting several groups would share one Services, each group
// keeping its own state (replica.hpp).  The WAL's flusher belongs to the WAL.
//
// The outbox: work produced under a group's core lock that must run on the
// I/O thread (a message to send, a peer to set, a timer to arm) is queued
// here in the order it was produced, and run there in that order.
//
// Threads: post, to_io, flush_outbox and if_outbox_idle from any thread;
// run_outbox and close_outbox on the I/O thread.
#pragma once

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/background_worker.hpp"
#include "runtime/thread_annotations.hpp"

namespace boost::asio {
class io_context;
}

namespace keel::runtime {

class Services {
public:
    Services();
    // The I/O thread must have been stopped (stop_io) or never started.
    ~Services();
    Services(const Services&) = delete;
    Services& operator=(const Services&) = delete;

    boost::asio::io_context& io() { return *io_; }
    // Starts the I/O thread ("keel-io"); returns once it runs.
    void start_io();
    bool io_started() const { return io_thread_.joinable(); }
    bool on_io_thread() const { return std::this_thread::get_id() == io_thread_id_; }
    // Runs `f` on the I/O thread.
    void post(std::function<void()> f);
    // Lets the I/O thread finish (work queued later is not run) and joins it.
    // REQUIRES: not on the I/O thread.
    void stop_io();

    BackgroundWorker& background() { return background_; }

    // ---- the outbox ----
    // Queues `work` for the I/O thread, after everything queued before.
    void to_io(std::function<void()> work) EXCLUDES(mu_);
    // Runs the outbox now on the I/O thread, else posts one run of it.
    void flush_outbox() EXCLUDES(mu_);
    // I/O thread: runs what is queued, in order.
    void run_outbox() EXCLUDES(mu_);
    // I/O thread: work queued from now on is dropped (the node shuts down).
    void close_outbox() { outbox_closed_ = true; }
    // Runs `f` under the outbox lock if nothing is queued for the I/O thread
    // nor being run by it: what `f` sends then overtakes nothing.
    template <typename F>
    void if_outbox_idle(F&& f) EXCLUDES(mu_) {
        MutexLock lock(mu_);
        if (outbox_.empty() && !outbox_running_) f();
    }

private:
    struct WorkGuard;

    std::unique_ptr<boost::asio::io_context> io_;
    std::unique_ptr<WorkGuard> work_;
    std::thread io_thread_;
    std::thread::id io_thread_id_;
    BackgroundWorker background_;

    Mutex mu_;
    std::vector<std::function<void()>> outbox_ GUARDED_BY(mu_);
    bool outbox_posted_ GUARDED_BY(mu_) = false;
    // The I/O thread is running work it took from the outbox.
    bool outbox_running_ GUARDED_BY(mu_) = false;
    bool outbox_closed_ = false;  // I/O thread only
};

}  // namespace keel::runtime
