// runtime/core_lock.hpp — the core serializer: who runs a replica's Raft
// core, and when.
//
// There is no thread that owns the core.  Whichever thread brings an input
// (a proposal, a message, a WAL completion, a tick) takes the core lock,
// gives the input to the core and carries out the whole batch of output
// before letting go (run()).  A thread that finds the lock busy records its
// work here (note(), or the replica's proposal inbox) and leaves (kick());
// the holder settles it before letting go and checks again after, so no
// work is stranded and no thread waits for the lock except run()'s callers.
//
// What "settle" does is the client's (the replica's): this class only knows
// that there is recorded work, and in which rounds it is taken.  The client
// also hears when the lock is taken and when it is about to be let go
// (after_lock, before_unlock), whoever holds it.
//
// As a capability (thread_annotations.hpp): the replica's state the core
// lock guards is GUARDED_BY(core_lock_), and code that runs under it
// REQUIRES(core_lock_).  run() and kick() take the lock themselves, outside
// the analysis (it cannot follow a lock taken on another object's behalf);
// holding() tells at run time whether this thread holds it.
#pragma once

#include <atomic>
#include <functional>

#include "keel/assert.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

class CAPABILITY("core lock") CoreLock {
public:
    // Work other threads report, settled by the lock's holder.
    enum Work : unsigned {
        kWalProgress = 1u << 0,      // WAL writes completed
        kAppliedProgress = 1u << 1,  // the state machine applied entries
        kWalHealth = 1u << 2,        // the WAL failed, ran out of space, or has room again
    };

    class Client {
    public:
        // Right after each holder took the lock, before anything else: the
        // client brings its core up to date (the replica: the ticks that
        // elapsed, replica_ticks.cpp).
        virtual void after_lock() = 0;
        // Under the lock: settles the Work bits `work` and the proposals
        // waiting in the client's inbox, in one round.
        virtual void settle(unsigned work) = 0;
        // Under the lock, after the last settle, right before each holder
        // lets go (the replica: when its core is next due a tick).
        virtual void before_unlock() = 0;
        // Proposals wait in the client's inbox (any thread).
        virtual bool inbox_pending() const = 0;
        // Right after each holder lets go (the I/O outbox is handed over).
        virtual void after_unlock() = 0;
        // Runs `f` later on the I/O thread.
        virtual void post(std::function<void()> f) = 0;

    protected:
        ~Client() = default;
    };

    explicit CoreLock(Client& client) : client_(client) {}

    // Runs `f` holding the lock, settles, lets go, then settles what others
    // recorded meanwhile.  REQUIRES: this thread does not hold the lock (a
    // callback running under it posts instead: Replica::run_or_post).
    template <typename F>
    void run(F&& f) NO_THREAD_SAFETY_ANALYSIS {
        KEEL_ASSERT(!holding(), "the core lock is not recursive");
        {
            MutexLock lock(mu_);
            const CoreLock* outer = enter();
            client_.after_lock();
            f();
            settle_locked();
            client_.before_unlock();
            leave(outer);
        }
        after_unlock();
    }

    // Records `work` for the holder (any thread); then kick().
    void note(Work work) { pending_.fetch_or(work); }
    bool noted(Work work) const { return (pending_.load() & work) != 0; }
    // Settles recorded work now if the lock is free; if another thread
    // holds it, that thread does after letting go.  Never blocks.
    void kick();

    // True while the calling thread holds this lock.
    bool holding() const;
    // For the analysis: the caller holds the lock (checked at run time).
    void assert_held() const ASSERT_CAPABILITY(this) { KEEL_ASSERT(holding(), "core lock held"); }

private:
    void settle_locked();
    // After a holder lets go: hands over the outbox, and settles what was
    // recorded while it held the lock.
    void after_unlock();
    bool work_pending() const;
    // Marks this thread as the holder; returns the holder it replaces
    // (another replica's, or null), for leave().
    const CoreLock* enter();
    void leave(const CoreLock* outer);

    Mutex mu_;
    std::atomic<unsigned> pending_{0};  // Work bits
    Client& client_;
};

}  // namespace keel::runtime
