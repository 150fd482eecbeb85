#include <atomic>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

#include "snapshot_gate.hpp"

using keel::ErrorCode;
using keel::Status;
using namespace keel::daemon;

TEST_CASE("requests during a snapshot join it: one snapshot, every request answered with it",
          "[daemon][snapshot]") {
    auto gate = std::make_shared<SnapshotGate>();
    int taken = 0;
    SnapshotGate::Done finish;
    auto take = [&](SnapshotGate::Done done) {
        ++taken;
        finish = std::move(done);
    };
    std::vector<Status> answers;
    auto record = [&](Status s) { answers.push_back(s); };
    for (int i = 0; i < 100; ++i) gate->run(take, record);
    CHECK(taken == 1);
    CHECK(gate->running());
    CHECK(answers.empty());
    finish(Status(ErrorCode::io_error, "disk"));
    REQUIRE(answers.size() == 100);
    for (const Status& s : answers) CHECK(s.code() == ErrorCode::io_error);
    CHECK_FALSE(gate->running());
    // The next request starts a new snapshot.
    gate->run(take, record);
    CHECK(taken == 2);
    finish(Status());
    CHECK(answers.back().ok());
}

TEST_CASE("past kMaxWaiters, a request gets busy at once", "[daemon][snapshot]") {
    auto gate = std::make_shared<SnapshotGate>();
    SnapshotGate::Done finish;
    auto take = [&](SnapshotGate::Done done) { finish = std::move(done); };
    int ok = 0, busy = 0;
    auto record = [&](Status s) { s.ok() ? ++ok : (s.code() == ErrorCode::busy ? ++busy : 0); };
    gate->run(take, record);  // the one that starts it
    for (std::size_t i = 0; i < SnapshotGate::kMaxWaiters; ++i) gate->run(take, record);
    CHECK(busy == 0);
    gate->run(take, record);
    CHECK(busy == 1);
    finish(Status());
    CHECK(ok == static_cast<int>(SnapshotGate::kMaxWaiters) + 1);
}

TEST_CASE("concurrent requests from many threads start one snapshot at a time",
          "[daemon][snapshot]") {
    auto gate = std::make_shared<SnapshotGate>();
    std::atomic<int> running{0}, most{0}, answered{0};
    std::mutex mu;
    std::vector<std::thread> keel_threads;  // completes snapshots, as keel's would
    auto take = [&](SnapshotGate::Done done) {
        const int now = running.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        std::lock_guard lock(mu);
        keel_threads.emplace_back([&running, done = std::move(done)] {
            running.fetch_sub(1);
            done(Status());
        });
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 200; ++i) gate->run(take, [&](Status) { answered.fetch_add(1); });
        });
    }
    for (auto& t : threads) t.join();
    while (answered.load() < 8 * 200) std::this_thread::yield();
    {
        std::lock_guard lock(mu);
        for (auto& t : keel_threads) t.join();
    }
    CHECK(most.load() == 1);
}
