// tests/raft/random_schedule_test.cpp — many random schedules against
// Raft's safety properties (Figure 3): election safety, leader completeness,
// state machine safety (no two nodes apply different entries at one index),
// linearizable ReadIndex, durability across crashes; and liveness once the
// faults stop.
//
// This is a small, self-contained randomised test of the core; the full
// deterministic cluster simulator lives in tests/sim.  Each schedule takes a
// seed; a failing seed is printed (also on an assertion abort) and can be
// replayed with KEEL_RAFT_SEED=<seed> (KEEL_RAFT_SEED_COUNT=n runs n seeds from there).
#include <catch2/catch.hpp>

#include <unistd.h>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <random>

#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

namespace {

volatile std::sig_atomic_t g_current_seed = 0;

void print_seed_on_abort(int) {
    char buf[64];
    int n = std::snprintf(buf, sizeof buf, "\nrandom schedule seed %d aborted\n",
                          static_cast<int>(g_current_seed));
    (void)!write(2, buf, static_cast<std::size_t>(n));
    std::signal(SIGABRT, SIG_DFL);
    std::raise(SIGABRT);
}

// The runtime of one node: durable storage, a write queue, a state machine.
struct Runtime {
    std::unique_ptr<Core> core;
    Options options;
    // Durable state.
    HardState hard_state;
    std::optional<SnapshotMeta> snapshot;
    std::vector<Entry> log;  // durable entries after the snapshot
    // Writes handed to "disk" but not complete: entries and replies waiting.
    struct Write {
        std::vector<Entry> entries;
        WriteId id = 0;
        std::vector<Message> after;
    };
    std::deque<Write> writes;
    Index applied = 0;
};

class Schedule {
public:
    explicit Schedule(std::uint64_t seed) : rng_(seed) {
        universe_ = 3 + rng_() % 3;  // 3..5 nodes exist; 3 are founding voters
        drop_percent_ = rng_() % 20;
        Configuration initial = make_config({1, 2, 3});
        for (NodeId id = 1; id <= universe_; ++id) {
            Runtime& r = nodes_[id];
            r.options = test_options(id);
            r.options.random_seed = seed * 31 + id;
            r.options.max_inflight_messages = 1 + rng_() % 4;
            r.options.max_message_bytes = 1 + rng_() % 64;
            r.options.snapshot_trailing_entries = rng_() % 4;
            r.options.pre_vote = rng_() % 4 != 0;
            r.options.check_quorum = r.options.pre_vote ? rng_() % 4 != 0 : false;
            RestoredState rs = id <= 3 ? bootstrap(initial) : RestoredState{};
            r.hard_state = rs.hard_state;
            r.log = rs.entries;
            r.core = std::make_unique<Core>(r.options, rs);
        }
    }

    void run(int steps) {
        for (int i = 0; i < steps; ++i) step_once(/*faults=*/true);
        // Faults stop: heal, finish writes, and the cluster must make progress.
        cut_.clear();
        drop_percent_ = 0;
        for (int i = 0; i < 20000 && !progress_made(); ++i) step_once(/*faults=*/false);
        if (!progress_made()) {
            for (auto& [id, r] : nodes_) {
                const Core& c = *r.core;
                UNSCOPED_INFO("node " << id << " " << role_name(c.role()) << " term " << c.term()
                                      << " leader " << c.leader() << " commit " << c.commit_index()
                                      << " last " << c.last_index() << " persisted "
                                      << c.persisted_index() << " config "
                                      << to_string(c.configuration()));
            }
        }
        REQUIRE(progress_made());
    }

private:
    void step_once(bool faults) {
        NodeId id = 1 + rng_() % universe_;
        Runtime& r = nodes_[id];
        switch (rng_() % 16) {
            case 0:
            case 1:
            case 2:
                r.core->tick();
                break;
            case 3:
            case 4:
            case 5:
            case 6:
            case 7:
                deliver();
                break;
            case 8:
            case 9:
                complete_write(id);
                break;
            case 10:
                propose(id);
                break;
            case 11:
                if (faults && rng_() % 8 == 0) crash(id);
                break;
            case 12:
                if (faults) partition();
                break;
            case 13:
                if (faults) change_config(id);
                break;
            case 14:
                take_snapshot(id);
                break;
            case 15:
                if (rng_() % 4 == 0) start_read(id);
                break;
        }
        for (auto& [nid, n] : nodes_) process(nid);
        check_one_leader_per_term();
        check_leader_completeness();
        if (!faults) {
            // Make sure the end phase moves: complete writes, deliver.
            for (auto& [nid, n] : nodes_) complete_write(nid);
            deliver();
            if (rng_() % 3 == 0) nodes_[id].core->tick();
        }
    }

