// HostLiveness with a fake clock: one ping per peer per interval, a verdict
// after down_after_us of silence (repeated while the peer stays silent),
// back on any traffic, and a restart seen in a ping's incarnation.
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
    r = l.poll(3 * kDownAfterUs);
    CHECK(r.down == Ids{2, 3});
}
