// tests/raft/idle_ticks_test.cpp — ticks that only count (raft/idle_ticks.cpp):
// Core::tick(n) does what n calls of tick() do, and ticks_until_due() names
// the first tick that does more than count.  The simulator checks the
// runtime's way of using them over whole runs (keel_sim
// --same-with-lazy-ticks).
#include <catch2/catch.hpp>

#include <random>

#include "../common/test_seed.hpp"
#include "harness.hpp"

using namespace keel::raft;
using namespace keel::raft::test;

namespace {

// Two clusters built alike and given the same inputs, but for ticks: the
// first is ticked one tick() at a time, the second tick(n) at once.  Both
// carry out their output only after all n ticks, so their traces (every
// message and change of state) must be the same after every step, and so
// must every core's ticks_until_due(), which reads the clocks.
class TwinClusters {
public:
    explicit TwinClusters(std::uint64_t seed) : rng_(seed) {
        const bool pre_vote = rng_() % 4 != 0;
        const bool check_quorum = pre_vote && rng_() % 4 != 0;
        const bool lease_reads = check_quorum && rng_() % 3 == 0;
        const bool quiesce = rng_() % 3 == 0;
        const int heartbeat_ticks = 1 + static_cast<int>(rng_() % 3);
        auto tweak = [=](Options& o) {
            o.random_seed = seed * 31 + o.id;
            o.pre_vote = pre_vote;
            o.check_quorum = check_quorum;
            o.lease_reads = lease_reads;
            o.quiesce = quiesce;
            o.heartbeat_ticks = heartbeat_ticks;
        };
        one_by_one_ = std::make_unique<Cluster>(std::vector<NodeId>{1, 2, 3}, std::vector<NodeId>{},
                                                tweak, &trace_one_by_one_);
        at_once_ = std::make_unique<Cluster>(std::vector<NodeId>{1, 2, 3}, std::vector<NodeId>{},
                                             tweak, &trace_at_once_);
    }

    void step() {
        const NodeId id = 1 + rng_() % 3;
        const NodeId other = 1 + (id + rng_() % 2) % 3;
        const std::uint64_t r = rng_() % 100;
        if (r < 40) {
            both([](Cluster& c) { (void)c.deliver_one(); });
        } else if (r < 70) {
            // Up to two election timeouts at once: several due ticks in one call.
            const std::uint64_t n = 1 + rng_() % (rng_() % 4 == 0 ? 40 : 8);
            for (std::uint64_t i = 0; i < n; ++i) one_by_one_->core(id).tick();
            one_by_one_->process(id);
            at_once_->core(id).tick(n);
            at_once_->process(id);
        } else if (r < 80) {
            both([&](Cluster& c) {
                if (c.core(id).role() == Role::leader) (void)c.core(id).propose(std::string("x"));
                c.process(id);
            });
        } else if (r < 85) {
            const std::uint64_t request = rng_();
            both([&](Cluster& c) {
                (void)c.core(id).read_index(request);
                c.process(id);
            });
        } else if (r < 88) {
            both([&](Cluster& c) {
                (void)c.core(id).transfer_leadership(other);
                c.process(id);
            });
        } else if (r < 91) {
            both([&](Cluster& c) {
                c.core(id).peer_down(other);
                c.process(id);
            });
        } else if (r < 96) {
            both([&](Cluster& c) { c.cut(id, other); });
        } else {
            both([](Cluster& c) { c.heal(); });
        }
    }

    // Empty when both clusters agree; else what differs first.
    std::string difference() const {
        const std::size_t n = std::min(trace_one_by_one_.size(), trace_at_once_.size());
        for (std::size_t i = 0; i < n; ++i)
            if (trace_one_by_one_[i] != trace_at_once_[i])
                return "line " + std::to_string(i) + ": one by one \"" + trace_one_by_one_[i] +
                       "\", at once \"" + trace_at_once_[i] + "\"";
        if (trace_one_by_one_.size() != trace_at_once_.size())
            return "traces of " + std::to_string(trace_one_by_one_.size()) + " and " +
                   std::to_string(trace_at_once_.size()) + " lines";
        for (NodeId id : {1, 2, 3}) {
            const Core& a = one_by_one_->core(id);
            const Core& b = at_once_->core(id);
            if (a.ticks_until_due() != b.ticks_until_due() || a.role() != b.role() ||
                a.term() != b.term() || a.commit_index() != b.commit_index())
                return "node " + std::to_string(id) + ": due in " +
                       std::to_string(a.ticks_until_due()) + " one by one, " +
                       std::to_string(b.ticks_until_due()) + " at once";
        }
        return "";
    }