    void process(NodeId id) {
        Runtime& r = nodes_[id];
        while (r.core->has_actions()) {
            Actions a = r.core->take_actions();
            if (a.snapshot) {
                while (!r.writes.empty()) complete_write(id);
                r.snapshot = a.snapshot;
                r.log.clear();
                r.applied = a.snapshot->index;
            }
            // Term and vote durable before any message of this batch is sent.
            if (a.hard_state) r.hard_state = *a.hard_state;
            for (Message& m : a.messages) network_.push_back(std::move(m));
            r.writes.push_back(Runtime::Write{std::move(a.entries), a.write_id,
                                              std::move(a.messages_after_persist)});
            for (const Entry& e : a.committed_entries) apply(id, e);
            for (const ReadState& rs : a.read_states) check_read(rs);
        }
    }

    void apply(NodeId id, const Entry& e) {
        Runtime& r = nodes_[id];
        REQUIRE(e.index == r.applied + 1);
        auto [it, inserted] = applied_.emplace(e.index, e);
        if (inserted) {
            applied_by_[e.index] = id;
            // The entry was committed in some term <= the highest term any node
            // has reached now: every leader of a later term must hold it.
            Term highest = 0;
            for (auto& [nid, n] : nodes_) highest = std::max(highest, n.core->term());
            applied_term_bound_[e.index] = highest;
        }
        if (!inserted && !(it->second == e)) {
            FAIL("state machine safety: node " << id << " applied " << to_string(e)
                                               << " where another applied "
                                               << to_string(it->second));
        }
        r.applied = e.index;
        r.core->on_applied(e.index);
        if (e.type == EntryType::normal && e.index > progress_base_) applied_after_faults_ = true;
    }

    void complete_write(NodeId id) {
        Runtime& r = nodes_[id];
        if (r.writes.empty()) return;
        Runtime::Write w = std::move(r.writes.front());
        r.writes.pop_front();
        if (!w.entries.empty()) {
            Index first = w.entries.front().index;
            while (!r.log.empty() && r.log.back().index >= first) r.log.pop_back();
            for (const Entry& e : w.entries) r.log.push_back(e);
            r.core->on_persisted(w.id);
        }
        for (Message& m : w.after) network_.push_back(std::move(m));
    }

    void deliver() {
        if (network_.empty()) return;
        std::size_t i = rng_() % network_.size();
        Message m = network_[i];
        bool duplicate = drop_percent_ > 0 && rng_() % 100 < 2;
        if (!duplicate) network_.erase(network_.begin() + static_cast<std::ptrdiff_t>(i));
        bool dropped = cut_.count({m.from, m.to}) || rng_() % 100 < drop_percent_;
        if (!dropped) (void)nodes_[m.to].core->step(m);
        if (m.type == MessageType::snapshot) nodes_[m.from].core->report_snapshot(m.to, !dropped);
    }

    void propose(NodeId id) {
        Core& c = *nodes_[id].core;
        if (c.role() != Role::leader) return;
        (void)c.propose(str_cat("v", next_value_++));
    }

    void crash(NodeId id) {
        Runtime& r = nodes_[id];
        r.writes.clear();  // lost: never acknowledged
        RestoredState rs;
        rs.hard_state = r.hard_state;
        rs.snapshot = r.snapshot;
        rs.entries = r.log;
        // The state machine restarts from the snapshot and replays the log.
        rs.applied = r.snapshot ? r.snapshot->index : 0;
        r.applied = rs.applied;
        if (rs.hard_state.commit > (rs.entries.empty() ? rs.applied : rs.entries.back().index)) {
            FAIL("durable commit index beyond the durable log on node " << id);
        }
        r.core = std::make_unique<Core>(r.options, rs);
    }

    void partition() {
        cut_.clear();
        if (rng_() % 3 == 0) return;  // heal
        NodeId a = 1 + rng_() % universe_;
        for (NodeId b = 1; b <= universe_; ++b) {
            if (b == a || rng_() % 2) continue;
            cut_.insert({a, b});
            cut_.insert({b, a});
        }
    }

    void change_config(NodeId id) {
        Core& c = *nodes_[id].core;
        if (c.role() != Role::leader || rng_() % 4 != 0) return;
        NodeId target = 1 + rng_() % universe_;
        const Configuration& conf = c.configuration();
        ConfigChange ch{ConfigChange::Kind::add_learner, target, ""};
        if (!conf.contains(target)) {
            ch.kind = rng_() % 2 ? ConfigChange::Kind::add_learner : ConfigChange::Kind::add_voter;
        } else if (!conf.is_voter(target)) {
            ch.kind = ConfigChange::Kind::promote;
        } else if (conf.voter_count() > 1) {
            ch.kind = ConfigChange::Kind::remove;
        }
        (void)c.propose_config_change(ch);
    }

