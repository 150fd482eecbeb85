#include "scenario.hpp"

#include "keel/assert.hpp"
#include "trace.hpp"

namespace keel::sim {

using raft::Index;
using raft::NodeId;
using raft::Role;
using raft::Term;

const char* scenario_name(Scenario scenario) {
    switch (scenario) {
        case Scenario::none:
            return "none";
        case Scenario::figure8:
            return "figure8";
        case Scenario::overwritten_write:
            return "overwritten_write";
    }
    return "?";
}

bool parse_scenario(const std::string& name, Scenario* out) {
    for (Scenario s : {Scenario::none, Scenario::figure8, Scenario::overwritten_write}) {
        if (name == scenario_name(s)) {
            *out = s;
            return true;
        }
    }
    return false;
}

std::optional<std::string> Script::poll(ScriptHost& host) {
    while (next_ < steps_.size()) {
        const ScriptStep& step = steps_[next_];
        if (!step.ready(host)) {
            if (host.now_us() > since_us_ + kStepWaitUsMax) {
                return std::string("Scenario: step ") + std::to_string(next_ + 1) + " (" +
                       step.what + ") did not happen within " + format_time(kStepWaitUsMax);
            }
            return std::nullopt;
        }
        if (step.check) {
            if (std::string off = step.check(host); !off.empty()) {
                return std::string("Scenario: off script at step ") + std::to_string(next_ + 1) +
                       " (" + step.what + "): " + off;
            }
        }
        host.trace(std::string("SCRIPT ") + std::to_string(next_ + 1) + ": " + step.what);
        if (step.act) step.act(host);
        since_us_ = host.now_us();
        ++next_;
    }
    return std::nullopt;
}

// ---- Figure 8 -------------------------------------------------------------------
//
// Figure 8 of the Raft paper (§5.4.2), on nodes 1..5 (the paper's S1..S5):
//   (a) S1 leads term 2 and replicates an entry to S2 only.
//   (b) S1 crashes; S5 is elected in term 3 with the votes of S3, S4 and
//       itself, and appends a different entry at that index, on its own log.
//   (c) S5 crashes; S1 restarts, is elected in term 4 and replicates its
//       term-2 entry to S3: it is now on a majority (S1, S2, S3).  Counting
//       replicas would commit it; Raft must not, because of what follows.
//   (d) S1 crashes before any entry of term 4 is on a majority; S5 is elected
//       (term 5) and overwrites the term-2 entry everywhere with its own.
// Keel's leaders append a no-op at the start of each term, which shifts the
// paper's index 2 to index 3 here: index 2 holds S1's term-2 no-op, which in
// (a) reaches every node (S5 needs it to win S3's and S4's votes later); the
// contested index 3 holds S1's client write of term 2 on one side and S5's
// term-3 no-op on the other.  S1's term-4 no-op (index 4) must not reach S3
// or S4, or they would refuse S5 their votes.  S1 is cut from S4 throughout
// (c).  With max_message_bytes = 1 an append stops after its first entry
// that has data (a data-less no-op alone would ride along with the next), so
// S3 receives 3/t2 and 4/t4 in separate messages and the script cuts S1 off
// between the two.
//
// With the correct core, index 3 ends up committed with S5's term 3.  With
// Options::unsafe_commit_older_terms, S1 commits 3/t2 in (c) — a majority
// does hold it durably, so the Commit checker is satisfied — and S5's
// election in (d) is caught by Leader Completeness.
//
// Who campaigns is decided by the election timeouts: S1 and S5 time out
// after 10..12 ticks, S2..S4 after 1,000 (10 s), so they only ever vote.
// PreVote is on; CheckQuorum is off (with leader stickiness S3 would ignore
// S5 for an election timeout after hearing from S1: 10 s with S3's timeout).

namespace {

constexpr NodeId kNodes = 5;
constexpr Index kContested = 3;  // the paper's index 2 (see above)

bool leads(const ScriptHost& h, NodeId id) {
    const raft::Core* c = h.core(id);
    return c && c->role() == Role::leader;
}

bool holds_durably(const ScriptHost& h, NodeId id, Index index, Term term) {
    return h.durable(id).term_at(index) == term;
}

std::string expect_term(const ScriptHost& h, NodeId id, Term term) {
    const Term actual = h.core(id)->term();
    if (actual == term) return {};
    return std::string("n") + std::to_string(id) + " leads term " + std::to_string(actual) +
           ", not " + std::to_string(term);
}

void isolate(ScriptHost& h, NodeId id) {
    for (NodeId other = 1; other <= kNodes; ++other) {
        if (other != id) h.cut(id, other);
    }
}

// The leader's view of a follower's match index (0 if it has none).
Index match_of(const raft::Core& leader, NodeId follower) {
    for (const raft::PeerProgress& p : leader.progress()) {
        if (p.id == follower) return p.match;
    }
    return 0;
}

std::vector<ScriptStep> figure8_steps() {
    std::vector<ScriptStep> steps;
    steps.push_back({
        "n5 is cut off until n1 leads, so that n1 wins term 2",
        [](const ScriptHost&) { return true; },
        nullptr,
        [](ScriptHost& h) { isolate(h, 5); },
    });
    steps.push_back({
        "(a) n1 leads term 2; n5 is reconnected",
        [](const ScriptHost& h) { return leads(h, 1); },
        [](const ScriptHost& h) { return expect_term(h, 1, 2); },
        [](ScriptHost& h) { h.reconnect(); },
    });
    steps.push_back({
        "(a) n1's no-op 2/t2 is committed and on every disk; n1 takes a client write at 3/t2 "
        "and is cut from n3, n4 and n5, so the write reaches n2 only",
        [](const ScriptHost& h) {
            if (h.commit_known() < 2) return false;
            for (NodeId id = 1; id <= kNodes; ++id) {
                if (!holds_durably(h, id, 2, 2)) return false;
            }
            return true;
        },
        [](const ScriptHost& h) {
            if (h.core(1)->last_index() != 2) return std::string("n1's log goes past index 2");
            return std::string();
        },
        [](ScriptHost& h) {
            (void)h.propose(1);  // checked by the next step
            h.cut(1, 3);
            h.cut(1, 4);
            h.cut(1, 5);
        },
    });
    steps.push_back({
        "(a) n1 and n2 hold 3/t2 durably; n1 crashes (cut off while down); n2 and n5 cannot talk",
        [](const ScriptHost& h) {
            return holds_durably(h, 1, kContested, 2) && holds_durably(h, 2, kContested, 2);
        },
        nullptr,
        [](ScriptHost& h) {
            h.crash(1);
            h.reconnect();
            isolate(h, 1);
            h.cut(2, 5);
        },
    });
    steps.push_back({
        "(b) n5 leads term 3 (votes of n3, n4; n2 holds 3/t2 and refuses); cut it off, so its "
        "no-op 3/t3 stays on n5 alone",
        [](const ScriptHost& h) { return leads(h, 5); },
        [](const ScriptHost& h) { return expect_term(h, 5, 3); },
        [](ScriptHost& h) { isolate(h, 5); },
    });
    steps.push_back({
        "(b) n5 holds 3/t3 durably; n5 crashes (cut off while down); n1 restarts, cut from n4",
        [](const ScriptHost& h) { return holds_durably(h, 5, kContested, 3); },
        nullptr,
        [](ScriptHost& h) {
            h.crash(5);
            h.restart(1);
            h.reconnect();
            isolate(h, 5);
            h.cut(1, 4);
        },
    });
    steps.push_back({
        "(c) n1 leads term 4 and knows n3 holds 3/t2: n1, n2, n3 hold it, a majority; n1 is cut "
        "off and crashes before its no-op 4/t4 reaches n3; n5 restarts",
        [](const ScriptHost& h) { return leads(h, 1) && match_of(*h.core(1), 3) >= kContested; },
        [](const ScriptHost& h) {
            if (std::string off = expect_term(h, 1, 4); !off.empty()) return off;
            for (NodeId id : {1, 2, 3}) {
                if (!holds_durably(h, id, kContested, 2))
                    return std::string("n") + std::to_string(id) + " does not hold 3/t2 durably";
            }
            if (h.core(3)->last_index() != kContested)
                return std::string("n3's log goes past index 3");
            return std::string();
        },
        [](ScriptHost& h) {
            h.trace(std::string("SCRIPT: n1's commit index is ") +
                    std::to_string(h.core(1)->commit_index()) +
                    " (2 unless it committed 3/t2 by counting replicas)");
            isolate(h, 1);
            h.crash(1);
            h.restart(5);
            h.reconnect();
            isolate(h, 1);
        },
    });
    steps.push_back({
        "(d) n5 leads term 5 (votes of n3, n4; n2 holds 4/t4 and refuses)",
        [](const ScriptHost& h) { return leads(h, 5); },
        [](const ScriptHost& h) { return expect_term(h, 5, 5); },
        nullptr,
    });
    steps.push_back({
        "(d) index 3 is committed with n5's term 3: n1's 3/t2 never was",
        [](const ScriptHost& h) { return h.commit_known() >= kContested; },
        [](const ScriptHost& h) {
            if (h.committed_term(kContested) == 3) return std::string();
            return std::string("the committed entry at index 3 has term ") +
                   std::to_string(h.committed_term(kContested));
        },
        nullptr,
    });
    return steps;
}

// ---- A write overwritten back and forth ----------------------------------------
//
// Issue 21 (docs/decisions/0001-durability-report-ids.md), on nodes 1..5.
// n3's WAL is held, so that its first write (W1, 3/t2 from n1 in term 2)
// is still on its way to disk while
//   (b) n5, elected in term 3 without 3/t2, overwrites index 3 on n3 with
//       its no-op 3/t3 (W2: a truncation and 3/t3), and
//   (c) n1, elected in term 4 with n2 and n4 and having committed its no-op
//       4/t4, overwrites it back with 3/t2 4/t4 and tells n3 commit 4 (W3).
// Then the WAL is released: W1, W2 and W3 complete in turn, one event each.
// W1 is the last entry 3/t2, which n3's log holds again — but only W3 put
// it there.  A runtime that names W1 by that entry (Bug::stale_durability_
// report) makes the core count W3 durable: it saves commit 4 (the scenario
// saves every commit change at once, commit_save_p = 1) while the disk
// holds W1 only, and once W2 lands, 3/t3 under it.  The Durability check
// catches it at W1's completion.  With the correct runtime, n3 saves commit
// 4 only once W3 has landed.
//
// Who campaigns: n1 and n5 (10..12 ticks); n2, n3, n4 only vote.  PreVote
// on, CheckQuorum off (as in figure8: no leader stickiness to wait out).

std::vector<ScriptStep> overwritten_write_steps() {
    std::vector<ScriptStep> steps;
    steps.push_back({
        "n5 is cut off until n1 leads, so that n1 wins term 2",
        [](const ScriptHost&) { return true; },
        nullptr,
        [](ScriptHost& h) { isolate(h, 5); },
    });
    steps.push_back({
        "(a) n1 leads term 2; n5 is reconnected",
        [](const ScriptHost& h) { return leads(h, 1); },
        [](const ScriptHost& h) { return expect_term(h, 1, 2); },
        [](ScriptHost& h) { h.reconnect(); },
    });
    steps.push_back({
        "(a) n1's no-op 2/t2 is committed and on every disk; n3's WAL is held; n1 takes a "
        "client write at 3/t2 and is cut from n2, n4 and n5, so only n3 receives it",
        [](const ScriptHost& h) {
            if (h.commit_known() < 2) return false;
            for (NodeId id = 1; id <= kNodes; ++id) {
                if (!holds_durably(h, id, 2, 2)) return false;
            }
            return true;
        },
        [](const ScriptHost& h) {
            if (h.core(1)->last_index() != 2) return std::string("n1's log goes past index 2");
            return std::string();
        },
        [](ScriptHost& h) {
            h.hold_disk(3);
            (void)h.propose(1);  // checked by the next step
            h.cut(1, 2);
            h.cut(1, 4);
            h.cut(1, 5);
        },
    });
    steps.push_back({
        "(a) n3's log holds 3/t2 (W1, held) and n1's disk does; n1 is cut off",
        [](const ScriptHost& h) {
            return h.core(3)->term_at(kContested) == 2u && holds_durably(h, 1, kContested, 2);
        },
        nullptr,
        [](ScriptHost& h) { isolate(h, 1); },
    });
    steps.push_back({
        "(b) n5 leads term 3 (votes of n2, n4; n3 holds 3/t2 and refuses); cut from n2 and n4, "
        "its no-op 3/t3 reaches n3 only",
        [](const ScriptHost& h) { return leads(h, 5); },
        [](const ScriptHost& h) { return expect_term(h, 5, 3); },
        [](ScriptHost& h) {
            h.cut(5, 2);
            h.cut(5, 4);
        },
    });
    steps.push_back({
        "(b) n3's log holds 3/t3 (W2, queued behind W1); n5 is cut off; n1 is reconnected to "
        "n2 and n4",
        [](const ScriptHost& h) { return h.core(3)->term_at(kContested) == 3u; },
        nullptr,
        [](ScriptHost& h) {
            h.reconnect();
            isolate(h, 5);
            h.cut(1, 3);
        },
    });
    steps.push_back({
        "(c) n1 leads term 4 (votes of n2, n4) and has committed its no-op 4/t4; n1 is "
        "reconnected to n3",
        [](const ScriptHost& h) {
            return leads(h, 1) && h.core(1)->term() == 4 && h.commit_known() >= 4;
        },
        [](const ScriptHost& h) {
            if (h.committed_term(kContested) != 2)
                return std::string("index 3 is committed with another term than 2");
            return std::string();
        },
        [](ScriptHost& h) {
            h.reconnect();
            isolate(h, 5);
        },
    });
    steps.push_back({
        "(c) n3's log holds 3/t2 4/t4 again (W3, queued behind W1 and W2) and commit 4; n3's "
        "WAL is released",
        [](const ScriptHost& h) {
            const raft::Core* c = h.core(3);
            return c->term_at(kContested) == 2u && c->term_at(4) == 4u && c->commit_index() >= 4;
        },
        [](const ScriptHost& h) {
            if (h.durable(3).last_index() != 2)
                return std::string("n3's held WAL let a write through");
            return std::string();
        },
        [](ScriptHost& h) { h.release_disk(3); },
    });
    steps.push_back({
        "(c) W1, W2 and W3 have landed: n3's disk holds 3/t2 and 4/t4",
        [](const ScriptHost& h) {
            return holds_durably(h, 3, kContested, 2) && holds_durably(h, 3, 4, 4) &&
                   h.core(3)->persisted_index() >= 4;
        },
        nullptr,
        nullptr,
    });
    return steps;
}

}  // namespace

SwarmParams scenario_params(Scenario scenario) {
    KEEL_ASSERT(scenario != Scenario::none, "scenario_params: no such scenario");
    SwarmParams p;  // defaults: no drops, duplicates, holds, partitions or crashes
    p.voters_min = p.voters_max = static_cast<int>(kNodes);
    // Fixed delays keep the order of the few messages that matter (n2's
    // acknowledgement reaches n1 before n3's) the same in every seed.
    p.delay_min_us = p.delay_max_us = 1'000;
    p.fifo_links = true;
    p.fsync_min_us = p.fsync_max_us = 100;
    p.tick_us = 10'000;
    p.skew = 0;
    p.election_ticks_min = 10;  // overridden per node (scenario_options)
    p.election_ticks_max = 12;
    p.heartbeat_ticks = 1;
    p.pre_vote = true;
    p.check_quorum = false;
    p.lease_reads = false;
    p.max_message_bytes = 1;  // one entry per append
    p.fault_phase_us = 0;     // unused: the script ends the fault phase
    if (scenario == Scenario::overwritten_write) {
        p.max_message_bytes = 1 << 20;  // 3/t2 and 4/t4 travel together
        p.commit_save_p = 1;            // every commit change saved at once
    }
    return p;
}

void scenario_options(Scenario scenario, raft::Options* o) {
    KEEL_ASSERT(scenario != Scenario::none, "scenario_options: no such scenario");
    if (o->id == 1 || o->id == 5) return;  // the candidates keep 10..12 ticks
    o->election_ticks_min = o->election_ticks_max = 1'000;
}

int scenario_nodes(Scenario scenario) {
    KEEL_ASSERT(scenario != Scenario::none, "scenario_nodes: no such scenario");
    return static_cast<int>(kNodes);
}

Script make_script(Scenario scenario) {
    KEEL_ASSERT(scenario != Scenario::none, "make_script: no such scenario");
    return Script(scenario == Scenario::figure8 ? figure8_steps() : overwritten_write_steps());
}

}  // namespace keel::sim
