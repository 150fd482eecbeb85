// HostLiveness with a fake clock: one ping per peer per interval, a verdict
// after down_after_us of silence (repeated while the peer stays silent),
// counted in this process's listening time (a late poll counts two
// intervals), back on any traffic, and a restart seen in a ping's
// incarnation.
#include <catch2/catch.hpp>

#include <set>
#include <vector>

#include "runtime/host_liveness.hpp"

using keel::NodeId;
using keel::runtime::HostLiveness;
using keel::runtime::LivenessTiming;

namespace {

constexpr std::uint64_t kIntervalUs = 100'000;
constexpr std::uint64_t kDownAfterUs = 500'000;

HostLiveness make(const std::set<NodeId>& peers, std::uint64_t now_us = 0) {
    HostLiveness l(LivenessTiming{.ping_interval_us = kIntervalUs, .down_after_us = kDownAfterUs});
    l.set_peers(peers, now_us);
    return l;
}

using Ids = std::vector<NodeId>;

}  // namespace

TEST_CASE("each peer is pinged once per interval, however often it is polled",
          "[runtime][liveness]") {
    HostLiveness l = make({2, 3});
    CHECK(l.poll(0).ping == Ids{2, 3});  // a new peer at once
    CHECK(l.poll(10'000).ping.empty());
    CHECK(l.poll(50'000).ping.empty());
    CHECK(l.poll(100'000).ping == Ids{2, 3});
    // Polled twice per interval: still once per interval.
    int pings = 0;
    for (std::uint64_t t = 150'000; t <= 1'100'000; t += 50'000) {
        l.heard(2, t);
        l.heard(3, t);
        pings += static_cast<int>(l.poll(t).ping.size());
    }
    CHECK(pings == 2 * 10);
    // A timer of the interval that fires a little early skips nothing.
    HostLiveness j = make({2});
    CHECK(j.poll(0).ping == Ids{2});
    CHECK(j.poll(kIntervalUs - kIntervalUs / 5).ping == Ids{2});
}

TEST_CASE("a peer silent for longer than down_after_us is down, at every poll until heard",
          "[runtime][liveness]") {
    HostLiveness l = make({2, 3});
    for (std::uint64_t t = 0; t <= kDownAfterUs; t += kIntervalUs) {
        l.heard(3, t);
        HostLiveness::Round r = l.poll(t);
        CHECK(r.down.empty());  // silent for exactly down_after_us is not yet down
    }
    l.heard(3, kDownAfterUs + 1);
    HostLiveness::Round r = l.poll(kDownAfterUs + 1);
    CHECK(r.down == Ids{2});
    CHECK(r.newly_down == Ids{2});
    CHECK(l.is_down(2));
    CHECK_FALSE(l.is_down(3));
    // Reported again while it stays silent, but news only once.
    l.heard(3, kDownAfterUs + kIntervalUs);
    r = l.poll(kDownAfterUs + kIntervalUs);
    CHECK(r.down == Ids{2});
    CHECK(r.newly_down.empty());
    CHECK(r.ping == Ids{2, 3});  // a down peer is still pinged
    // Any traffic brings it back.
    CHECK(l.heard(2, kDownAfterUs + kIntervalUs + 1));
    CHECK_FALSE(l.heard(2, kDownAfterUs + kIntervalUs + 2));  // up already
    CHECK_FALSE(l.is_down(2));
    CHECK(l.poll(kDownAfterUs + 2 * kIntervalUs).down.empty());
}

TEST_CASE(
    "a poll that comes late counts two intervals of silence: a stalled process declares "
    "no peer down for its own stall",
    "[runtime][liveness]") {
    HostLiveness l = make({2, 3});
    std::uint64_t t = 0;
    for (; t <= 10 * kIntervalUs; t += kIntervalUs) {
        l.heard(2, t);
        l.heard(3, t);
        CHECK(l.poll(t).down.empty());
    }
    // This process stalls (its timer and receiving threads starved) for ten
    // times down_after_us: nothing was heard, and nothing could have been.
    t += 10 * kDownAfterUs;
    HostLiveness::Round r = l.poll(t);
    CHECK(r.down.empty());
    CHECK(r.ping == Ids{2, 3});
    // Back on time: peer 3 is heard again, peer 2 stays silent (it died
    // meanwhile) and is found after down_after_us of listening, counted from
    // the two intervals the late poll credited.
    std::uint64_t listened = 2 * kIntervalUs;
    while (listened + kIntervalUs <= kDownAfterUs) {
        t += kIntervalUs;
        listened += kIntervalUs;
        l.heard(3, t);
        CHECK(l.poll(t).down.empty());
    }
    t += kIntervalUs;
    l.heard(3, t);
    r = l.poll(t);
    CHECK(r.down == Ids{2});
    CHECK(r.newly_down == Ids{2});
}

TEST_CASE("a dead peer is found even when every poll comes late", "[runtime][liveness]") {
    HostLiveness l = make({2});
    CHECK(l.poll(0).down.empty());
    // Each poll ten intervals after the last counts two: down_after_us (five
    // intervals) is passed at the third.
    CHECK(l.poll(10 * kIntervalUs).down.empty());
    CHECK(l.poll(20 * kIntervalUs).down.empty());
    CHECK(l.poll(30 * kIntervalUs).down == Ids{2});
}

TEST_CASE("a peer heard between two polls is silent only since it was heard",
          "[runtime][liveness]") {
    HostLiveness l = make({2});
    CHECK(l.poll(0).down.empty());
    for (std::uint64_t t = kIntervalUs; t <= 4 * kIntervalUs; t += kIntervalUs)
        CHECK(l.poll(t).down.empty());
    // Heard half an interval before a poll: the silence counted before is gone.
    l.heard(2, 4 * kIntervalUs + kIntervalUs / 2);
    std::uint64_t t = 5 * kIntervalUs;
    for (; t < 4 * kIntervalUs + kIntervalUs / 2 + kDownAfterUs; t += kIntervalUs)
        CHECK(l.poll(t).down.empty());
    CHECK(l.poll(t).down == Ids{2});
}

TEST_CASE("a new incarnation in a ping is reported down once", "[runtime][liveness]") {
    HostLiveness l = make({2});
    CHECK_FALSE(l.heard_ping(2, 7, 10));  // the first one heard is no news
    CHECK_FALSE(l.heard_ping(2, 7, 20));
    CHECK(l.poll(30).down.empty());
    CHECK(l.heard_ping(2, 8, 40));  // it restarted
    HostLiveness::Round r = l.poll(50);
    CHECK(r.down == Ids{2});
    CHECK(r.newly_down == Ids{2});
    CHECK_FALSE(l.is_down(2));  // heard: up again, and not reported again
    CHECK(l.poll(60).down.empty());
}

TEST_CASE("peers come and go with the groups that share them", "[runtime][liveness]") {
    HostLiveness l = make({2, 3}, 0);
    CHECK(l.peer_count() == 2);
    // A peer added late is presumed up from when it was added.
    l.set_peers({2, 3, 4}, kDownAfterUs);
    l.heard(2, kDownAfterUs);
    l.heard(3, kDownAfterUs);
    HostLiveness::Round r = l.poll(kDownAfterUs + 1);
    CHECK(r.down.empty());
    CHECK(r.ping == Ids{2, 3, 4});
    // One removed is forgotten: never reported, and traffic from it ignored.
    l.set_peers({2, 3}, kDownAfterUs + 2);
    CHECK(l.peer_count() == 2);
    CHECK_FALSE(l.heard(4, 2 * kDownAfterUs));
    for (std::uint64_t t = kDownAfterUs + kIntervalUs; t < 3 * kDownAfterUs; t += kIntervalUs)
        (void)l.poll(t);
    r = l.poll(3 * kDownAfterUs);
    CHECK(r.down == Ids{2, 3});
}
