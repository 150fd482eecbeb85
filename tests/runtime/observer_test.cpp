// The observer (keel/observer.hpp): events in order on the event thread,
// and a refusal never delivered before the role change that explains it.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "../common/thread_name.hpp"
#include "cluster_support.hpp"

using namespace keel;
using namespace keel::test;

namespace {

std::string members_string(const std::vector<MemberSpec>& members) {
    std::string out;
    for (const MemberSpec& m : members) {
        if (!out.empty()) out += ",";
        out += std::to_string(m.id) + (m.voter ? "" : "L");
    }
    return out;
}

// Records every event as a line ("role:leader@3"), checking that each runs
// on the event thread and never overlaps another.
class RecordingObserver : public Observer {
public:
    void on_leader_changed(NodeId leader, std::uint64_t term) override {
        record("leader:" + std::to_string(leader), term);
    }
    void on_role_changed(Role role, std::uint64_t term) override {
        record(std::string("role:") + role_name(role), term);
    }
    void on_membership_changed(const std::vector<MemberSpec>& members) override {
        record("members:" + members_string(members), 0);
    }
    void on_snapshot(std::uint64_t index) override { record("snapshot", index); }
    void on_failed(const Status& why) override { record("failed:" + why.to_string(), 0); }

    // Lines starting with `prefix`, without their "@n".
    std::vector<std::string> lines(const std::string& prefix) const {
        std::lock_guard lock(mu_);
        std::vector<std::string> out;
        for (const auto& [line, n] : lines_)
            if (line.rfind(prefix, 0) == 0) out.push_back(line);
        return out;
    }
    std::vector<std::pair<std::string, std::uint64_t>> all() const {
        std::lock_guard lock(mu_);
        return lines_;
    }
    bool wrong_thread() const { return wrong_thread_.load(); }
    bool overlapped() const { return overlapped_.load(); }

private:
    void record(std::string line, std::uint64_t n) {
        if (inside_.exchange(true)) overlapped_ = true;
        if (keel::test::thread_name() != "keel-events") wrong_thread_ = true;
        {
            std::lock_guard lock(mu_);
            lines_.emplace_back(std::move(line), n);
        }
        inside_ = false;
        ProgressSignal::instance().notify();
    }

    mutable std::mutex mu_;
    std::vector<std::pair<std::string, std::uint64_t>> lines_;
    std::atomic<bool> inside_{false};
    std::atomic<bool> overlapped_{false};
    std::atomic<bool> wrong_thread_{false};
};

bool has_line(const RecordingObserver& o, const std::string& line) {
    for (const auto& l : o.lines(line))
        if (l == line) return true;
    return false;
}

}  // namespace

TEST_CASE("an observer sees leader, role and membership changes in order, 1 -> 3 -> 1") {
    TestCluster c(1, 2);
    c.heartbeat_ms = 50;
    c.election_min_ms = 1000;  // no election but those the test asks for
    auto observer = std::make_shared<RecordingObserver>();
    c.observers[1] = observer;
    Node& n1 = c.start(1);
    REQUIRE(eventually([&] { return has_line(*observer, "role:leader"); }));

    for (NodeId id : {2, 3}) {
        c.start(id, /*join=*/true);
        MemberSpec learner = c.spec(id);
        learner.voter = false;
        REQUIRE(n1.add_member(learner).get().ok());
        REQUIRE(n1.promote_member(id).get().ok());
    }
    c.propose("x");

    // An election: leadership to node 2, then back.
    REQUIRE(n1.transfer_leadership(2).get().ok());
    REQUIRE(eventually([&] { return has_line(*observer, "leader:2"); }));
    REQUIRE(eventually([&] { return c.node(2).transfer_leadership(1).get().ok(); }));
    REQUIRE(eventually([&] { return n1.status().role == Role::leader; }));

    // Refused (busy) until node 1 has committed an entry of its new term.
    REQUIRE(eventually([&] { return n1.remove_member(3).get().ok(); }));
    REQUIRE(n1.remove_member(2).get().ok());
    REQUIRE(eventually([&] {
        return has_line(*observer, "members:1") && observer->lines("members:").size() == 7;
    }));
    c.stop(3);
    c.stop(2);

    CHECK(observer->lines("members:") ==
          std::vector<std::string>{"members:1", "members:1,2L", "members:1,2", "members:1,2,3L",
                                   "members:1,2,3", "members:1,2", "members:1"});
    CHECK(observer->lines("role:") == std::vector<std::string>{"role:leader", "role:follower",
                                                               "role:candidate", "role:leader"});
    CHECK(observer->lines("leader:") ==
          std::vector<std::string>{"leader:1", "leader:0", "leader:2", "leader:0", "leader:1"});
    // The first event is the configuration the node opened with; terms
    // never go back; a leader is announced before its role.
    const auto all = observer->all();
    REQUIRE(!all.empty());
    CHECK(all.front().first == "members:1");
    std::uint64_t term = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
        const auto& [line, n] = all[i];
        // Membership lines carry no number, snapshot lines an index.
        if (line.rfind("members:", 0) == 0 || line == "snapshot") continue;
        CHECK(n >= term);
        term = n;
        if (line == "role:leader") {
            REQUIRE(i > 0);
            CHECK(all[i - 1].first == "leader:1");
        }
    }
    CHECK_FALSE(observer->wrong_thread());
    CHECK_FALSE(observer->overlapped());
}

