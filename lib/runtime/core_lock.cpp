// The core serializer.  See core_lock.hpp.
#include "runtime/core_lock.hpp"

#include <functional>

namespace keel::runtime {

namespace {

// The core lock this thread holds, if any.  The holder it replaced (a
// callback of one replica may call into another) is kept on the stack of
// the frame that took the lock (enter's result).  Read on every proposal
// and every group commit: initial-exec, a load at a fixed offset from the
// thread pointer (docs/decisions/0004-runtime-write-path-tuning.md).
[[gnu::tls_model("initial-exec")]] thread_local const CoreLock* t_core_holder = nullptr;

// settle_locked() rounds before what is left goes to the I/O thread: a
// callback that resubmits at once on every failure cannot pin a thread.
constexpr int kMaxSettleRounds = 8;
// kick() lock rounds, likewise.
constexpr int kMaxKickRounds = 4;

}  // namespace

bool CoreLock::holding() const {
    return t_core_holder == this;
}

const CoreLock* CoreLock::enter() {
    const CoreLock* outer = t_core_holder;
    t_core_holder = this;
    return outer;
}

void CoreLock::leave(const CoreLock* outer) {
    KEEL_ASSERT(t_core_holder == this, "core lock nesting");
    t_core_holder = outer;
}

void CoreLock::settle_locked() {
    for (int round = 0; round < kMaxSettleRounds; ++round) {
        const unsigned work = pending_.exchange(0);
        if (work == 0 && !client_.inbox_pending()) return;
        client_.settle(work);
    }
    client_.post([this] { run([] {}); });
}

bool CoreLock::work_pending() const {
    return pending_.load() != 0 || client_.inbox_pending();
}

void CoreLock::after_unlock() {
    client_.after_unlock();
    // Work recorded while this thread held the lock, by threads that found
    // it busy (kick), is this thread's to settle.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (work_pending()) kick();
}

void CoreLock::kick() {
    if (holding()) return;  // settled before this thread lets go
    for (int round = 0; round < kMaxKickRounds; ++round) {
        // Busy: the holder sees the work after it lets go (after_unlock)
        // and takes the lock again, or leaves it to the next holder.  The
        // work was recorded before this try, the holder checks after its
        // unlock, so nothing is stranded (the fences pair with the one in
        // after_unlock: the work's store and the holder's unlock cannot both
        // be missed).
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (!mu_.try_lock()) return;
        const CoreLock* outer = enter();
        client_.after_lock();
        settle_locked();
        client_.before_unlock();
        leave(outer);
        mu_.unlock();
        client_.after_unlock();
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (!work_pending()) return;
    }
    client_.post([this] { run([] {}); });
}

}  // namespace keel::runtime
