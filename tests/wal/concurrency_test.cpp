// Group commit: several threads append at once; every completion is
// observed, in index order, and batches share fsyncs.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <future>
#include <thread>

#include "keel/wal/wal.hpp"
#include "test_util.hpp"

using namespace keel;
using namespace keel::wal;
using namespace keel::wal::test;

TEST_CASE("concurrent appenders: every completion fires once, in index order") {
    TempDir dir;
    Options o = small_options();
    o.segment_bytes = 256 * 1024;
    auto opened = Wal::open(dir.path(), o);
    REQUIRE(opened.ok());
    Wal& wal = **opened;

    constexpr int kThreads = 4;
    constexpr int kAppendsPerThread = 300;
    std::mutex submit_mu;  // the caller serialises index assignment, as the Raft runtime does
    std::uint64_t next = 1;
    std::mutex done_mu;
    std::condition_variable done_cv;
    std::vector<std::uint64_t> completed;  // first index of each completed append
    // Catch's assertions are not thread-safe: count failures, check after.
    std::atomic<int> failed_appends{0}, failed_completions{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kAppendsPerThread; ++i) {
                std::lock_guard lock(submit_mu);
                const std::uint64_t count = 1 + static_cast<std::uint64_t>((i + t) % 3);
                const std::uint64_t first = next;
                Status s = wal.append(make_records(first, count), [&, first](Status st) {
                    if (!st.ok()) failed_completions.fetch_add(1);
                    std::lock_guard done(done_mu);
                    completed.push_back(first);
                    done_cv.notify_all();
                });
                if (!s.ok()) {
                    failed_appends.fetch_add(1);
                    return;
                }
                next += count;
            }
        });
    }
    for (auto& th : threads) th.join();
    REQUIRE(failed_appends.load() == 0);
    {
        std::unique_lock lock(done_mu);
        done_cv.wait(lock, [&] { return completed.size() == kThreads * kAppendsPerThread; });
    }
    CHECK(failed_completions.load() == 0);
    REQUIRE(std::is_sorted(completed.begin(), completed.end()));
    REQUIRE(std::adjacent_find(completed.begin(), completed.end()) == completed.end());
    REQUIRE(wal.last_index() == next - 1);
    auto all = wal.read(1, next);
    REQUIRE(all.ok());
    for (std::uint64_t i = 1; i < next; ++i) REQUIRE((*all)[i - 1] == make_record(i));
    const Stats s = wal.stats();
    REQUIRE(s.records_written == next - 1);
    REQUIRE(s.fsyncs <= s.records_written);
}

TEST_CASE("after_batch runs once per group commit, after that batch's callbacks, with spin on") {
    TempDir dir;
    Options o = small_options();
    o.idle_spin_us = 200;  // the spin changes when the flusher sleeps, never what it does
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t completions_seen = 0;       // callbacks run so far
    std::vector<std::uint64_t> at_batch_end;  // completions_seen at each after_batch
    std::thread::id flusher;
    bool off_flusher = false;
    o.after_batch = [&] {
        std::lock_guard lock(mu);
        if (flusher != std::thread::id() && flusher != std::this_thread::get_id())
            off_flusher = true;
        at_batch_end.push_back(completions_seen);
        cv.notify_all();
    };
    auto opened = Wal::open(dir.path(), o);
    REQUIRE(opened.ok());
    Wal& wal = **opened;
    constexpr std::uint64_t kAppends = 500;
    std::atomic<int> failed{0};  // (no Catch assertions on the flusher thread)
    for (std::uint64_t i = 1; i <= kAppends; ++i) {
        REQUIRE(wal.append(make_records(i, 1),
                           [&](Status st) {
                               if (!st.ok()) failed.fetch_add(1);
                               std::lock_guard lock(mu);
                               flusher = std::this_thread::get_id();
                               ++completions_seen;
                           })
                    .ok());
        if (i % 100 == 0) wal.set_idle_spin_us(i % 200 == 0 ? 0 : 50);
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return !at_batch_end.empty() && at_batch_end.back() == kAppends; });
    CHECK_FALSE(off_flusher);
    CHECK(failed.load() == 0);
    // One call per batch that completed something, each after all of them.
    REQUIRE(std::is_sorted(at_batch_end.begin(), at_batch_end.end()));
    REQUIRE(std::adjacent_find(at_batch_end.begin(), at_batch_end.end()) == at_batch_end.end());
    CHECK(at_batch_end.size() == wal.stats().batches);
}

