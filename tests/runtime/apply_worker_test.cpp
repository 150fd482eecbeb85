// ApplyWorker's inline apply: who may claim a batch, and that the state
// machine still sees every entry once, in log order, with the apply thread
// and inline claimers taking turns.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/apply_worker.hpp"
#include "runtime/latency_histogram.hpp"
#include "test_state_machine.hpp"

namespace {

using keel::runtime::ApplyEntries;
using keel::runtime::ApplyItem;
using keel::runtime::ApplyItems;
using keel::runtime::ApplyRestore;
using keel::runtime::ApplySnapshot;
using keel::runtime::ApplyTask;
using keel::runtime::ApplyWaiter;
using keel::runtime::ApplyWorker;

// Entries first..last (term 1), with a waiter on each that counts answers.
ApplyItem entries(std::uint64_t first, std::uint64_t last, std::atomic<int>* answered) {
    ApplyEntries item;
    for (std::uint64_t i = first; i <= last; ++i) {
        keel::raft::Entry e;
        e.index = i;
        e.term = 1;
        std::string data = "e";  // (not "e" + to_string(i): GCC 12 warns, -Wrestrict, falsely)
        data += std::to_string(i);
        e.data = std::move(data);
        item.entries.push_back(std::move(e));
        // (Catch's assertions are not thread-safe: count, check later.)
        item.waiters.push_back(ApplyWaiter{i, [answered](keel::ProposeResult r) {
                                               if (r.status.ok()) answered->fetch_add(1);
                                           }});
    }
    return item;
}

std::vector<std::uint64_t> indexes(const keel::test::RecordingStateMachine& sm) {
    std::vector<std::uint64_t> v;
    for (const auto& [index, data] : sm.applied()) v.push_back(index);
    return v;
}

void wait_for_index(const keel::test::RecordingStateMachine& sm, std::uint64_t index) {
    sm.wait([index](const auto& applied) { return applied.count(index) != 0; });
}

// Claims once the apply thread has taken and finished what was queued (a
// bounded poll: it is busy for a moment).
// For claims made after a batch was applied: the worker's estimate then
// depends on how fast this machine applied it (slow under a sanitizer or a
// loaded CI machine), and these tests are not about the budget.
constexpr std::uint64_t kAnyBudgetNs = 1'000'000'000;

bool claim_when_idle(ApplyWorker& worker, std::size_t entries) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        if (worker.claim_inline(entries, kAnyBudgetNs)) return true;
        std::this_thread::yield();
    }
    return false;
}

struct Fixture {
    explicit Fixture(std::uint64_t snapshot_every = 0,
                     keel::runtime::LatencyHistogramRecorder* commit_latency = nullptr) {
        ApplyWorker::Hooks hooks;
        hooks.on_applied = [this](keel::raft::Index i) { last_reported.store(i); };
        hooks.on_snapshot = [this](keel::SnapshotFunction, keel::raft::SnapshotMeta meta,
                                   bool asked_for, std::function<void(keel::Status)> done) {
            (asked_for ? snapshots_asked_for : automatic_snapshots).fetch_add(1);
            snapshot_thread.store(std::this_thread::get_id());
            last_snapshot_index.store(meta.index);
            snapshots.fetch_add(1);
            if (!done) return;
            if (hold_snapshots.load()) {
                std::lock_guard lock(held_mu);
                held.push_back(std::move(done));
            } else {
                done(keel::Status::ok_status());
            }
        };
        hooks.log = [](keel::LogLevel, const std::string&) {};
        hooks.batch_begin = [this] { batches_begun.fetch_add(1); };
        worker = std::make_unique<ApplyWorker>(sm, keel::raft::SnapshotMeta{}, 0, snapshot_every,
                                               std::move(hooks), commit_latency);
    }
    std::shared_ptr<keel::test::RecordingStateMachine> sm =
        std::make_shared<keel::test::RecordingStateMachine>();
    std::atomic<keel::raft::Index> last_reported{0};
    std::atomic<int> snapshots{0};
    std::atomic<int> snapshots_asked_for{0};  // of them: snapshot_now() or a retry
    std::atomic<int> automatic_snapshots{0};
    std::atomic<keel::raft::Index> last_snapshot_index{0};
    std::atomic<std::thread::id> snapshot_thread{};  // where the last capture ran
    std::atomic<bool> hold_snapshots{false};         // keep them in flight (done not called)
    std::mutex held_mu;
    std::vector<std::function<void(keel::Status)>> held;  // guarded by held_mu
    std::atomic<int> batches_begun{0};                    // by the apply thread or a claimer
    std::unique_ptr<ApplyWorker> worker;
};

}  // namespace

