// runtime/process_liveness.hpp — host liveness on a real process: runs
// HostLiveness (host_liveness.hpp) on the I/O thread, over the process's
// transport (group_router.hpp), and hands its verdicts to the groups
// (raft::Core::peer_down through the hook each group attaches).  Off until a
// group with quiescence on enables it (Replica, NodeOptions::quiesce): a
// process without it sends no ping.
//
// Its rounds run on a timer of its own, armed for the instant the last round
// asked for (HostLiveness::Round::next_poll_us), not on the process clock's
// fixed-rate tick: a process whose groups are all quiescent wakes once per
// ping interval (a quarter of the election timeout), and its clock stays
// disarmed (decision 0044).  A change of peers, or a ping that says a peer
// restarted, runs a round at once.
//
// The ping: a messages frame on group kLivenessGroup (reserved: no Raft
// group may use it) holding one heartbeat from this process's node id to
// the peer's, term 0, whose context is this process's incarnation (a random
// number drawn at start: a new one means the process restarted).  It never
// reaches a core.  A ping that does not decode, carries anything else, or
// is not from the node that delivered it, is refused and counted
// (`malformed`, `misaddressed`) like any peer input.  Anything delivered
// from a peer, of any group, counts as hearing it.
//
// Peers: the processes the router knows (those some group has as a
// member), read at every round.  A verdict goes to the groups that have
// that peer.
//
// Threads: enable, attach and the router's hooks (heard, on_ping) from any
// thread; detach and round on the I/O thread.  Owned by ProcessServices,
// which outlives the groups.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>

#include "keel/status.hpp"
#include "keel/transport.hpp"
#include "runtime/host_liveness.hpp"
#include "runtime/latency_histogram.hpp"
#include "runtime/process_clock.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

class GroupRouter;

// The group id of the liveness ping: reserved for the process.
inline constexpr GroupId kLivenessGroup = ~GroupId{0};

class ProcessLiveness {
public:
    ProcessLiveness(GroupRouter& router, ProcessClock& clock);
    ~ProcessLiveness();
    ProcessLiveness(const ProcessLiveness&) = delete;
    ProcessLiveness& operator=(const ProcessLiveness&) = delete;

    // Turns liveness on: this process is node `self`, its clock ticks every
    // `tick_period`, and a peer is down after `down_after_us` of silence
    // (the timing: liveness_timing).  The first call decides; a later one
    // must name the same node.  Any thread, before the group that asks runs.
    Status enable(NodeId self, std::chrono::microseconds tick_period, std::uint64_t down_after_us)
        EXCLUDES(mu_);
    bool enabled() const { return enabled_.load(std::memory_order_acquire); }

    // Group `group` hears the verdicts: `on_peer_down(peer)` on the I/O
    // thread, for a peer it has as a member.  Any thread.
    void attach(GroupId group, std::function<void(NodeId)> on_peer_down) EXCLUDES(mu_);
    // No verdict reaches it after this returns.  I/O thread.
    void detach(GroupId group) EXCLUDES(mu_);

    // The router's hooks (any thread): something arrived from `from`; a
    // ping arrived (refused with a Status when it is not one, already
    // counted through `on_rejected`).
    void heard(NodeId from) EXCLUDES(mu_);
    Status on_ping(NodeId from, std::string_view bytes) EXCLUDES(mu_);
    // The router's peers changed (I/O thread): a round now, and rounds run
    // while there is a peer.
    void peers_changed();

    // Tests and status (any thread).
    std::uint64_t pings_sent() const { return pings_sent_.load(); }
    std::uint64_t pings_received() const { return pings_received_.load(); }
    std::uint64_t verdicts() const { return verdicts_.load(); }  // peers newly declared down
    // Time between two rounds, and between two pings heard from one peer
    // (HostStatus's liveness figures).
    LatencyHistogram round_gaps() const { return round_gaps_.snapshot(); }
    std::uint64_t round_gap_us_max() const { return round_gap_us_max_.load(); }
    LatencyHistogram ping_gaps() const { return ping_gaps_.snapshot(); }
    std::uint64_t ping_gap_us_max() const { return ping_gap_us_max_.load(); }
    std::uint64_t incarnation() const { return incarnation_; }
    // The rounds' timer expiries (0 while off): part of what the process
    // pays for timers (HostStatus::timer_wakeups).
    std::uint64_t rounds() const { return rounds_.load(std::memory_order_relaxed); }
    // Whether a round is due (its timer armed).  I/O thread.
    bool armed() const { return armed_at_us_.has_value(); }

private:
    struct Timer;

    // I/O thread, when the timer expires: pings, verdicts, the next round.
    void round() EXCLUDES(mu_);
    // I/O thread: the next round at `at_us` (steady clock), unless one is
    // due sooner; or none.
    void arm(std::uint64_t at_us);
    void disarm();
    Status refuse(std::string_view reason, std::string detail);

    GroupRouter& router_;
    ProcessClock& clock_;
    const std::uint64_t incarnation_;
    std::atomic<bool> enabled_{false};

    Mutex mu_;
    NodeId self_ GUARDED_BY(mu_) = 0;
    std::optional<HostLiveness> liveness_ GUARDED_BY(mu_);
    std::map<GroupId, std::function<void(NodeId)>> groups_ GUARDED_BY(mu_);
    // Made by enable(), before enabled_ reads true; used on the I/O thread.
    // Destroyed with this object, after the I/O thread stopped.
    std::unique_ptr<Timer> timer_;
    std::optional<std::uint64_t> armed_at_us_;  // I/O thread
    std::uint64_t generation_ = 0;  // I/O thread: bumped per arm, stale expiries ignored
    std::atomic<std::uint64_t> rounds_{0};

    std::atomic<std::uint64_t> pings_sent_{0};
    std::atomic<std::uint64_t> pings_received_{0};
    std::atomic<std::uint64_t> verdicts_{0};
    std::uint64_t last_round_us_ = 0;  // I/O thread
    std::map<NodeId, std::uint64_t> last_ping_us_ GUARDED_BY(mu_);
    LatencyHistogramRecorder round_gaps_;
    LatencyHistogramRecorder ping_gaps_;
    std::atomic<std::uint64_t> round_gap_us_max_{0};
    std::atomic<std::uint64_t> ping_gap_us_max_{0};
};

}  // namespace keel::runtime
