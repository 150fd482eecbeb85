// runtime/host_liveness.hpp — which peer processes are alive, as one
// process sees them: the host's half of quiescence (docs/groups.md,
// "Quiescence and liveness").  A quiescent group neither heartbeats nor
// runs an election timer, so something else must notice that the process
// of its leader died: one ping per peer process per interval, whatever the
// number of groups, and a verdict ("process X is down") that the host hands
// to every group that has X as a member (raft::Core::peer_down).
//
// Pure and thread-free, the twin of the simulator's model
// (tests/sim/cluster_liveness.cpp): the caller passes the time (microseconds
// on any monotonic clock) and acts on the answers.  process_liveness.hpp
// runs it on a process's I/O thread.
//
// The rules, per peer process:
//   - a peer is presumed up when it becomes one (heard "now"): this process
//     has no verdict of its own yet;
//   - it is pinged at a poll once three quarters of the ping interval have
//     passed since its last ping (a poll that comes a little early does not
//     skip a whole interval).  The ping interval is a quarter of
//     down_after_us, not one heartbeat (liveness_timing below): a verdict
//     needs a few pings per timeout, not one per heartbeat (decision 0044);
//   - anything that arrives from it (a frame of any group, or its ping)
//     counts as hearing it; one not heard for more than down_after_us of
//     this process's listening time (below) is down, and reported down at
//     every poll while it stays silent, one poll interval apart (a group
//     that went quiet since, on a delayed quiesce heartbeat, must hear it
//     too); hearing it again makes it up;
//   - each poll says when the next one is due (Round::next_poll_us): the
//     next ping, the instant a silent peer would be down (plus this
//     process's verdict phase, below), or one poll
//     interval while a peer is down.  The caller sleeps until then, so an
//     idle process wakes once per ping interval, and a dead peer is found
//     when its silence passes down_after_us, not at the next tick after;
//   - listening time is the time between polls, each gap counted up to the
//     gap that poll planned plus one poll interval: a poll that comes later
//     finds this process itself stalled (its timer thread starved or queued
//     behind busy work), and what it did not hear meanwhile may be its own
//     deafness, not the peer's silence (its receiving threads stalled too,
//     and its own pings went out late, so the peers may be waiting on it).
//     A process whose rounds stall thus declares no peer down for that
//     stall; a dead peer is still found after down_after_us of polls on
//     time, and after a few polls however late they come (decision 0031);
//   - a ping carrying another incarnation than the last one heard means the
//     process restarted: the replicas it ran lost their state, and the
//     verdict is given once, as if it had been down.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "keel/transport.hpp"

namespace keel::runtime {

struct LivenessTiming {
    // The process clock's tick (one heartbeat interval): the pace of
    // verdicts repeated while a peer stays down, and the slack a late poll
    // is credited beyond the gap it planned.
    std::uint64_t poll_interval_us = 0;
    // One ping per peer per interval.
    std::uint64_t ping_interval_us = 0;
    // A peer not heard for longer than this is down (at least the longest
    // election timeout: a verdict must not come before a follower's own
    // timer would have run out).
    std::uint64_t down_after_us = 0;
    // This process's verdicts come this long after the instant a silence
    // passes down_after_us (less than a poll interval; drawn per process,
    // liveness_phase_us).  The processes that heard a dead peer's last ping
    // together would otherwise declare it down at the same microsecond, and
    // the followers of every group it led would campaign in step (decision
    // 0044); on a fixed-rate tick the verdicts came a random part of a tick
    // apart, and the phase keeps that spread.
    std::uint64_t verdict_phase_us = 0;
};

// Pings per down_after_us (liveness_timing).  Four leave a peer three
// quarters of the timeout of slack for a late ping before a wrong verdict;
// more only cost wakeups (decision 0044).
inline constexpr std::uint64_t kPingsPerTimeout = 4;

// The timing of a process whose clock ticks every `tick_us` and whose peers
// are down after `down_after_us` of silence: one ping every
// down_after_us / kPingsPerTimeout, and never more often than a tick.
// REQUIRES: 0 < tick_us < down_after_us.
LivenessTiming liveness_timing(std::uint64_t tick_us, std::uint64_t down_after_us,
                               std::uint64_t verdict_phase_us = 0);

// A process's verdict phase, in [0, tick_us): from its incarnation (a random
// number drawn at start), so that two processes' phases are independent.
std::uint64_t liveness_phase_us(std::uint64_t incarnation, std::uint64_t tick_us);

class HostLiveness {
public:
    // REQUIRES: 0 < timing.poll_interval_us <= timing.ping_interval_us <
    // timing.down_after_us, timing.verdict_phase_us < timing.poll_interval_us.
    explicit HostLiveness(LivenessTiming timing);

    // The peer processes to watch: those some group of this process shares.
    // A new one is presumed up, heard at `now_us`, and due for a ping; one
    // no longer listed is forgotten.
    void set_peers(const std::set<NodeId>& peers, std::uint64_t now_us);

    // Something arrived from `peer` (ignored for a peer not watched).
    // Returns true when it was down and is now up.
    bool heard(NodeId peer, std::uint64_t now_us);
    // Its ping arrived, carrying the incarnation of its process.  Returns
    // true when that incarnation differs from the last one heard from it:
    // it restarted, and the next poll reports it down once.
    bool heard_ping(NodeId peer, std::uint64_t incarnation, std::uint64_t now_us);

    struct Round {
        std::vector<NodeId> ping;        // send each one ping now
        std::vector<NodeId> down;        // tell every group that has it: peer_down
        std::vector<NodeId> newly_down;  // those of `down` that were up at the last poll
        // When to poll next (no later: a verdict or a ping would be late);
        // empty without peers.  A poll that comes later counts at most
        // this gap plus one poll interval of silence (see above).
        std::optional<std::uint64_t> next_poll_us;
    };
    // What to do at `now_us`: at Round::next_poll_us, and whenever the peers
    // change or a ping says a peer restarted.  Polling more often is
    // harmless (a ping goes out at most once per three quarters of the
    // interval).
    Round poll(std::uint64_t now_us);

    bool is_down(NodeId peer) const;
    std::size_t peer_count() const { return peers_.size(); }
    const LivenessTiming& timing() const { return timing_; }

private:
    struct Peer {
        std::uint64_t heard_us = 0;
        // Listening time without hearing it, as of the last poll.
        std::uint64_t silent_us = 0;
        std::optional<std::uint64_t> pinged_us;  // the last ping sent
        std::optional<std::uint64_t> incarnation;
        bool down = false;
        bool restarted = false;  // report down once at the next poll
    };

    // When the next poll is due.  REQUIRES: polled_us_ is set.
    std::optional<std::uint64_t> next_poll(std::uint64_t now_us) const;

    const LivenessTiming timing_;
    std::map<NodeId, Peer> peers_;
    std::optional<std::uint64_t> polled_us_;  // the last poll
    std::uint64_t planned_gap_us_ = 0;        // from the last poll to the next it asked for
};

}  // namespace keel::runtime