// Inline budgets below: 20 us, or 1 ms for the interleaving test.
constexpr std::uint64_t kBudgetNs = 20'000;

TEST_CASE("inline apply is off with a zero budget", "[apply_worker]") {
    Fixture f;
    f.worker->start();
    CHECK_FALSE(f.worker->claim_inline(1, 0));
    CHECK(f.worker->claim_inline(1, kBudgetNs));
    std::atomic<int> answered{0};
    ApplyItems items;
    items.push_back(entries(1, 1, &answered));
    f.worker->apply_claimed(items);
    // Applied on this thread, reported, answered, before apply_claimed returns.
    CHECK(answered.load() == 1);
    CHECK(f.worker->applied_index() == 1);
    CHECK(f.last_reported.load() == 1);
    CHECK(indexes(*f.sm) == std::vector<std::uint64_t>{1});
    CHECK_FALSE(f.worker->claim_inline(1, 0));
    f.worker->stop();
}

TEST_CASE("a proposer hears back only once its commit latency is counted", "[apply_worker]") {
    keel::runtime::LatencyHistogramRecorder latency;
    Fixture f(0, &latency);
    f.worker->start();
    REQUIRE(f.worker->claim_inline(3, kBudgetNs));
    // Applied inline, on this thread: the callbacks may record into a vector.
    std::vector<std::uint64_t> counted_when_answered;
    ApplyEntries item;
    for (std::uint64_t i = 1; i <= 3; ++i) {
        keel::raft::Entry e;
        e.index = i;
        e.term = 1;
        e.data = std::string("x");
        item.entries.push_back(std::move(e));
        item.waiters.push_back(ApplyWaiter{
            i,
            [&](keel::ProposeResult) { counted_when_answered.push_back(latency.snapshot().count); },
            /*start_ns=*/1});
    }
    ApplyItems items;
    items.push_back(std::move(item));
    f.worker->apply_claimed(items);
    REQUIRE(counted_when_answered.size() == 3);
    for (std::size_t k = 0; k < 3; ++k) CHECK(counted_when_answered[k] >= k + 1);
    CHECK(latency.snapshot().count == 3);
    f.worker->stop();
}

TEST_CASE("one claim at a time; batches predicted over the budget are refused", "[apply_worker]") {
    Fixture f;
    f.worker->start();
    // The initial estimate is pessimistic (2 us an entry): 11 entries exceed 20 us.
    CHECK_FALSE(f.worker->claim_inline(11, kBudgetNs));
    REQUIRE(f.worker->claim_inline(10, kBudgetNs));
    CHECK_FALSE(f.worker->claim_inline(1, kBudgetNs));  // the claim is held
    std::atomic<int> answered{0};
    ApplyItems items;
    items.push_back(entries(1, 10, &answered));
    f.worker->apply_claimed(items);
    CHECK(answered.load() == 10);
    CHECK(f.worker->claim_inline(1, kAnyBudgetNs));
    ApplyItems more;
    more.push_back(entries(11, 11, &answered));
    f.worker->apply_claimed(more);
    CHECK(indexes(*f.sm).size() == 11);
    f.worker->stop();
}

