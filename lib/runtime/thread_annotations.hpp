// runtime/thread_annotations.hpp — the runtime's lock discipline, checked by
// Clang's thread-safety analysis (-Wthread-safety; scripts/thread-safety.sh
// runs it in `make test`): the macros that say which mutex guards what, and
// the mutex, scoped lock and condition variable the analysis can follow
// (std::mutex carries no annotations in libstdc++, so the analysis sees
// nothing through it).
//
//   GUARDED_BY(mu)      a member read or written only while `mu` is held
//   PT_GUARDED_BY(mu)   what a pointer member points at, likewise
//   REQUIRES(mu)        a function its caller calls holding `mu`
//   EXCLUDES(mu)        a function that takes `mu` itself (not held on entry)
//   ASSERT_CAPABILITY   a function that checks at run time that `mu` is held
//
// A lambda that runs under a lock another function takes (with_core's) says
// so: `[this]() REQUIRES(mu) { ... }`.  With another compiler the macros
// expand to nothing.
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define KEEL_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define KEEL_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) KEEL_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY KEEL_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) KEEL_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) KEEL_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) KEEL_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) KEEL_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) KEEL_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) KEEL_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) KEEL_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) KEEL_THREAD_ANNOTATION(assert_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS KEEL_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace keel::runtime {

// std::mutex, as a capability the analysis tracks.
class CAPABILITY("mutex") Mutex {
public:
    Mutex() = default;
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;

    void lock() ACQUIRE() { mu_.lock(); }
    void unlock() RELEASE() { mu_.unlock(); }
    bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }

private:
    friend class MutexLock;
    std::mutex mu_;
};

// Holds a Mutex for its scope (std::lock_guard's job; a CondVar can wait on it).
class SCOPED_CAPABILITY MutexLock {
public:
    explicit MutexLock(Mutex& mu) ACQUIRE(mu) : lock_(mu.mu_) {}
    ~MutexLock() RELEASE() {}
    MutexLock(const MutexLock&) = delete;
    MutexLock& operator=(const MutexLock&) = delete;

private:
    friend class CondVar;
    std::unique_lock<std::mutex> lock_;
};

// std::condition_variable over a MutexLock.  wait() has no predicate: the
// caller loops (`while (!ready_) cv_.wait(lock);`) in the scope that holds
// the lock, where the analysis sees it held.
class CondVar {
public:
    void wait(MutexLock& lock) { cv_.wait(lock.lock_); }
    void notify_one() { cv_.notify_one(); }
    void notify_all() { cv_.notify_all(); }

private:
    std::condition_variable cv_;
};

}  // namespace keel::runtime
