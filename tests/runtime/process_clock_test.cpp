// ProcessClock's due ticks (decision 0041): a subscriber is stepped at the
// expiry that brings the clock's count to the tick it set, not before, and
// at every expiry with the default (0).  Driven by a real timer of 1 ms; the
// counts are read on the I/O thread, so no assertion depends on timing.
#include <catch2/catch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <future>
#include <thread>
#include <vector>

#include "runtime/process_clock.hpp"

using keel::runtime::ProcessClock;

TEST_CASE("a subscriber is stepped only at the clock's ticks it set as due") {
    boost::asio::io_context io;
    auto guard = boost::asio::make_work_guard(io);
    ProcessClock clock(io);
    // Stepped at every expiry (the liveness pings' way), and stepped only
    // when due: first at tick 5, then three ticks after each step.
    std::vector<std::uint64_t> every, due_steps;
    std::unique_ptr<ProcessClock::Subscription> always, due;
    std::promise<void> done;
    auto a = clock.subscribe(std::chrono::milliseconds(1), [&] { every.push_back(clock.ticks()); });
    REQUIRE(a.ok());
    always = std::move(a.value());
    auto d = clock.subscribe(std::chrono::milliseconds(1), [&] {
        due_steps.push_back(clock.ticks());
        if (due_steps.size() == 3) {
            due->stop();
            always->stop();
            done.set_value();
            return;
        }
        due->set_due(clock.ticks() + 3);
    });
    REQUIRE(d.ok());
    due = std::move(d.value());
    due->set_due(5);
    boost::asio::post(io, [&] {
        always->set_needed(true);
        due->set_needed(true);
    });
    std::thread runner([&] { io.run(); });
    const bool finished =
        done.get_future().wait_for(std::chrono::seconds(60)) == std::future_status::ready;
    guard.reset();
    io.stop();
    runner.join();
    REQUIRE(finished);
    CHECK(due_steps == std::vector<std::uint64_t>{5, 8, 11});
    REQUIRE(every.size() >= 11);
    for (std::size_t i = 0; i < every.size(); ++i) CHECK(every[i] == i + 1);
    CHECK(due->wakeups() == 3);
    CHECK(clock.wakeups() == clock.ticks());
}
