// ProposalBatcher: an HTTP thread's proposals reach keel together, after the
// handlers ready on that thread have run; elsewhere each goes at once.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <vector>

#include "fake_node.hpp"
#include "kv_state_machine.hpp"
#include "proposal_batcher.hpp"

using namespace keel;
using namespace keel::daemon;

namespace {

struct Fixture {
    std::shared_ptr<KvStateMachine> kv = std::make_shared<KvStateMachine>();
    testing::FakeNode node{kv};
    // What the batcher queued "after the ready handlers".
    std::vector<std::function<void()>> deferred;
    bool on_http_thread = true;
    std::shared_ptr<ProposalBatcher> batcher =
        std::make_shared<ProposalBatcher>(node, [this](std::function<void()> work) {
            if (!on_http_thread) return false;
            deferred.push_back(std::move(work));
            return true;
        });
    std::vector<ProposeResult> results;

    void propose(const std::string& data) {
        batcher->propose(data, [this](ProposeResult r) { results.push_back(std::move(r)); });
    }
    void run_deferred() {
        auto work = std::move(deferred);
        deferred.clear();
        for (auto& w : work) w();
    }
};

}  // namespace

TEST_CASE("an HTTP thread's proposals go to keel together once its ready handlers ran") {
    Fixture f;
    f.propose("a");
    f.propose("b");
    f.propose("c");
    CHECK(f.results.empty());
    REQUIRE(f.deferred.size() == 1);  // one hand-off for the three
    f.run_deferred();
    CHECK(f.node.batches == std::vector<std::size_t>{3});
    REQUIRE(f.results.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(f.results[i].status.ok());
        CHECK(f.results[i].index == i + 1);  // in the order proposed
    }
    // The next wakeup starts a new batch; a lone proposal goes as itself.
    f.propose("d");
    REQUIRE(f.deferred.size() == 1);
    f.run_deferred();
    CHECK(f.node.batches == std::vector<std::size_t>{3});
    REQUIRE(f.results.size() == 4);
    CHECK(f.results[3].index == 4);
}

TEST_CASE("off an HTTP thread, each proposal goes to keel at once") {
    Fixture f;
    f.on_http_thread = false;
    f.propose("a");
    REQUIRE(f.results.size() == 1);
    CHECK(f.results[0].status.ok());
    CHECK(f.deferred.empty());
    CHECK(f.node.batches.empty());
}

TEST_CASE("a refused proposal in a batch fails alone") {
    Fixture f;
    f.propose("a");
    f.propose("b");
    f.node.fail_next = Status(ErrorCode::busy, "too many pending proposals");
    f.run_deferred();
    REQUIRE(f.results.size() == 2);
    CHECK(f.results[0].status.code() == ErrorCode::busy);
    CHECK(f.results[1].status.ok());
}

TEST_CASE("with several groups, a wakeup's proposals go to keel as one batch per group") {
    auto kv1 = std::make_shared<KvStateMachine>(), kv2 = std::make_shared<KvStateMachine>(),
         kv3 = std::make_shared<KvStateMachine>();
    testing::FakeNode g1{kv1}, g2{kv2}, g3{kv3};
    std::vector<std::function<void()>> deferred;
    auto batcher = std::make_shared<ProposalBatcher>(std::vector<Node*>{&g1, &g2, &g3},
                                                     [&deferred](std::function<void()> work) {
                                                         deferred.push_back(std::move(work));
                                                         return true;
                                                     });
    std::vector<std::pair<std::size_t, std::uint64_t>> done;  // (group, index)
    auto propose = [&](std::size_t group) {
        batcher->propose(group, "x", [&done, group](ProposeResult r) {
            REQUIRE(r.status.ok());
            done.emplace_back(group, r.index);
        });
    };
    propose(2);
    propose(0);
    propose(2);
    propose(2);
    REQUIRE(deferred.size() == 1);  // one hand-off for every group
    CHECK(done.empty());
    deferred[0]();
    CHECK(g3.batches == std::vector<std::size_t>{3});
    CHECK(g1.batches.empty());  // a lone proposal goes as itself
    CHECK(g1.last_index == 1);
    CHECK(g2.last_index == 0);
    // Groups in first-use order, each batch in its order.
    using P = std::pair<std::size_t, std::uint64_t>;
    CHECK(done == std::vector<P>{{2, 1}, {2, 2}, {2, 3}, {0, 1}});
}