TEST_CASE("a callback may append the next record (closed loop on the flusher thread)") {
    TempDir dir;
    auto opened = Wal::open(dir.path(), small_options());
    REQUIRE(opened.ok());
    Wal& wal = **opened;
    std::mutex mu;
    std::condition_variable cv;
    bool finished = false;
    bool failed = false;  // (no Catch assertions on the flusher thread)
    constexpr std::uint64_t kLast = 200;
    std::function<void(Status)> on_done = [&](Status s) {
        const std::uint64_t next = wal.next_index();
        if (!s.ok() || next > kLast || !wal.append(make_record(next), on_done).ok()) {
            std::lock_guard lock(mu);
            failed = next <= kLast;
            finished = true;
            cv.notify_all();
        }
    };
    REQUIRE(wal.append(make_record(1), on_done).ok());
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return finished; });
    CHECK_FALSE(failed);
    REQUIRE(wal.last_index() == kLast);
}

TEST_CASE("closing the WAL completes every queued append") {
    TempDir dir;
    std::atomic<int> done{0};  // ok completions (no Catch assertions on the flusher thread)
    {
        auto opened = Wal::open(dir.path(), small_options());
        REQUIRE(opened.ok());
        for (std::uint64_t i = 1; i <= 50; ++i)
            REQUIRE((*opened)
                        ->append(make_record(i),
                                 [&](Status s) {
                                     if (s.ok()) ++done;
                                 })
                        .ok());
    }
    REQUIRE(done == 50);
    auto wal = Wal::open(dir.path(), small_options());
    REQUIRE((*wal)->last_index() == 50);
}

namespace {
// Holds the flusher inside its next write until released, so the queue can
// be filled deterministically.  The flusher is recognised by its thread id,
// learnt from a completion callback (callbacks run on the flusher).
struct FlusherGate {
    std::mutex mu;
    std::condition_variable cv;
    std::thread::id flusher;
    bool armed = true, entered = false, open = false;
    void install(FaultFs& fs, Wal& wal, std::uint64_t warmup_index) {
        std::promise<std::thread::id> id;
        REQUIRE(wal.append(make_record(warmup_index),
                           [&](Status) { id.set_value(std::this_thread::get_id()); })
                    .ok());
        flusher = id.get_future().get();
        fs.set_before_mutation([this](const std::string& what) {
            if (what.rfind("write ", 0) != 0 || std::this_thread::get_id() != flusher) return;
            std::unique_lock lock(mu);
            if (!armed) return;
            armed = false;
            entered = true;
            cv.notify_all();
            cv.wait(lock, [&] { return open; });
        });
    }
    void wait_entered() {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return entered; });
    }
    void release() {
        std::lock_guard lock(mu);
        open = true;
        cv.notify_all();
    }
};
}  // namespace

TEST_CASE("appends beyond max_queue_bytes are refused with busy") {
    TempDir dir;
    FaultFs fs;
    Options o = small_options(&fs);
    o.max_queue_bytes = 1000;  // 25 records of 40 bytes
    auto opened = Wal::open(dir.path(), o);
    REQUIRE(opened.ok());
    Wal& wal = **opened;
    FlusherGate gate;
    gate.install(fs, wal, 1);
    std::mutex mu;
    std::condition_variable cv;
    int completed = 0;
    auto count = [&](Status s) {
        REQUIRE(s.ok());
        std::lock_guard lock(mu);
        ++completed;
        cv.notify_all();
    };
    REQUIRE(wal.append(make_record(2), count).ok());
    gate.wait_entered();  // record 2 is out of the queue, stuck in its write
    for (std::uint64_t i = 3; i <= 27; ++i) REQUIRE(wal.append(make_record(i), count).ok());
    Status full = wal.append(make_record(28), count);
    REQUIRE(full.code() == ErrorCode::busy);
    REQUIRE_THAT(full.message(), Catch::Contains("max_queue_bytes"));
    gate.release();
    {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return completed == 26; });  // the queue has drained
    }
    REQUIRE(append_sync(wal, {make_record(28)}).ok());
    REQUIRE(wal.last_index() == 28);
}

TEST_CASE("a flusher batch stops at max_batch_bytes") {
    TempDir dir;
    FaultFs fs;
    Options o = small_options(&fs);
    o.max_batch_bytes = 100;  // a batch takes ops while under 100 bytes: 3 records of 40
    auto opened = Wal::open(dir.path(), o);
    REQUIRE(opened.ok());
    Wal& wal = **opened;
    FlusherGate gate;
    gate.install(fs, wal, 1);
    REQUIRE(wal.append(make_record(2), nullptr).ok());
    gate.wait_entered();
    for (std::uint64_t i = 3; i <= 11; ++i) REQUIRE(wal.append(make_record(i), nullptr).ok());
    gate.release();
    REQUIRE(append_sync(wal, {make_record(12)}).ok());
    // Batches: {1}, {2}, {3,4,5}, {6,7,8}, {9,10,11}, {12}: one fdatasync each.
    const Stats s = wal.stats();
    REQUIRE(s.records_written == 12);
    REQUIRE(s.fsyncs == 6);
}
