// InlinePolicy's gathering rule: proposals that proposal callbacks submit
// wait for the end of the callbacks' batch; in single-node mode at most
// kDeferredProposalsChunk of them, in cluster mode all of them (each chunk
// there would be one more append to every follower).
#include <catch2/catch.hpp>

#include "runtime/inline_policy.hpp"

using keel::runtime::InlinePolicy;
using keel::runtime::kDeferredProposalsChunk;

TEST_CASE("outside proposal callbacks nothing is gathered", "[inline_policy]") {
    InlinePolicy policy(true);
    CHECK_FALSE(policy.gathers(1));
    policy.set_cluster_mode(true);
    CHECK_FALSE(policy.gathers(1));
}

TEST_CASE("single-node mode gathers proposals from callbacks in chunks", "[inline_policy]") {
    InlinePolicy policy(true);
    policy.begin_callbacks();
    CHECK(policy.gathers(1));
    CHECK(policy.gathers(kDeferredProposalsChunk - 1));
    CHECK_FALSE(policy.gathers(kDeferredProposalsChunk));  // a chunk goes to the core
    policy.end_callbacks();
    CHECK_FALSE(policy.gathers(1));
}

TEST_CASE("cluster mode gathers a whole batch of callbacks' proposals", "[inline_policy]") {
    InlinePolicy policy(true);
    policy.set_cluster_mode(true);
    policy.begin_callbacks();
    CHECK(policy.gathers(kDeferredProposalsChunk));
    CHECK(policy.gathers(4 * kDeferredProposalsChunk));
    policy.end_callbacks();
    CHECK_FALSE(policy.gathers(kDeferredProposalsChunk));
}
