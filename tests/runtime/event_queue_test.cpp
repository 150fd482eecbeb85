// runtime/event_queue.hpp: order, the limit on events, completions after
// the events queued before them, and what happens after stop().
#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "../common/gate.hpp"
#include "runtime/event_queue.hpp"

using keel::runtime::EventQueue;

namespace {

using keel::test::Gate;

}  // namespace

TEST_CASE("events and completions run in the order queued, on the event thread") {
    std::vector<std::string> seen;  // written on the event thread only
    bool right_thread = true;
    {
        EventQueue q(8);
        for (int i = 0; i < 3; ++i) {
            REQUIRE(q.push_event([&, i] {
                right_thread = right_thread && q.on_event_thread();
                seen.push_back("event" + std::to_string(i));
            }));
            q.push_completion([&, i] { seen.push_back("done" + std::to_string(i)); });
        }
        q.stop();  // delivers everything queued first
    }
    CHECK(right_thread);
    CHECK(seen ==
          std::vector<std::string>{"event0", "done0", "event1", "done1", "event2", "done2"});
}

TEST_CASE("at its limit the queue refuses events, but not the last one nor completions") {
    Gate gate;
    std::vector<std::string> seen;
    EventQueue q(3);
    REQUIRE(q.push_event([&] { gate.wait_open(); }));
    gate.wait_entered();  // the first event is being delivered: it still counts
    REQUIRE(q.push_event([&] { seen.push_back("a"); }));
    REQUIRE(q.push_event([&] { seen.push_back("b"); }));
    CHECK_FALSE(q.push_event([&] { seen.push_back("refused"); }));
    q.push_completion([&] { seen.push_back("completion"); });  // not counted as an event
    CHECK(q.push_event([&] { seen.push_back("last"); }, /*beyond_limit=*/true));
    CHECK(q.queued() == 4);
    gate.release();
    q.stop();
    CHECK(seen == std::vector<std::string>{"a", "b", "completion", "last"});
}

TEST_CASE("after stop, events are dropped and completions run on the caller") {
    EventQueue q(4);
    q.stop();
    bool ran = false;
    CHECK(q.push_event([&] { ran = true; }));
    CHECK_FALSE(ran);
    q.push_completion([&] { ran = true; });
    CHECK(ran);
}
