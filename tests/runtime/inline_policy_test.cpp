// InlinePolicy's gathering rule: proposals that proposal callbacks submit
// wait for the end of the callbacks' batch; in single-node mode at most
// kDeferredProposalsChunk of them, in cluster mode all of them (each chunk
// there would be one more append to every follower).  And when a batch
// applied inline on the I/O thread counts as too slow (io_apply_cutoff.hpp).
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "runtime/inline_policy.hpp"
#include "runtime/io_apply_cutoff.hpp"

using keel::runtime::InlinePolicy;
using keel::runtime::kDeferredProposalsChunk;

TEST_CASE("outside proposal callbacks nothing is gathered", "[inline_policy]") {
    InlinePolicy policy(true);
    CHECK_FALSE(policy.gathers(1));
    policy.set_cluster_mode(true);
    CHECK_FALSE(policy.gathers(1));
}

TEST_CASE("single-node mode gathers proposals from callbacks in chunks", "[inline_policy]") {
    InlinePolicy policy(true);
    policy.begin_callbacks();
    CHECK(policy.gathers(1));
    CHECK(policy.gathers(kDeferredProposalsChunk - 1));
    CHECK_FALSE(policy.gathers(kDeferredProposalsChunk));  // a chunk goes to the core
    policy.end_callbacks();
    CHECK_FALSE(policy.gathers(1));
}

TEST_CASE("cluster mode gathers a whole batch of callbacks' proposals", "[inline_policy]") {
    InlinePolicy policy(true);
    policy.set_cluster_mode(true);
    policy.begin_callbacks();
    CHECK(policy.gathers(kDeferredProposalsChunk));
    CHECK(policy.gathers(4 * kDeferredProposalsChunk));
    policy.end_callbacks();
    CHECK_FALSE(policy.gathers(kDeferredProposalsChunk));
}

// cluster3 on two cores (three members' threads) had its I/O thread's inline
// apply turned off by batches of 1-15 ms: the thread preempted mid-batch.
TEST_CASE("an I/O-thread batch overruns its limit by its own time, not by preemption",
          "[inline_policy]") {
    using keel::runtime::io_apply_overran;
    using keel::runtime::kIoInlineApplyLimitNs;
    constexpr std::uint64_t kMs = 1'000'000;
    // Within the limit: never.
    CHECK_FALSE(io_apply_overran(kIoInlineApplyLimitNs, kIoInlineApplyLimitNs, true,
                                 kIoInlineApplyLimitNs));
    // Preempted: 5 ms from start to end, 30 us of it on the CPU, never blocked.
    CHECK_FALSE(io_apply_overran(5 * kMs, 30'000, false, kIoInlineApplyLimitNs));
    // Its own CPU time over the limit (a slow state machine).
    CHECK(io_apply_overran(5 * kMs, 2 * kMs, false, kIoInlineApplyLimitNs));
    // Blocked during the batch (an fsync, a lock): the whole counts.
    CHECK(io_apply_overran(5 * kMs, 30'000, true, kIoInlineApplyLimitNs));
}

TEST_CASE("a thread's own times: CPU time grows with work, a sleep is a voluntary switch",
          "[inline_policy]") {
    using keel::runtime::ThreadTimes;
    const ThreadTimes before = ThreadTimes::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    volatile std::uint64_t sink = 0;
    ThreadTimes spun = ThreadTimes::now();
    while (spun.cpu_ns <= before.cpu_ns) {  // until the clock ticks over (bounded: CPU time grows)
        for (int i = 0; i < 100000; ++i) sink = sink + static_cast<std::uint64_t>(i);
        spun = ThreadTimes::now();
    }
    CHECK(spun.voluntary_switches > before.voluntary_switches);
    CHECK(spun.cpu_ns > before.cpu_ns);
}

// cluster3 K=1: the proposal a closed-loop client's callback makes on the
// leader's I/O thread was handed to the WAL flusher, one thread wakeup per
// write; the I/O thread now writes it itself after sending it
// (docs/decisions/0033-one-group-write-path.md).
TEST_CASE("a leader's I/O thread writes a small batch that its inline apply proposed",
          "[inline_policy]") {
    using keel::runtime::kFollowerIoWriteMaxEntries;
    InlinePolicy policy(true);
    policy.set_cluster_mode(true);
    CHECK_FALSE(policy.io_writes(false, 1));  // a leader's proposal elsewhere: the flusher
    policy.begin_message();
    CHECK_FALSE(policy.io_writes(false, 1));  // nor while stepping a message in
    policy.end_message();
    policy.begin_io_apply();
    CHECK(policy.io_writes(false, 1));
    CHECK(policy.io_write_to_schedule());
    CHECK_FALSE(policy.io_write_to_schedule());  // one write for what is queued
    CHECK_FALSE(policy.io_writes(false, kFollowerIoWriteMaxEntries));  // past the bound
    policy.end_io_apply();
    CHECK(policy.take_io_write());
    // Single-node mode: never (the flusher commits and applies there).
    policy.set_cluster_mode(false);
    policy.begin_io_apply();
    CHECK_FALSE(policy.io_writes(false, 1));
    policy.end_io_apply();
}

// A state machine that overruns once (a cold page, a lock) gets inline apply
// on the I/O thread back after some batches; one that keeps overrunning is
// cut off for good at the kIoInlineApplyMaxOverruns-th overrun.
TEST_CASE("an I/O-thread cutoff lasts a number of batches that doubles, then for good",
          "[inline_policy]") {
    using keel::runtime::IoApplyCutoff;
    using keel::runtime::kIoInlineApplyFirstOffBatches;
    using keel::runtime::kIoInlineApplyMaxOverruns;
    using keel::runtime::kIoInlineApplyOffForGood;
    IoApplyCutoff cutoff;
    CHECK(cutoff.on());
    cutoff.skipped_batch();  // counts nothing while on
    CHECK(cutoff.on());
    std::uint64_t expected = kIoInlineApplyFirstOffBatches;
    for (int overrun = 1; overrun < kIoInlineApplyMaxOverruns; ++overrun) {
        INFO("overrun " << overrun);
        REQUIRE(cutoff.overran() == expected);
        for (std::uint64_t i = 0; i + 1 < expected; ++i) cutoff.skipped_batch();
        CHECK_FALSE(cutoff.on());
        cutoff.skipped_batch();
        CHECK(cutoff.on());
        expected *= 2;
    }
    CHECK(cutoff.overran() == kIoInlineApplyOffForGood);
    for (int i = 0; i < 100000; ++i) cutoff.skipped_batch();
    CHECK_FALSE(cutoff.on());
    CHECK(cutoff.overruns() == kIoInlineApplyMaxOverruns);
}