    std::size_t trace_lines() const { return trace_one_by_one_.size(); }

private:
    template <typename F>
    void both(F&& f) {
        f(*one_by_one_);
        f(*at_once_);
    }

    std::mt19937_64 rng_;
    std::vector<std::string> trace_one_by_one_, trace_at_once_;
    std::unique_ptr<Cluster> one_by_one_, at_once_;
};

}  // namespace

TEST_CASE("tick(n) does what n ticks do, from random states, output included") {
    const auto from_env = keel::test::seed_from_env();
    const std::uint64_t first = from_env.value_or(1);
    const std::uint64_t count = from_env ? 1 : 300;
    for (std::uint64_t seed = first; seed < first + count; ++seed) {
        INFO("seed " << seed << " (replay: KEEL_SEED=" << seed << ")");
        TwinClusters twins(seed);
        for (int i = 0; i < 400; ++i) {
            twins.step();
            const std::string diff = twins.difference();
            INFO("step " << i);
            REQUIRE(diff == "");
        }
        REQUIRE(twins.trace_lines() > 0);
    }
}

TEST_CASE("a follower that hears its leader is due at its election timeout, not before") {
    Cluster c({1, 2, 3});
    c.elect(1);
    REQUIRE(c.leader() == 1);
    for (NodeId f : {2, 3}) {
        const std::uint64_t due = c.core(f).ticks_until_due();
        // Just heard from its leader: a whole randomized timeout away.
        CHECK(due >= 10);
        CHECK(due <= 20);
        const std::size_t sent = c.sent_log.size();
        c.core(f).tick(due - 1);
        c.process(f);
        CHECK(c.sent_log.size() == sent);  // nothing but counting
        CHECK(c.core(f).role() == Role::follower);
        CHECK(c.core(f).ticks_until_due() == 1);
        c.core(f).tick(1);
        c.process(f);
        CHECK(c.core(f).role() == Role::pre_candidate);
        CHECK(c.sent_log.size() > sent);
    }
}

TEST_CASE("a leader whose followers were sent appends is due at the second heartbeat tick") {
    Cluster c({1, 2, 3});
    c.elect(1);
    REQUIRE(c.leader() == 1);
    // Both followers were sent the no-op and then its commit (a notice,
    // decision 0042): neither is owed anything, so the next heartbeat tick
    // sends nothing and the one after is due.
    CHECK(c.core(1).ticks_until_due() == 2);
    c.tick(1);
    c.deliver_all();
    // An append to each, unanswered: neither is owed anything a heartbeat
    // would tell, so the next heartbeat tick sends nothing.
    c.drop_types.insert(MessageType::append_response);
    REQUIRE(c.core(1).propose(std::string("x")).ok());
    c.deliver_all();
    CHECK(c.core(1).ticks_until_due() == 2);
    const std::size_t sent = c.sent_log.size();
    c.core(1).tick(1);
    c.process(1);
    CHECK(c.sent_log.size() == sent);
    CHECK(c.core(1).ticks_until_due() == 1);
    c.core(1).tick(1);
    c.process(1);
    REQUIRE(c.sent_log.size() == sent + 2);  // a heartbeat to each
    for (std::size_t i = sent; i < sent + 2; ++i)
        CHECK(c.sent_log[i].type == MessageType::heartbeat);
}

TEST_CASE("a quiescent core is never due") {
    Cluster c({1, 2, 3}, {}, [](Options& o) { o.quiesce = true; });
    c.elect(1);
    for (int i = 0; i < 40 && c.core(2).needs_ticks(); ++i) c.tick_all();
    REQUIRE_FALSE(c.core(2).needs_ticks());
    for (NodeId id : {1, 2, 3}) CHECK(c.core(id).ticks_until_due() == Core::kNeverDue);
}
