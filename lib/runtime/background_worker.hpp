// runtime/background_worker.hpp — one thread for slow, rare work that must
// stay off the I/O and apply threads: writing snapshots, compacting the log
// (the WAL's metadata write; it deletes files on its own thread), reading
// snapshots to send to followers.  Tasks run one at a time, in order.
#pragma once

#include <pthread.h>

#include <deque>
#include <functional>
#include <thread>

#include "keel/assert.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

// Tasks queued beyond this are refused (submit returns false): snapshots
// are at most a few in flight, so a full queue means something is stuck.
inline constexpr std::size_t kMaxBackgroundTasks = 1024;

class BackgroundWorker {
public:
    BackgroundWorker() : thread_([this] { run(); }) {}
    ~BackgroundWorker() { stop(); }
    BackgroundWorker(const BackgroundWorker&) = delete;
    BackgroundWorker& operator=(const BackgroundWorker&) = delete;

    bool submit(std::function<void()> task) EXCLUDES(mu_) {
        {
            MutexLock lock(mu_);
            if (stopping_ || tasks_.size() >= kMaxBackgroundTasks) return false;
            tasks_.push_back(std::move(task));
        }
        cv_.notify_one();
        return true;
    }

    // Runs what is queued, then joins.  Idempotent.
    void stop() EXCLUDES(mu_) {
        {
            MutexLock lock(mu_);
            stopping_ = true;
        }
        cv_.notify_one();
        if (thread_.joinable()) thread_.join();
    }

    bool on_worker_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

private:
    void run() EXCLUDES(mu_) {
        pthread_setname_np(pthread_self(), "keel-background");
        for (;;) {
            std::function<void()> task;
            {
                MutexLock lock(mu_);
                while (!stopping_ && tasks_.empty()) cv_.wait(lock);
                if (tasks_.empty()) return;
                task = std::move(tasks_.front());
                tasks_.pop_front();
            }
            task();
        }
    }

    Mutex mu_;
    CondVar cv_;
    std::deque<std::function<void()>> tasks_ GUARDED_BY(mu_);
    bool stopping_ GUARDED_BY(mu_) = false;
    std::thread thread_;
};

}  // namespace keel::runtime