TEST_CASE("items queued during a claim are applied after the claimed ones", "[apply_worker]") {
    Fixture f;
    f.worker->start();
    std::atomic<int> answered{0};
    REQUIRE(f.worker->claim_inline(2, kBudgetNs));
    // The apply thread gets later entries while the claim is held: it must
    // wait, or it would apply 3..5 before 1..2 (the worker asserts order).
    f.worker->enqueue(entries(3, 5, &answered));
    CHECK_FALSE(f.worker->claim_inline(1, kBudgetNs));  // held, and now something is queued
    ApplyItems items;
    items.push_back(entries(1, 2, &answered));
    f.worker->apply_claimed(items);
    wait_for_index(*f.sm, 5);
    CHECK(indexes(*f.sm) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
    CHECK(f.sm->duplicate_applies() == 0);
    f.worker->stop();
    CHECK(answered.load() == 5);
}

// The interleaving above, many times over: a committer that applies inline
// whenever it can claim, and queues otherwise, while the apply thread works
// through what it queued.  The worker asserts log order on every entry.
TEST_CASE("inline claims and the apply thread interleave in log order", "[apply_worker]") {
    Fixture f;
    f.worker->start();
    std::atomic<int> answered{0};
    constexpr std::uint64_t kLast = 20000;
    std::uint64_t next = 1;
    int inline_batches = 0, queued_batches = 0;
    while (next <= kLast) {
        const std::uint64_t last = std::min(kLast, next + next % 3);
        if (f.worker->claim_inline(last - next + 1, 1'000'000)) {
            // Something queued right after the claim must wait for it.
            const int begun = f.batches_begun.load();
            f.worker->enqueue(entries(last + 1, last + 1, &answered));
            if (inline_batches % 64 == 0) {
                // Give a wrongly eager apply thread time to start on the
                // queued entry (and trip its order assertion).  Not a
                // synchronisation: the correct outcome is that it never starts.
                const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
                while (f.batches_begun.load() == begun && std::chrono::steady_clock::now() < until)
                    std::this_thread::yield();
            }
            ApplyItems items;
            items.push_back(entries(next, last, &answered));
            f.worker->apply_claimed(items);
            ++inline_batches;
            next = last + 2;
        } else {
            f.worker->enqueue(entries(next, last, &answered));
            ++queued_batches;
            next = last + 1;
        }
    }
    wait_for_index(*f.sm, next - 1);
    f.worker->stop();
    CHECK(answered.load() == static_cast<int>(next - 1));
    CHECK(f.sm->duplicate_applies() == 0);
    CHECK(inline_batches > 0);
    CHECK(queued_batches > 0);
}

TEST_CASE("no inline claim while the apply thread has work, nor once stopped", "[apply_worker]") {
    Fixture f;
    // Not started: the queued item stays queued, so a claim must be refused.
    std::atomic<int> answered{0};
    f.worker->enqueue(entries(1, 1, &answered));
    CHECK_FALSE(f.worker->claim_inline(1, kBudgetNs));
    f.worker->start();
    wait_for_index(*f.sm, 1);
    f.worker->stop();
    CHECK_FALSE(f.worker->claim_inline(1, kBudgetNs));
}

// Single-node mode at K=256 applies whole batches on the flusher; a batch
// that crosses snapshot_every_entries must not go to the apply thread (the
// closed loop then splits into two cohorts, each paying a whole fsync).  It
// is applied inline; only the capture (StateMachine::snapshot(), which runs
// on the apply thread) is handed over.
TEST_CASE(
    "a claimed batch that crosses snapshot_every is applied inline, captured on the apply "
    "thread",
    "[apply_worker]") {
    Fixture f(/*snapshot_every=*/4);
    f.worker->start();
    std::atomic<int> answered{0};
    REQUIRE(f.worker->claim_inline(3, kBudgetNs));
    ApplyItems items;
    items.push_back(entries(1, 3, &answered));
    f.worker->apply_claimed(items);
    CHECK(f.snapshots.load() == 0);
    REQUIRE(f.worker->claim_inline(2, kAnyBudgetNs));  // index 4 reaches snapshot_every
    items.push_back(entries(4, 5, &answered));
    f.worker->apply_claimed(items);
    CHECK(answered.load() == 5);  // answered by the claimer, before any capture
    f.worker->stop();             // the capture was queued: stop() runs it first
    CHECK(f.snapshots.load() == 1);
    CHECK(f.last_snapshot_index.load() == 5);
    CHECK(f.snapshot_thread.load() != std::this_thread::get_id());
    CHECK(indexes(*f.sm) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
}

// The replica defers an automatic snapshot's flushes but makes one asked
// for durable before answering (docs/decisions/0027): the hook tells them
// apart.
TEST_CASE("the snapshot hook tells a snapshot asked for from an automatic one", "[apply_worker]") {
    Fixture f(/*snapshot_every=*/4);
    f.worker->start();
    std::atomic<int> answered{0};
    f.worker->enqueue(entries(1, 4, &answered));  // index 4 makes one due
    f.worker->enqueue(entries(5, 5, &answered));
    std::promise<keel::Status> asked;
    ApplySnapshot request;
    request.done = [&](keel::Status s) { asked.set_value(std::move(s)); };
    f.worker->enqueue(std::move(request));
    REQUIRE(asked.get_future().get().ok());
    f.worker->stop();
    CHECK(f.automatic_snapshots.load() == 1);
    CHECK(f.snapshots_asked_for.load() == 1);
    CHECK(f.last_snapshot_index.load() == 5);
}

// While an automatic snapshot is in flight, claimed batches past the
// threshold queue no capture: the apply thread would only skip it.
TEST_CASE("no capture is queued while an automatic snapshot is in flight", "[apply_worker]") {
    Fixture f(/*snapshot_every=*/2);
    f.hold_snapshots.store(true);
    f.worker->start();
    std::atomic<int> answered{0};
    ApplyItems items;
    REQUIRE(f.worker->claim_inline(2, kBudgetNs));
    items.push_back(entries(1, 2, &answered));
    f.worker->apply_claimed(items);  // crosses: a capture is queued
    // The apply thread takes it, and is idle again (a claim succeeds).
    REQUIRE(claim_when_idle(*f.worker, 2));
    CHECK(f.snapshots.load() == 1);
    const int batches = f.batches_begun.load();
    for (std::uint64_t i = 3; i <= 9; i += 2) {
        if (i != 3) REQUIRE(f.worker->claim_inline(2, kAnyBudgetNs));
        items.push_back(entries(i, i + 1, &answered));
        f.worker->apply_claimed(items);
    }
    // Four claimed batches, each past the threshold, and no apply-thread batch.
    CHECK(f.batches_begun.load() == batches + 4);
    f.worker->stop();
    CHECK(f.snapshots.load() == 1);
    CHECK(answered.load() == 10);
}

// A snapshot that came due while another was being written is taken as soon
// as that one finishes, not at the next apply: when writes stop, the last
// entries would otherwise wait for a snapshot indefinitely.
TEST_CASE("a snapshot due while one is in flight is taken when that one finishes",
          "[apply_worker]") {
    Fixture f(/*snapshot_every=*/2);
    f.hold_snapshots.store(true);
    std::atomic<int> answered{0};
    f.worker->start();
    f.worker->enqueue(entries(1, 2, &answered));  // due: captured, held in flight
    f.worker->enqueue(entries(3, 4, &answered));  // due again: skipped for now
    wait_for_index(*f.sm, 4);
    CHECK(f.snapshots.load() == 1);
    std::function<void(keel::Status)> done;
    {
        std::lock_guard lock(f.held_mu);
        REQUIRE(f.held.size() == 1);
        done = std::move(f.held.front());
        f.held.clear();
    }
    done(keel::Status::ok_status());  // no entry applied after this
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (f.snapshots.load() < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    f.worker->stop();
    CHECK(f.snapshots.load() == 2);
    CHECK(f.last_snapshot_index.load() == 4);
}

// The replica's commit, handed over by a WAL flusher with more to write,
// runs as a task: on the apply thread, after what was queued before it.
TEST_CASE("a task runs on the apply thread, in queue order", "[apply_worker]") {
    Fixture f;
    // Not started yet: all three items are taken as one batch.
    std::atomic<int> answered{0};
    std::atomic<keel::raft::Index> applied_at_task{0};
    std::atomic<bool> on_caller{true};
    const std::thread::id caller = std::this_thread::get_id();
    f.worker->enqueue(entries(1, 3, &answered));
    ApplyTask task;
    task.run = [&] {
        applied_at_task.store(f.worker->applied_index());
        on_caller.store(std::this_thread::get_id() == caller);
    };
    f.worker->enqueue(std::move(task));
    f.worker->enqueue(entries(4, 5, &answered));
    CHECK(f.worker->queued_entries() == 5);  // a task is no entry
    f.worker->start();
    wait_for_index(*f.sm, 5);
    f.worker->stop();
    CHECK(applied_at_task.load() == 3);
    CHECK_FALSE(on_caller.load());
    CHECK(answered.load() == 5);
    CHECK(indexes(*f.sm) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
}

// The core asks for a snapshot (raft::Actions::snapshot_wanted) while it
// waits to bring a member up: taken after what was queued before it, and
// only one at a time however often it is asked.
TEST_CASE("an automatic snapshot item: after the entries before it, one in flight at a time",
          "[apply_worker]") {
    Fixture f;
    f.hold_snapshots.store(true);
    std::atomic<int> answered{0};
    auto automatic = [] { return ApplyItem(ApplySnapshot::automatic_one()); };
    f.worker->enqueue(entries(1, 3, &answered));
    f.worker->enqueue(automatic());
    f.worker->enqueue(entries(4, 5, &answered));
    f.worker->enqueue(automatic());  // the first is still in flight: skipped
    f.worker->enqueue(entries(6, 6, &answered));
    f.worker->start();
    wait_for_index(*f.sm, 6);
    f.worker->stop();
    CHECK(f.snapshots.load() == 1);
    CHECK(f.last_snapshot_index.load() == 3);
    CHECK(f.held.size() == 1);
    CHECK(answered.load() == 6);
}

TEST_CASE("a restore that fails stops applying and reports it, instead of asserting") {
    Fixture f;
    std::atomic<int> reported{0};
    std::atomic<int> failed_waiters{0};
    // Rebuilt with the hook (Fixture's worker has none).
    ApplyWorker::Hooks hooks;
    hooks.on_applied = [](keel::raft::Index) {};
    hooks.on_snapshot = [](keel::SnapshotFunction, keel::raft::SnapshotMeta, bool,
                           std::function<void(keel::Status)>) {};
    hooks.log = [](keel::LogLevel, const std::string&) {};
    hooks.on_restore_failed = [&](keel::Status s) {
        if (s.code() == keel::ErrorCode::corruption) reported.fetch_add(1);
    };
    f.worker.reset();
    f.worker = std::make_unique<ApplyWorker>(f.sm, keel::raft::SnapshotMeta{}, 0, 0,
                                             std::move(hooks), nullptr);
    f.worker->start();
    ApplyRestore restore;
    restore.restore = [](keel::StateMachine&) {
        return keel::Status(keel::ErrorCode::corruption, "injected: a bad snapshot");
    };
    restore.meta.index = 10;
    f.worker->enqueue(std::move(restore));
    ApplyEntries after;
    keel::raft::Entry e;
    e.index = 11;
    e.term = 1;
    e.data = std::string("x");
    after.entries.push_back(std::move(e));
    after.waiters.push_back(ApplyWaiter{11, [&](keel::ProposeResult r) {
                                            if (r.status.code() == keel::ErrorCode::failed)
                                                failed_waiters.fetch_add(1);
                                        }});
    f.worker->enqueue(std::move(after));
    f.worker->stop();
    CHECK(reported.load() == 1);
    CHECK(failed_waiters.load() == 1);
    CHECK(f.sm->applied().empty());
}
