// The mode detector, online: 1 -> 3 -> 1 voters with writes flowing the
// whole time.  No acknowledged write is lost or applied twice; the tick
// timer is never armed while alone, armed once there are peers, and
// disarmed again (observed through status counters, not sleeps).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>
#include <thread>

#include "cluster_support.hpp"

using namespace keel;
using keel::test::eventually;
using keel::test::TestCluster;

namespace {

// Proposes to node 1 in a loop until stopped, recording acknowledgements.
class Writer {
public:
    explicit Writer(Node& node) : node_(node), thread_([this] { run(); }) {}
    ~Writer() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    std::size_t acked_count() const {
        std::lock_guard lock(mu_);
        return acked_.size();
    }
    std::map<std::uint64_t, std::string> acked() const {
        std::lock_guard lock(mu_);
        return acked_;
    }
    // Waits until `more` further writes are acknowledged; on failure, says
    // where the node is.
    bool advance(std::size_t more) {
        const std::size_t target = acked_count() + more;
        if (eventually([&] { return acked_count() >= target; })) return true;
        const NodeStatus st = node_.status();
        std::fprintf(stderr,
                     "writer stuck at %zu of %zu acks: role=%s term=%llu mode=%s commit=%llu "
                     "applied=%llu last=%llu members=%zu proposals=%llu commits=%llu\n",
                     acked_count(), target, role_name(st.role),
                     static_cast<unsigned long long>(st.term), mode_name(st.mode),
                     static_cast<unsigned long long>(st.commit_index),
                     static_cast<unsigned long long>(st.applied_index),
                     static_cast<unsigned long long>(st.last_index), st.members.size(),
                     static_cast<unsigned long long>(st.proposals),
                     static_cast<unsigned long long>(st.commits));
        return false;
    }

private:
    void run() {
        for (std::uint64_t i = 0; !stop_; ++i) {
            std::string data("w");
            data.append(std::to_string(i));
            auto answer = node_.propose(data);
            // Never unanswered for good (that is a bug the test reports, see
            // advance()), but stop() must not hang on one: give up on it.
            while (answer.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready)
                if (stop_) return;
            ProposeResult r = answer.get();
            if (!r.status.ok()) continue;  // not acknowledged: no promise made
            std::lock_guard lock(mu_);
            acked_[r.index] = data;
        }
    }

    Node& node_;
    mutable std::mutex mu_;
    std::map<std::uint64_t, std::string> acked_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace

TEST_CASE("1 -> 3 -> 1 voters with writes flowing: nothing lost or doubled, ticker follows") {
    TestCluster c(1, 2);  // node 1 founds alone; 2 and 3 join later
    // Generous election timeouts: node 1 must keep leading while the
    // machine is busy (the test drives membership through it).
    c.heartbeat_ms = 50;
    c.election_min_ms = 1000;
    Node& n1 = c.start(1);
    Writer writer(n1);

    // Alone: single mode, and not one timer wakeup across many writes; the
    // applied entries are not kept in memory (raft::Options::
    // forget_stored_everywhere), so the members joining below need a
    // snapshot, which node 1 takes when they ask.
    REQUIRE(writer.advance(200));
    NodeStatus st = n1.status();
    CHECK(st.mode == Mode::single);
    CHECK(st.timer_wakeups == 0);
    CHECK(st.first_index > 100);
    CHECK(st.snapshot_index == 0);

    // Grow to three voters, online: each joins as a learner, catches up,
    // then is promoted (so the quorum never waits on an empty log).
    for (NodeId id : {2, 3}) {
        c.start(id, /*join=*/true);
        MemberSpec learner = c.spec(id);
        learner.voter = false;
        Status s = n1.add_member(learner).get();
        INFO(s.to_string());
        REQUIRE(s.ok());
        const std::uint64_t target = n1.status().commit_index;
        REQUIRE(eventually([&] { return c.node(id).status().applied_index >= target; }));
        CHECK(c.node(id).status().snapshot_index > 0);  // brought up by a snapshot
        s = n1.promote_member(id).get();
        INFO(s.to_string());
        REQUIRE(s.ok());
    }
    REQUIRE(eventually([&] { return n1.status().mode == Mode::cluster; }));
    REQUIRE(eventually([&] { return n1.status().timer_wakeups > 0; }));
    REQUIRE(writer.advance(200));
    CHECK(n1.status().members.size() == 3);
    {
        auto acked = writer.acked();
        REQUIRE(eventually([&] {
            for (NodeId id : {2, 3}) {
                auto applied = c.sm(id).applied();
                for (const auto& [index, data] : acked)
                    if (applied.count(index) == 0 || applied.at(index) != data) return false;
            }
            return true;
        }));
    }

    // Shrink back to one voter: the ticker is disarmed.
    REQUIRE(n1.remove_member(3).get().ok());
    REQUIRE(n1.remove_member(2).get().ok());
    c.stop(3);
    c.stop(2);
    REQUIRE(eventually([&] { return n1.status().mode == Mode::single; }));
    const std::uint64_t wakeups = n1.status().timer_wakeups;
    const std::uint64_t first_before = n1.status().first_index;
    REQUIRE(writer.advance(200));
    CHECK(n1.status().timer_wakeups == wakeups);
    CHECK(n1.status().members.size() == 1);
    CHECK(n1.status().first_index > first_before + 100);  // alone again: applied entries go

    writer.stop();
    auto acked = writer.acked();
    REQUIRE(n1.read_index(true).get().status.ok());
    auto applied = c.sm(1).applied();
    for (const auto& [index, data] : acked) {
        INFO("index " << index);
        REQUIRE(applied.count(index) == 1);
        REQUIRE(applied.at(index) == data);
    }
    CHECK(c.sm(1).duplicate_applies() == 0);
    CHECK(c.sm(2).duplicate_applies() == 0);
    CHECK(c.sm(3).duplicate_applies() == 0);
}
