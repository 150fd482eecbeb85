// A Host's shared pools (runtime/strand_pool.hpp): many groups' apply
// workers and observer queues on a few threads.  Each group's work runs in
// its order and never on two threads at once; a group that blocks or never
// runs dry does not hold the others up for good; and one group stops while
// the others run, without waiting behind them.  Its threads run under
// SCHED_BATCH.
#include <catch2/catch.hpp>

#include <sched.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../common/gate.hpp"
#include "runtime/apply_worker.hpp"
#include "runtime/event_queue.hpp"
#include "runtime/strand_pool.hpp"
#include "test_state_machine.hpp"

namespace {

using keel::runtime::ApplyEntries;
using keel::runtime::ApplyItem;
using keel::runtime::ApplyItems;
using keel::runtime::ApplyTask;
using keel::runtime::ApplyWaiter;
using keel::runtime::ApplyWorker;
using keel::runtime::EventQueue;
using keel::runtime::StrandPool;

using keel::test::Gate;

// Polls `done` until it holds, for at most 20 s.
template <typename F>
bool eventually(F&& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

// A state machine that notices two applies at once and applies out of
// order (counted; Catch's assertions are not thread-safe), and can be held
// at a gate.
class WatchedStateMachine final : public keel::test::RecordingStateMachine {
public:
    void apply(const std::vector<keel::CommittedEntry>& entries,
               std::vector<std::string>& results) override {
        if (inside_.exchange(true)) overlaps.fetch_add(1);
        if (Gate* g = gate.load()) g->wait_open();
        for (const keel::CommittedEntry& e : entries) {
            if (e.index != last_ + 1) out_of_order.fetch_add(1);
            last_ = e.index;
        }
        // Widens the window in which another thread could enter.
        for (int i = 0; i < 50; ++i) std::this_thread::yield();
        RecordingStateMachine::apply(entries, results);
        inside_.store(false);
    }
    std::atomic<int> overlaps{0};
    std::atomic<int> out_of_order{0};
    std::atomic<Gate*> gate{nullptr};

private:
    std::atomic<bool> inside_{false};
    std::uint64_t last_ = 0;  // touched inside apply only
};

ApplyItem entries(std::uint64_t first, std::uint64_t last, std::atomic<int>* answered) {
    ApplyEntries item;
    for (std::uint64_t i = first; i <= last; ++i) {
        keel::raft::Entry e;
        e.index = i;
        e.term = 1;
        e.data = std::string("e");
        item.entries.push_back(std::move(e));
        item.waiters.push_back(ApplyWaiter{i, [answered](keel::ProposeResult r) {
                                               if (r.status.ok()) answered->fetch_add(1);
                                           }});
    }
    return item;
}

struct Group {
    explicit Group(StrandPool& pool) {
        ApplyWorker::Hooks hooks;
        hooks.on_applied = [](keel::raft::Index) {};
        hooks.on_snapshot = [](keel::SnapshotFunction, keel::raft::SnapshotMeta, bool,
                               std::function<void(keel::Status)> done) {
            if (done) done(keel::Status::ok_status());
        };
        hooks.log = [](keel::LogLevel, const std::string&) {};
        worker = std::make_unique<ApplyWorker>(sm, keel::raft::SnapshotMeta{}, 0, 0,
                                               std::move(hooks), nullptr, &pool);
    }
    std::shared_ptr<WatchedStateMachine> sm = std::make_shared<WatchedStateMachine>();
    std::atomic<int> answered{0};
    std::uint64_t next = 1;  // the next index to queue
    std::unique_ptr<ApplyWorker> worker;

    void queue(std::uint64_t n) {
        worker->enqueue(entries(next, next + n - 1, &answered));
        next += n;
    }
};

}  // namespace

TEST_CASE("pooled apply workers apply each group's entries once, in order, one batch at a time",
          "[strand_pool]") {
    StrandPool pool(3, "test-apply");
    constexpr int kGroups = 8;
    constexpr int kBatches = 200;
    std::vector<std::unique_ptr<Group>> groups;
    for (int g = 0; g < kGroups; ++g) groups.push_back(std::make_unique<Group>(pool));
    for (auto& g : groups) g->worker->start();
    // One thread per group queues its batches (a group's core lock holder
    // queues in log order), while the pool's threads apply them all.
    std::vector<std::thread> producers;
    for (auto& g : groups)
        producers.emplace_back([&g] {
            for (int b = 0; b < kBatches; ++b) g->queue(1 + b % 3);
        });
    for (std::thread& t : producers) t.join();
    for (auto& g : groups) {
        const int total = static_cast<int>(g->next - 1);
        REQUIRE(eventually([&] { return g->answered.load() == total; }));
        CHECK(g->sm->overlaps.load() == 0);
        CHECK(g->sm->out_of_order.load() == 0);
        CHECK(g->worker->applied_index() == g->next - 1);
    }
    for (auto& g : groups) g->worker->stop();
}

TEST_CASE("a group blocked in its apply does not hold up the other groups", "[strand_pool]") {
    StrandPool pool(2, "test-apply");
    Group slow(pool), quick(pool);
    slow.worker->start();
    quick.worker->start();
    Gate gate;
    slow.sm->gate.store(&gate);
    slow.queue(1);
    gate.wait_entered();  // one pool thread is stuck in the slow group
    quick.queue(5);
    CHECK(eventually([&] { return quick.answered.load() == 5; }));
    CHECK(slow.answered.load() == 0);
    gate.release();
    CHECK(eventually([&] { return slow.answered.load() == 1; }));
    slow.worker->stop();
    quick.worker->stop();
}

TEST_CASE("a group that never runs dry shares one pool thread with the others", "[strand_pool]") {
    StrandPool pool(1, "test-apply");
    Group busy(pool), other(pool);
    busy.worker->start();
    other.worker->start();
    // Each of busy's tasks queues the next: its queue is never empty.
    std::atomic<bool> keep_going{true};
    std::atomic<std::uint64_t> tasks{0};
    std::function<void()> again = [&] {
        tasks.fetch_add(1);
        if (keep_going.load()) busy.worker->enqueue(ApplyTask{again});
    };
    busy.worker->enqueue(ApplyTask{again});
    REQUIRE(eventually([&] { return tasks.load() > 100; }));
    other.queue(3);
    CHECK(eventually([&] { return other.answered.load() == 3; }));
    keep_going.store(false);
    busy.worker->stop();
    other.worker->stop();
}

TEST_CASE("a group stops while another holds the only pool thread", "[strand_pool]") {
    StrandPool pool(1, "test-apply");
    Group blocked(pool), stopping(pool);
    blocked.worker->start();
    stopping.worker->start();
    Gate gate;
    blocked.sm->gate.store(&gate);
    blocked.queue(1);
    gate.wait_entered();
    // Queued behind the blocked group: stop() applies it on this thread
    // rather than wait for the pool.
    stopping.queue(4);
    stopping.worker->stop();
    CHECK(stopping.answered.load() == 4);
    CHECK(stopping.worker->applied_index() == 4);
    // After stop, what is queued is refused, not applied.
    std::atomic<int> late{0};
    stopping.worker->enqueue(entries(5, 5, &late));
    stopping.worker->stop();
    CHECK(stopping.worker->applied_index() == 4);
    gate.release();
    CHECK(eventually([&] { return blocked.answered.load() == 1; }));
    blocked.worker->stop();
}

TEST_CASE("inline claims and the pool take turns on a group, in order", "[strand_pool]") {
    StrandPool pool(2, "test-apply");
    Group g(pool);
    g.worker->start();
    constexpr int kRounds = 300;
    for (int r = 0; r < kRounds; ++r) {
        if (r % 2 == 0 && g.worker->claim_inline(1, 1'000'000'000)) {
            ApplyItems items;
            items.push_back(entries(g.next, g.next, &g.answered));
            ++g.next;
            g.worker->apply_claimed(items);
        } else {
            g.queue(2);
        }
    }
    const int total = static_cast<int>(g.next - 1);
    REQUIRE(eventually([&] { return g.answered.load() == total; }));
    CHECK(g.sm->overlaps.load() == 0);
    CHECK(g.sm->out_of_order.load() == 0);
    g.worker->stop();
}

TEST_CASE("pooled event queues deliver each queue in order, and stop one by one", "[strand_pool]") {
    StrandPool pool(1, "test-events");
    constexpr int kQueues = 4;
    constexpr int kEvents = 100;
    std::vector<std::unique_ptr<EventQueue>> queues;
    std::vector<std::vector<int>> seen(kQueues);  // each written by its queue's callbacks only
    std::atomic<int> wrong_thread{0};
    std::atomic<int> delivered{0};
    for (int q = 0; q < kQueues; ++q) queues.push_back(std::make_unique<EventQueue>(1000, &pool));
    for (int i = 0; i < kEvents; ++i)
        for (int q = 0; q < kQueues; ++q) {
            EventQueue& queue = *queues[q];
            REQUIRE(queue.push_event([&, q, i] {
                if (!queue.on_event_thread()) wrong_thread.fetch_add(1);
                seen[q].push_back(i);
                delivered.fetch_add(1);
            }));
        }
    // The pool's thread delivers them all, queue after queue.
    CHECK(eventually([&] { return delivered.load() == kQueues * kEvents; }));
    for (auto& q : queues) q->stop();
    std::vector<int> expected(kEvents);
    for (int i = 0; i < kEvents; ++i) expected[i] = i;
    for (int q = 0; q < kQueues; ++q) CHECK(seen[q] == expected);
    CHECK(wrong_thread.load() == 0);
    CHECK_FALSE(queues[1]->on_event_thread());
}

TEST_CASE("a pooled event queue stops while another holds the pool's thread", "[strand_pool]") {
    StrandPool pool(1, "test-events");
    EventQueue blocked(10, &pool), stopping(10, &pool);
    Gate gate;
    REQUIRE(blocked.push_event([&] { gate.wait_open(); }));
    gate.wait_entered();
    int delivered = 0;
    bool on_event_thread = true;
    for (int i = 0; i < 3; ++i)
        REQUIRE(stopping.push_event([&] {
            on_event_thread = on_event_thread && stopping.on_event_thread();
            ++delivered;
        }));
    stopping.stop();  // delivers on this thread: the pool's is blocked
    CHECK(delivered == 3);
    CHECK(on_event_thread);  // what a callback asks is true while stop() delivers
    gate.release();
    blocked.stop();
}

// The policy a strand's slice runs under, as the pool thread sees it.
class PolicyProbe final : public StrandPool::Strand {
public:
    bool run_slice() override {
        policy.set_value(sched_getscheduler(0));
        return false;
    }
    std::promise<int> policy;
};

TEST_CASE("a pool's threads run under SCHED_BATCH", "[strand_pool]") {
    // Decision 0054: a woken pool thread waits for the scheduling thread
    // (the I/O thread, mid-pass) to block or use up its slice.
    const int mine = sched_getscheduler(0);
    StrandPool pool(2, "test-pool");
    PolicyProbe probe;
    std::future<int> policy = probe.policy.get_future();
    pool.schedule(probe);
    REQUIRE(policy.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
    CHECK(policy.get() == SCHED_BATCH);
    // The thread that made the pool and scheduled the strand keeps its own.
    CHECK(sched_getscheduler(0) == mine);
}
