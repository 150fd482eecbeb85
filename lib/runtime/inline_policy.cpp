// Which thread does which work itself.  See inline_policy.hpp.
#include "runtime/inline_policy.hpp"

#include <sys/resource.h>

#include <algorithm>

namespace keel::runtime {

namespace {

// Read on every proposal and every group commit.  initial-exec: a load at a
// fixed offset from the thread pointer, where the default model for a
// shared library calls __tls_get_addr each time
// (docs/decisions/0004-runtime-write-path-tuning.md).
#define KEEL_FAST_TLS [[gnu::tls_model("initial-exec")]]

// Set on the WAL flusher while it commits what its group commit made
// durable: a small committed batch may then be claimed.
KEEL_FAST_TLS thread_local const InlinePolicy* t_flusher_of = nullptr;
// Set on the I/O thread while it handles a received message.
KEEL_FAST_TLS thread_local const InlinePolicy* t_message_of = nullptr;
// Set on the I/O thread while it applies what it claimed.
KEEL_FAST_TLS thread_local const InlinePolicy* t_io_apply_of = nullptr;
// Set on the apply thread while it runs a batch of proposal callbacks.
KEEL_FAST_TLS thread_local const InlinePolicy* t_callbacks_of = nullptr;

}  // namespace

ThreadTimes ThreadTimes::now() {
    rusage u{};
    ::getrusage(RUSAGE_THREAD, &u);
    ThreadTimes t;
    t.cpu_ns = (static_cast<std::uint64_t>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1'000'000 +
                static_cast<std::uint64_t>(u.ru_utime.tv_usec + u.ru_stime.tv_usec)) *
               1000;
    t.voluntary_switches = static_cast<std::uint64_t>(u.ru_nvcsw);
    return t;
}

void InlinePolicy::begin_flusher_commit() {
    t_flusher_of = this;
}
void InlinePolicy::end_flusher_commit() {
    t_flusher_of = nullptr;
}
void InlinePolicy::begin_message() {
    t_message_of = this;
}
void InlinePolicy::end_message() {
    t_message_of = nullptr;
}
bool InlinePolicy::handling_message() const {
    return t_message_of == this;
}
void InlinePolicy::begin_io_apply() {
    t_io_apply_of = this;
}
void InlinePolicy::end_io_apply() {
    t_io_apply_of = nullptr;
}
void InlinePolicy::begin_callbacks() {
    t_callbacks_of = this;
}
void InlinePolicy::end_callbacks() {
    t_callbacks_of = nullptr;
}
bool InlinePolicy::in_callbacks() const {
    return t_callbacks_of == this;
}
bool InlinePolicy::gathers(std::size_t queued) const {
    return in_callbacks() && (cluster_mode() || queued < kDeferredProposalsChunk);
}

std::uint64_t InlinePolicy::budget_ns() const {
    const bool cluster = cluster_mode();
    if (handling_message()) return cluster && io_cutoff_.on() ? kIoInlineApplyNs : 0;
    // The flusher, in single-node mode only: in cluster mode it must not
    // wait for the state machine while followers wait for it.
    if (cluster) return 0;
    return std::clamp(durable_ns_smoothed_.load(std::memory_order_relaxed),
                      kSingleModeInlineApplyMinNs, kSingleModeInlineApplyMaxNs);
}

bool InlinePolicy::offer(ApplyEntries& item, ApplyWorker& apply, const wal::Wal& wal) {
    if (!enabled_) return false;
    const bool message = handling_message();
    if (!message && t_flusher_of != this) return false;
    ApplyItems& claims = message ? io_claims_ : flusher_claims_;
    // A batch the I/O thread commits while its inline apply is cut off
    // counts toward turning it back on.  (Nothing is claimed then: the
    // cutoff comes after the claims are applied.)
    if (message && claims.empty() && !io_cutoff_.on()) {
        io_cutoff_.skipped_batch();
        return false;
    }
    // Behind a batch claimed already: it must follow it.  Otherwise only
    // when the WAL has nothing queued: the flusher writes (and fsyncs) what
    // is queued while the apply thread applies this batch, rather than
    // delaying that write behind the apply.  Except a follower's I/O thread
    // with a write of its own queued (io_writes): it applies after that
    // write (write_io_batch), so the write waits for nothing, and the apply
    // thread is not woken for every append that carries the commit.
    const bool write_first = message && io_write_queued_;
    if (claims.empty() && ((wal.has_queued() && !write_first) ||
                           !apply.claim_inline(item.entries.size(), budget_ns())))
        return false;
    claims.emplace_back(std::move(item));
    return true;
}

void InlinePolicy::apply_flusher_claims(ApplyWorker& apply) {
    if (!flusher_claims_.empty()) apply.apply_claimed(flusher_claims_);
}

std::uint64_t InlinePolicy::apply_io_claims(ApplyWorker& apply) {
    if (io_claims_.empty()) return 0;
    const std::uint64_t start = monotonic_ns();
    const ThreadTimes before = ThreadTimes::now();
    apply.apply_claimed(io_claims_);
    const std::uint64_t took = monotonic_ns() - start;
    if (took <= kIoInlineApplyLimitNs) return 0;
    // Preempted, or slow itself (io_apply_cutoff.hpp)?
    const ThreadTimes after = ThreadTimes::now();
    if (!io_apply_overran(took, after.cpu_ns - before.cpu_ns,
                          after.voluntary_switches != before.voluntary_switches,
                          kIoInlineApplyLimitNs))
        return 0;
    // A claim made before an earlier batch's overrun turned it off is not
    // a second overrun.
    if (!io_cutoff_.on()) return 0;
    io_off_batches_ = io_cutoff_.overran();
    return took;
}

bool InlinePolicy::io_writes(bool follower, std::size_t entries) {
    const bool io = follower ? handling_message() : t_io_apply_of == this;
    const bool writes =
        cluster_mode() && io && io_write_entries_ + entries <= kFollowerIoWriteMaxEntries;
    if (writes) {
        io_write_queued_ = true;
        io_write_entries_ += entries;
    }
    return writes;
}

bool InlinePolicy::io_write_to_schedule() {
    if (!io_write_queued_ || io_write_scheduled_) return false;
    io_write_scheduled_ = true;
    return true;
}

bool InlinePolicy::take_io_write() {
    const bool queued = io_write_queued_;
    io_write_queued_ = false;
    io_write_entries_ = 0;
    io_write_scheduled_ = false;
    return queued;
}

void InlinePolicy::record_durable_ns(std::uint64_t ns) {
    // Only the WAL's writing thread writes it (one batch at a time); others
    // read it.
    const std::uint64_t old = durable_ns_smoothed_.load(std::memory_order_relaxed);
    durable_ns_smoothed_.store((old * 7 + ns) / 8, std::memory_order_relaxed);
}

}  // namespace keel::runtime