    void take_snapshot(NodeId id) {
        Runtime& r = nodes_[id];
        if (rng_() % 4 != 0 || r.applied == 0) return;
        auto meta = r.core->on_snapshot_taken(r.applied);
        if (!meta.ok()) return;
        r.snapshot = *meta;  // the durable snapshot; the stored log keeps entries after it
        std::erase_if(r.log, [&](const Entry& e) { return e.index <= meta->index; });
    }

    // A read started after an entry was applied somewhere (acknowledged to a
    // client) must be served at an index that includes it (linearizability).
    void start_read(NodeId id) {
        std::uint64_t request = ++next_read_;
        Index seen = applied_.empty() ? 0 : applied_.rbegin()->first;
        if (nodes_[id].core->read_index(request).ok()) read_floor_[request] = seen;
    }

    void check_read(const ReadState& rs) {
        auto it = read_floor_.find(rs.request_id);
        REQUIRE(it != read_floor_.end());
        if (rs.index < it->second) {
            FAIL("ReadIndex " << rs.request_id << " served at " << rs.index << " but index "
                              << it->second << " was applied before it began");
        }
        read_floor_.erase(it);
    }

    // Leader Completeness (§5.4): a leader of a term after the one in which an
    // entry was committed holds it (checked for the entries it still has in
    // memory; older ones are in its snapshot).
    void check_leader_completeness() {
        for (auto& [id, r] : nodes_) {
            const Core& c = *r.core;
            if (c.role() != Role::leader) continue;
            for (auto it = applied_.lower_bound(c.first_index()); it != applied_.end(); ++it) {
                if (c.term() <= applied_term_bound_[it->first]) continue;
                if (it->first > c.last_index()) {
                    FAIL("leader " << id << " of term " << c.term() << " lacks applied entry "
                                   << to_string(it->second));
                }
                if (c.term_at(it->first) != it->second.term) {
                    FAIL("leader " << id << " of term " << c.term()
                                   << " holds another entry at applied index " << it->first << ": "
                                   << (c.term_at(it->first) ? *c.term_at(it->first) : 0)
                                   << " vs applied " << to_string(it->second) << " (by "
                                   << applied_by_[it->first] << ")");
                }
            }
        }
    }

    void check_one_leader_per_term() {
        for (auto& [id, r] : nodes_) {
            if (r.core->role() != Role::leader) continue;
            auto [it, inserted] = leaders_.emplace(r.core->term(), id);
            if (!inserted && it->second != id) {
                FAIL("election safety: two leaders in term " << r.core->term() << ": " << it->second
                                                             << " and " << id);
            }
        }
    }

    bool progress_made() {
        if (progress_base_ == 0) {
            Index top = 0;
            for (const auto& [index, e] : applied_) top = std::max(top, index);
            progress_base_ = top;
            applied_after_faults_ = false;
        }
        for (auto& [id, r] : nodes_) {
            // One proposal per leader and term: more would only outrun replication.
            if (r.core->role() == Role::leader && final_proposed_.insert(r.core->term()).second) {
                (void)r.core->propose("final");
            }
        }
        return applied_after_faults_;
    }

    std::mt19937_64 rng_;
    NodeId universe_ = 3;
    std::uint64_t drop_percent_ = 0;
    std::map<NodeId, Runtime> nodes_;
    std::vector<Message> network_;
    std::set<std::pair<NodeId, NodeId>> cut_;
    std::map<Index, Entry> applied_;
    std::map<Index, NodeId> applied_by_;
    std::map<Index, Term> applied_term_bound_;
    std::map<Term, NodeId> leaders_;
    std::uint64_t next_value_ = 0;
    Index progress_base_ = 0;
    bool applied_after_faults_ = false;
    std::set<Term> final_proposed_;
    std::uint64_t next_read_ = 0;
    std::map<std::uint64_t, Index> read_floor_;  // request -> highest index applied at its start
};

}  // namespace

TEST_CASE("random schedules keep election safety and state machine safety") {
    std::signal(SIGABRT, print_seed_on_abort);
    std::uint64_t first = 1;
    std::uint64_t count = 150;
    if (const char* s = std::getenv("KEEL_RAFT_SEED")) {
        first = std::strtoull(s, nullptr, 10);
        count = 1;
    }
    if (const char* s = std::getenv("KEEL_RAFT_SEED_COUNT")) count = std::strtoull(s, nullptr, 10);
    for (std::uint64_t seed = first; seed < first + count; ++seed) {
        g_current_seed = static_cast<std::sig_atomic_t>(seed);
        INFO("seed " << seed << " (replay with KEEL_RAFT_SEED=" << seed << ")");
        Schedule(seed).run(3000);
    }
    std::signal(SIGABRT, SIG_DFL);
}
