// runtime/strand_pool.hpp — a few threads that run the serial work of many
// groups: each group's queue of work (its applies, its observer's events) is
// a Strand, and the pool's threads take the strands that have work from one
// run queue, oldest first.  What a strand runs stays in its order and never
// runs on two threads at once: a strand is in the run queue at most once,
// and stays "scheduled" (its own flag, under its own lock) from the moment
// it is queued until a slice finds nothing left.  A slice takes what the
// strand had queued when it began, so a strand with a steady stream of work
// goes back to the end of the queue between slices and a slow one holds up
// one thread for one slice, not the others' strands forever.
//
// So a Host of ten thousand groups runs its applies on a few threads
// (HostOptions::apply_threads) and its observers' callbacks on one, instead
// of a thread pair per group (docs/groups.md, "Threads").
//
// A Batch held by a thread that hands many strands over in one pass (the
// I/O thread handling a buffer of many groups' messages) keeps the strands
// it schedules until it ends (or holds kBatchStrandsMax), then queues them
// under one lock and wakes at most one thread per strand, up to the pool's
// size: one hand-off per pass instead of a lock and a wakeup per group
// (decision 0030).  A strand held is not yet in the run queue: take_back
// from the holding thread takes it out of the batch.
//
// The pool's threads run under SCHED_BATCH (sched(7)): a wakeup does not
// preempt the thread that scheduled the strand, which is mid-pass with more
// to hand over (decision 0054).  So do the state machine's applies and the
// observers' callbacks they run.
//
// Owns: the threads and the run queue (not the strands).
// Threads: schedule and take_back from any thread; run_slice on a pool
// thread (or, after take_back, on the thread that took the strand back);
// stop from a thread that is not the pool's.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

class StrandPool {
public:
    class Strand {
    public:
        virtual ~Strand() = default;
        // Runs the work queued now, in order; true if more came meanwhile
        // (the pool queues the strand again, at the end).
        virtual bool run_slice() = 0;
    };

    // The strands one Batch holds at most before it queues them.
    static constexpr std::size_t kBatchStrandsMax = 1024;

    // While it lives, this thread's schedule() calls to `pool` are held
    // and queued together when it ends (above).  A null pool, or a Batch
    // inside another on the same thread, holds nothing of its own.
    class Batch {
    public:
        explicit Batch(StrandPool* pool);
        ~Batch();  // queues what is held
        Batch(const Batch&) = delete;
        Batch& operator=(const Batch&) = delete;

    private:
        StrandPool* pool_ = nullptr;  // null: an inner or a no-op batch
    };

    // `threads` >= 1, named `name` (at most 15 characters).
    StrandPool(std::size_t threads, std::string name);
    ~StrandPool();  // stop()
    StrandPool(const StrandPool&) = delete;
    StrandPool& operator=(const StrandPool&) = delete;

    // Queues `strand` to run a slice.  REQUIRES: the strand is neither
    // queued nor running (the caller has just set its scheduled flag).
    void schedule(Strand& strand) EXCLUDES(mu_);
    // Takes `strand` out of the run queue if it waits there (true: no pool
    // thread will run it; the caller runs its slices itself).  False when it
    // is not queued, e.g. a pool thread runs it now.
    bool take_back(Strand& strand) EXCLUDES(mu_);
    // Joins the threads; strands still queued are not run.  REQUIRES: no
    // strand is scheduled any more (their owners stopped them).  Idempotent.
    void stop() EXCLUDES(mu_);

    // The strand the calling thread runs a slice of now (null: none).
    static const Strand* running();
    // Runs one slice of `strand` on the calling thread, which took it back
    // (take_back) or holds its scheduled flag otherwise; running() says so
    // meanwhile.  Returns run_slice's answer.
    static bool run_slice_here(Strand& strand);

    // Strands waiting in the run queue (tests).
    std::size_t queued() const EXCLUDES(mu_);

private:
    void run() EXCLUDES(mu_);
    // Queues `strands` (in their order) and wakes up to one thread each.
    void schedule_all(const std::vector<Strand*>& strands) EXCLUDES(mu_);

    mutable Mutex mu_;
    CondVar cv_;
    std::deque<Strand*> queue_ GUARDED_BY(mu_);
    bool stopping_ GUARDED_BY(mu_) = false;
    const std::string name_;
    std::vector<std::thread> threads_;
};

}  // namespace keel::runtime