namespace {

// Holds on_role_changed away from leader until `release()` says so, and
// logs it; the test logs the proposals' outcomes beside it.
class BlockingObserver : public Observer {
public:
    void on_role_changed(Role role, std::uint64_t) override {
        if (role == Role::leader || !was_leader_) {
            was_leader_ = role == Role::leader;
            return;
        }
        was_leader_ = false;
        entered_ = true;
        ProgressSignal::instance().notify();
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return released_; });
        }
        append(std::string("role:") + role_name(role));
    }
    void append(std::string line) {
        std::lock_guard lock(log_mu_);
        log_.push_back(std::move(line));
    }
    std::vector<std::string> log() const {
        std::lock_guard lock(log_mu_);
        return log_;
    }
    bool entered() const { return entered_.load(); }
    void release() {
        {
            std::lock_guard lock(mu_);
            released_ = true;
        }
        cv_.notify_all();
    }

private:
    mutable std::mutex log_mu_;
    std::vector<std::string> log_;
    bool was_leader_ = false;  // event thread only
    std::atomic<bool> entered_{false};
    std::mutex mu_;
    std::condition_variable cv_;
    bool released_ = false;
};

}  // namespace

TEST_CASE("a proposal refused with not_leader reaches its caller after on_role_changed") {
    TestCluster c(3);
    std::map<NodeId, std::shared_ptr<BlockingObserver>> observers;
    for (NodeId id : {1, 2, 3}) {
        observers[id] = std::make_shared<BlockingObserver>();
        c.observers[id] = observers[id];
    }
    for (NodeId id : {1, 2, 3}) c.start(id);
    const NodeId old_leader = c.leader();
    REQUIRE(old_leader != 0);
    const NodeId target = old_leader == 1 ? 2 : 1;
    auto& replica = dynamic_cast<runtime::SingleGroupNode&>(c.node(old_leader)).group();

    // The old leader steps down; its observer is held inside on_role_changed.
    auto transferred = c.node(old_leader).transfer_leadership(target);
    REQUIRE(eventually([&] { return observers[old_leader]->entered(); }));

    // A proposal now is refused (not_leader).  Its answer must wait behind
    // the event being delivered: the observer is released once the answer
    // is queued behind it, or once it arrived (the order this test refuses).
    std::atomic<bool> answered{false};
    BlockingObserver& held = *observers[old_leader];
    c.node(old_leader).propose_async("late", [&](ProposeResult r) {
        held.append("proposal:" + std::string(error_code_name(r.status.code())));
        answered = true;
        ProgressSignal::instance().notify();
    });
    REQUIRE(eventually([&] { return answered.load() || replica.observer_queue_size() > 0; }));
    observers[old_leader]->release();
    REQUIRE(eventually([&] { return answered.load(); }));
    for (auto& [id, o] : observers) o->release();
    (void)transferred.get();

    const std::vector<std::string> log = held.log();
    REQUIRE(log.size() >= 2);
    CHECK(log[0] == "role:follower");
    CHECK(log[1] == "proposal:not_leader");
}
