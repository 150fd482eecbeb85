// Group commit: several threads append at once; every completion is
// observed, in index order, and batches share fsyncs.
#include <catch2/catch.hpp>

#include <condition_variable>
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

    constexpr int k_threads = 4;
    constexpr int k_appends_per_thread = 300;
    std::mutex submit_mu;  // the caller serialises index assignment, as the Raft runtime does
    std::uint64_t next = 1;
    std::mutex done_mu;
    std::condition_variable done_cv;
    std::vector<std::uint64_t> completed;  // first index of each completed append
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < k_appends_per_thread; ++i) {
                std::lock_guard lock(submit_mu);
                const std::uint64_t count = 1 + static_cast<std::uint64_t>((i + t) % 3);
                const std::uint64_t first = next;
                Status s = wal.append(make_records(first, count), [&, first](Status st) {
                    REQUIRE(st.ok());
                    std::lock_guard done(done_mu);
                    completed.push_back(first);
                    done_cv.notify_all();
                });
                REQUIRE(s.ok());
                next += count;
            }
        });
    }
    for (auto& th : threads) th.join();
    {
        std::unique_lock lock(done_mu);
        done_cv.wait(lock, [&] { return completed.size() == k_threads * k_appends_per_thread; });
    }
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

TEST_CASE("a callback may append the next record (closed loop on the flusher thread)") {
    TempDir dir;
    auto opened = Wal::open(dir.path(), small_options());
    REQUIRE(opened.ok());
    Wal& wal = **opened;
    std::mutex mu;
    std::condition_variable cv;
    bool finished = false;
    constexpr std::uint64_t k_last = 200;
    std::function<void(Status)> on_done = [&](Status s) {
        REQUIRE(s.ok());
        const std::uint64_t next = wal.next_index();
        if (next > k_last) {
            std::lock_guard lock(mu);
            finished = true;
            cv.notify_all();
            return;
        }
        REQUIRE(wal.append(make_record(next), on_done).ok());
    };
    REQUIRE(wal.append(make_record(1), on_done).ok());
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return finished; });
    REQUIRE(wal.last_index() == k_last);
}

TEST_CASE("closing the WAL completes every queued append") {
    TempDir dir;
    std::atomic<int> done{0};
    {
        auto opened = Wal::open(dir.path(), small_options());
        REQUIRE(opened.ok());
        for (std::uint64_t i = 1; i <= 50; ++i)
            REQUIRE((*opened)
                        ->append(make_record(i),
                                 [&](Status s) {
                                     REQUIRE(s.ok());
                                     ++done;
                                 })
                        .ok());
    }
    REQUIRE(done == 50);
    auto wal = Wal::open(dir.path(), small_options());
    REQUIRE((*wal)->last_index() == 50);
}
