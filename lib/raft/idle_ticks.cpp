// raft/idle_ticks.cpp — ticks that only count.  Most ticks of an awake
// replica move its clocks and nothing else: a follower that hears from its
// leader never reaches its election timeout.  ticks_until_due() says how
// many ticks may come before one does more (with no other input between);
// tick_many(n) gives n ticks at once, counting the quiet ones by arithmetic
// and stepping tick() through the due ones.  The state it leaves is the one
// n calls of tick() leave, output included (tests/raft/idle_ticks_test.cpp,
// and the simulator's --same-with-lazy-ticks).  A runtime may then tick a
// replica only when it is due, provided it hands the core every tick that
// elapsed before any other input (docs/decisions/0041-idle-ticks.md).
#include <algorithm>

#include "keel/assert.hpp"
#include "raft/state.hpp"

namespace keel::raft {

namespace {

// Ticks until a counter now at `elapsed` reaches `limit` (at least one: a
// counter at or past its limit acts at the next tick).
std::uint64_t ticks_to(int elapsed, int limit) {
    return elapsed + 1 >= limit ? 1 : static_cast<std::uint64_t>(limit - elapsed);
}

}  // namespace

// What each role's tick does besides counting (election.cpp, tick()):
//   follower, pre-candidate, candidate (tick_election): campaigns once the
//     election timer reaches its randomized timeout; one that may not
//     campaign pokes its quiet leader at every multiple of the timeout;
//   leader (tick_leader): CheckQuorum every election_ticks_min, a
//     transfer's abort at election_ticks_min of its own clock, with quiesce
//     a count of quiet ticks while it may quiesce (maybe_quiesce), and a
//     heartbeat tick every heartbeat_ticks.  A heartbeat tick at which no
//     follower needs a heartbeat (replication.cpp, heartbeat_needed: each
//     was sent an append since the last one, and nothing else is owed)
//     sends nothing and only forgets those appends (and moves the marks of
//     what was sent by then, append_due_on_answer); the next one then
//     heartbeats every follower.  So a busy leader is due every second
//     heartbeat tick at most, the skipped one counted here.
// A quiescent core ignores ticks: never due.
std::uint64_t Core::State::ticks_until_due() const {
    if (quiet.quiescent) return Core::kNeverDue;
    if (role != Role::leader) {
        const int e = clocks.election_elapsed_ticks;
        const int r = clocks.randomized_election_ticks;
        KEEL_ASSERT(r >= 1, "an election timeout is drawn");
        if (e + 1 < r) return static_cast<std::uint64_t>(r - e);
        if (may_campaign()) return 1;
        return static_cast<std::uint64_t>((e / r + 1) * r - e);
    }
    // maybe_quiesce counts, or resets its count, at the next tick.
    if (opt.quiesce && (quiet.quiet_ticks != 0 || may_quiesce())) return 1;
    std::uint64_t due = ticks_to(clocks.election_elapsed_ticks, opt.election_ticks_min);
    if (leadership_transfer.target != kNoNode)
        due = std::min(due, ticks_to(leadership_transfer.elapsed_ticks, opt.election_ticks_min));
    if (!progress.empty()) {
        const std::uint64_t heartbeat =
            ticks_to(clocks.heartbeat_elapsed_ticks, opt.heartbeat_ticks);
        const bool needed = std::any_of(progress.begin(), progress.end(),
                                        [&](const auto& p) { return heartbeat_needed(p.second); });
        due = std::min(
            due, needed ? heartbeat : heartbeat + static_cast<std::uint64_t>(opt.heartbeat_ticks));
    }
    return due;
}

// `n` ticks none of which is due: the clocks tick() moves, moved by n, and
// what a heartbeat tick that sends nothing forgets.
void Core::State::count_quiet_ticks(std::uint64_t n) {
    if (n == 0 || quiet.quiescent) return;
    KEEL_ASSERT(n < ticks_until_due(), "only ticks that do nothing but count");
    // n is below a due tick, which is at most two election timeouts away.
    const int ticks = static_cast<int>(n);
    clocks.ticks += ticks;
    if (clocks.ticks_since_leader_contact < opt.election_ticks_min)
        clocks.ticks_since_leader_contact =
            std::min(clocks.ticks_since_leader_contact + ticks, opt.election_ticks_min);
    clocks.election_elapsed_ticks += ticks;
    if (role != Role::leader) return;
    if (leadership_transfer.target != kNoNode) leadership_transfer.elapsed_ticks += ticks;
    const int heartbeat = clocks.heartbeat_elapsed_ticks + ticks;
    if (heartbeat >= opt.heartbeat_ticks) {
        // At most one heartbeat tick, which sent nothing (tick_heartbeat).
        KEEL_ASSERT(heartbeat < 2 * opt.heartbeat_ticks, "a second heartbeat tick is due");
        for (auto& [id, pr] : progress) pr.end_heartbeat_interval();
    }
    clocks.heartbeat_elapsed_ticks = heartbeat % opt.heartbeat_ticks;
}

void Core::State::tick_many(std::uint64_t n) {
    while (n > 0) {
        const std::uint64_t quiet_ticks = std::min(n, ticks_until_due() - 1);
        count_quiet_ticks(quiet_ticks);
        n -= quiet_ticks;
        if (n == 0) return;
        tick();
        --n;
    }
}

}  // namespace keel::raft
