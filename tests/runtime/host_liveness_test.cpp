// HostLiveness with a fake clock: one ping per peer per interval, a verdict
// after down_after_us of silence (repeated while the peer stays silent),
// counted in this process's listening time (a late poll counts the gap it
// planned and one poll interval), back on any traffic, a restart seen in a
// ping's incarnation, and each poll naming the next: the next ping, a
// silent peer's verdict, or the verdict repeated.
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
    HostLiveness l(LivenessTiming{.poll_interval_us = kIntervalUs,
                                  .ping_interval_us = kIntervalUs,
                                  .down_after_us = kDownAfterUs});
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

TEST_CASE("a peer is pinged four times per timeout, never more often than the clock ticks",
          "[runtime][liveness]") {
    using keel::runtime::liveness_timing;
    // raft-bench's groups: 50 ms ticks, 2 s timeout.
    LivenessTiming t = liveness_timing(50'000, 2'000'000);
    CHECK(t.poll_interval_us == 50'000);
    CHECK(t.ping_interval_us == 500'000);
    CHECK(t.down_after_us == 2'000'000);
    // raftd's defaults: 50 ms ticks, 300 ms timeout.
    CHECK(liveness_timing(50'000, 300'000).ping_interval_us == 75'000);
    // A timeout of three ticks: one ping per tick.
    CHECK(liveness_timing(100'000, 300'000).ping_interval_us == 100'000);
}

namespace {

// Ticks of 100 ms, pings every 500 ms, down after 2 s.
constexpr std::uint64_t kTickUs = 100'000;
constexpr std::uint64_t kPingUs = 500'000;
constexpr std::uint64_t kTimeoutUs = 2'000'000;

HostLiveness make_paced(const std::set<NodeId>& peers) {
    HostLiveness l(LivenessTiming{
        .poll_interval_us = kTickUs, .ping_interval_us = kPingUs, .down_after_us = kTimeoutUs});
    l.set_peers(peers, 0);
    return l;
}

}  // namespace

TEST_CASE(
    "each poll names the next: the next ping while peers talk, a silent peer's verdict, "
    "one tick while a peer is down",
    "[runtime][liveness]") {
    HostLiveness l = make_paced({2, 3});
    HostLiveness::Round r = l.poll(0);
    CHECK(r.ping == Ids{2, 3});
    REQUIRE(r.next_poll_us == kPingUs);  // not a tick later: nothing is due before
    // Both peers talk: a poll per ping interval, each one pinging both.
    std::uint64_t t = 0;
    for (int i = 0; i < 8; ++i) {
        t = *r.next_poll_us;
        l.heard(2, t - 1);
        l.heard(3, t - 1);
        r = l.poll(t);
        CHECK(r.ping == Ids{2, 3});
        CHECK(r.down.empty());
        REQUIRE(r.next_poll_us == t + kPingUs);
    }
    // Peer 2 is heard once more between two polls, then falls silent; peer
    // 3 talks on.  The polls come at the pings until the one that finds 2
    // silent for just over the timeout, not at the next ping after it.
    const std::uint64_t last_heard = t + kPingUs / 2;
    l.heard(2, last_heard);
    std::uint64_t verdict_at = 0;
    for (int i = 0; i < 10 && verdict_at == 0; ++i) {
        t = *r.next_poll_us;
        l.heard(3, t);
        r = l.poll(t);
        if (!r.down.empty()) verdict_at = t;
    }
    CHECK(r.down == Ids{2});
    CHECK(verdict_at == last_heard + kTimeoutUs + 1);
    // While it stays down, the verdict again every tick.
    REQUIRE(r.next_poll_us == verdict_at + kTickUs);
    r = l.poll(verdict_at + kTickUs);
    CHECK(r.down == Ids{2});
    CHECK(r.newly_down.empty());
    // Heard again: back to the ping interval.
    l.heard(2, verdict_at + kTickUs + 1);
    l.heard(3, verdict_at + kTickUs + 1);
    r = l.poll(verdict_at + 2 * kTickUs);
    CHECK(r.down.empty());
    CHECK(*r.next_poll_us > verdict_at + 3 * kTickUs);
    // Without peers there is nothing to poll for.
    l.set_peers({}, verdict_at + 3 * kTickUs);
    CHECK_FALSE(l.poll(verdict_at + 3 * kTickUs).next_poll_us.has_value());
}

// Decision 0044: two survivors hear a dead peer's last ping at the same
// instant.  Their verdicts must not coincide, or the followers of every
// group it led campaign in step; each comes at its own process's phase.
TEST_CASE("two processes that heard a peer last together declare it down a phase apart",
          "[runtime][liveness]") {
    using keel::runtime::liveness_phase_us;
    using keel::runtime::liveness_timing;
    auto verdict_at = [](std::uint64_t phase_us) {
        HostLiveness l(liveness_timing(kTickUs, kTimeoutUs, phase_us));
        l.set_peers({2}, 0);
        HostLiveness::Round r = l.poll(0);
        l.heard(2, 10);  // its last ping
        for (int i = 0; i < 20; ++i) {
            const std::uint64_t t = *r.next_poll_us;
            r = l.poll(t);
            if (!r.newly_down.empty()) return t;
        }
        return std::uint64_t{0};
    };
    const std::uint64_t a = verdict_at(0), b = verdict_at(20'000);
    CHECK(a == 10 + kTimeoutUs + 1);
    CHECK(b == a + 20'000);
    // The phase is the process's own: drawn from its incarnation, within a tick.
    std::set<std::uint64_t> phases;
    for (std::uint64_t incarnation : {0x9e3779b97f4a7c15ull, 0x2545f4914f6cdd1dull,
                                      0xbf58476d1ce4e5b9ull, 0x94d049bb133111ebull}) {
        const std::uint64_t p = liveness_phase_us(incarnation, kTickUs);
        CHECK(p < kTickUs);
        phases.insert(p);
    }
    CHECK(phases.size() == 4);
}

TEST_CASE(
    "a late poll counts the gap it planned and one tick: a stall of the observer longer "
    "than the timeout declares nothing",
    "[runtime][liveness]") {
    HostLiveness l = make_paced({2});
    HostLiveness::Round r = l.poll(0);
    REQUIRE(r.next_poll_us == kPingUs);
    // The observer stalls for 1.9 s past its planned poll: the peer (in the
    // same stalled machine) was not heard, and that counts 500 + 100 ms.
    std::uint64_t t = kPingUs + 1'900'000;
    r = l.poll(t);
    CHECK(r.down.empty());
    // On time from here, still unheard: down once 2 s of listening are
    // counted, that is 1.4 s after the late poll.
    const std::uint64_t late = t;
    REQUIRE(r.next_poll_us == late + kPingUs);
    for (int i = 0; i < 10 && r.down.empty(); ++i) {
        t = *r.next_poll_us;
        r = l.poll(t);
    }
    CHECK(r.down == Ids{2});
    CHECK(t == late + (kTimeoutUs - (kPingUs + kTickUs)) + 1);
}
