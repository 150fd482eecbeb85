// Which peer processes are alive.  See host_liveness.hpp.
#include "runtime/host_liveness.hpp"

#include <algorithm>

#include "keel/assert.hpp"

namespace keel::runtime {

namespace {

// A ping is due once this share of the interval has passed since the last
// one: a poll may come a little early (a caller on a fixed-rate timer, or
// one polled for another peer's sake).
constexpr std::uint64_t kPingDueNumerator = 3;
constexpr std::uint64_t kPingDueDenominator = 4;

}  // namespace

LivenessTiming liveness_timing(std::uint64_t tick_us, std::uint64_t down_after_us,
                               std::uint64_t verdict_phase_us) {
    KEEL_ASSERT(tick_us > 0 && tick_us < down_after_us,
                "a peer is polled several times before it may be declared down");
    return LivenessTiming{.poll_interval_us = tick_us,
                          .ping_interval_us = std::max(tick_us, down_after_us / kPingsPerTimeout),
                          .down_after_us = down_after_us,
                          .verdict_phase_us = verdict_phase_us};
}

std::uint64_t liveness_phase_us(std::uint64_t incarnation, std::uint64_t tick_us) {
    KEEL_ASSERT(tick_us > 0, "a tick lasts");
    return incarnation % tick_us;
}

HostLiveness::HostLiveness(LivenessTiming timing) : timing_(timing) {
    KEEL_ASSERT(timing.poll_interval_us > 0 && timing.poll_interval_us <= timing.ping_interval_us &&
                    timing.ping_interval_us < timing.down_after_us &&
                    timing.verdict_phase_us < timing.poll_interval_us,
                "a peer is pinged several times before it may be declared down, and a "
                "verdict is late by less than a poll interval");
}

void HostLiveness::set_peers(const std::set<NodeId>& peers, std::uint64_t now_us) {
    for (auto it = peers_.begin(); it != peers_.end();)
        it = peers.count(it->first) != 0 ? std::next(it) : peers_.erase(it);
    for (NodeId id : peers) {
        Peer fresh;
        fresh.heard_us = now_us;
        peers_.try_emplace(id, fresh);
    }
}

bool HostLiveness::heard(NodeId peer, std::uint64_t now_us) {
    auto it = peers_.find(peer);
    if (it == peers_.end()) return false;
    Peer& p = it->second;
    p.heard_us = std::max(p.heard_us, now_us);
    const bool back = p.down;
    p.down = false;
    return back;
}

bool HostLiveness::heard_ping(NodeId peer, std::uint64_t incarnation, std::uint64_t now_us) {
    auto it = peers_.find(peer);
    if (it == peers_.end()) return false;
    heard(peer, now_us);
    Peer& p = it->second;
    const bool restarted = p.incarnation && *p.incarnation != incarnation;
    p.incarnation = incarnation;
    if (restarted) p.restarted = true;
    return restarted;
}

HostLiveness::Round HostLiveness::poll(std::uint64_t now_us) {
    Round r;
    const std::uint64_t due_after_us =
        timing_.ping_interval_us * kPingDueNumerator / kPingDueDenominator;
    // How long this process listened since the last poll: no more than the
    // gap that poll planned and one poll interval; beyond, this process was
    // stalled (decision 0031).
    const std::uint64_t since_poll_us =
        polled_us_ && now_us > *polled_us_ ? now_us - *polled_us_ : 0;
    const std::uint64_t listened_us =
        std::min(since_poll_us, planned_gap_us_ + timing_.poll_interval_us);
    const bool first_poll = !polled_us_;
    polled_us_ = std::max(polled_us_.value_or(0), now_us);
    for (auto& [id, p] : peers_) {
        if (!p.pinged_us || now_us - *p.pinged_us >= due_after_us) {
            r.ping.push_back(id);
            p.pinged_us = now_us;
        }
        // Heard since the last poll (or never polled): silent since then,
        // counted no further back than this poll's listening time.
        const std::uint64_t since_heard_us = now_us > p.heard_us ? now_us - p.heard_us : 0;
        if (first_poll || since_heard_us < since_poll_us)
            p.silent_us = first_poll ? since_heard_us : std::min(since_heard_us, listened_us);
        else
            p.silent_us += listened_us;
        const bool silent = p.silent_us > timing_.down_after_us;
        if (silent || p.restarted) {
            if (!p.down || p.restarted) r.newly_down.push_back(id);
            r.down.push_back(id);
            p.down = silent;  // a restarted peer that is heard is up again
            p.restarted = false;
        }
    }
    r.next_poll_us = next_poll(now_us);
    planned_gap_us_ = r.next_poll_us ? *r.next_poll_us - now_us : 0;
    return r;
}

std::optional<std::uint64_t> HostLiveness::next_poll(std::uint64_t now_us) const {
    std::optional<std::uint64_t> next;
    auto sooner = [&next](std::uint64_t at) { next = next ? std::min(*next, at) : at; };
    for (const auto& [id, p] : peers_) {
        // Every peer was pinged at this poll or since the last interval.
        sooner(*p.pinged_us + timing_.ping_interval_us);
        if (p.down)
            sooner(now_us + timing_.poll_interval_us);  // the verdict again
        else
            sooner(now_us + (timing_.down_after_us - p.silent_us) + 1 +
                   timing_.verdict_phase_us);  // silent past it, at this process's phase
    }
    if (next) next = std::max(*next, now_us + 1);
    return next;
}

bool HostLiveness::is_down(NodeId peer) const {
    auto it = peers_.find(peer);
    return it != peers_.end() && it->second.down;
}

}  // namespace keel::runtime
