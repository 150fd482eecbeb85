// runtime/background_tasks.hpp — one group's tasks on its process's shared
// BackgroundWorker: what the group submits is tracked, so that the group can
// stop without stopping the worker (other groups' tasks go on) and yet know
// that none of its tasks runs or waits any more when it is destroyed.
//
// Owns: nothing but the count; the worker belongs to ProcessServices.
// Threads: submit from any thread (a task may submit the next); close from
// any thread but the worker's.
#pragma once

#include <functional>
#include <utility>

#include "keel/assert.hpp"
#include "runtime/background_worker.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

class BackgroundTasks {
public:
    explicit BackgroundTasks(BackgroundWorker& worker) : worker_(worker) {}
    ~BackgroundTasks() { close(); }
    BackgroundTasks(const BackgroundTasks&) = delete;
    BackgroundTasks& operator=(const BackgroundTasks&) = delete;

    // Queues `task` on the worker; false when closed or the worker's queue
    // is full (kMaxBackgroundTasks).
    bool submit(std::function<void()> task) EXCLUDES(mu_) {
        {
            MutexLock lock(mu_);
            if (closed_) return false;
            ++queued_;
        }
        auto tracked = [this, task = std::move(task)] {
            task();
            finished();
        };
        if (worker_.submit(std::move(tracked))) return true;
        finished();
        return false;
    }

    // Refuses new tasks, then waits until every task submitted has run
    // (what is queued runs, as BackgroundWorker::stop does).  Idempotent.
    void close() EXCLUDES(mu_) {
        KEEL_ASSERT(!worker_.on_worker_thread(), "a group's tasks are not closed from one of them");
        MutexLock lock(mu_);
        closed_ = true;
        while (queued_ > 0) idle_.wait(lock);
    }

private:
    void finished() EXCLUDES(mu_) {
        MutexLock lock(mu_);
        if (--queued_ == 0) idle_.notify_all();
    }

    BackgroundWorker& worker_;
    Mutex mu_;
    CondVar idle_;
    std::size_t queued_ GUARDED_BY(mu_) = 0;
    bool closed_ GUARDED_BY(mu_) = false;
};

}  // namespace keel::runtime
