// tests/runtime/peer_directory_test.cpp — where a replica sends to each peer
// (runtime/peer_directory.hpp): the configuration first, addresses from
// hellos for the ids it does not place, the newest kMaxLearnedPeerAddresses.
#include <catch2/catch.hpp>

#include "runtime/peer_directory.hpp"

using keel::runtime::kMaxLearnedPeerAddresses;
using keel::runtime::PeerDirectory;

TEST_CASE("a hello places an id the configuration does not, never one it does") {
    PeerDirectory d(2);
    d.set_configured({{1, "h1:7"}, {2, "self:7"}});
    CHECK(d.addresses() == std::map<std::uint64_t, std::string>{{1, "h1:7"}});
    CHECK_FALSE(d.learn(1, "elsewhere:7"));  // the configuration's wins
    CHECK_FALSE(d.learn(2, "elsewhere:7"));  // never ourselves
    CHECK_FALSE(d.learn(3, ""));
    CHECK(d.learn(3, "h3:7"));
    CHECK_FALSE(d.learn(3, "h3:7"));  // said again: nothing changes
    CHECK(d.learn(3, "h3:8"));        // moved
    CHECK(d.addresses() == std::map<std::uint64_t, std::string>{{1, "h1:7"}, {3, "h3:8"}});
    // Once the configuration places 3, what it says holds, for good.
    d.set_configured({{1, "h1:7"}, {3, "h3:9"}});
    CHECK(d.learned_count() == 0);
    CHECK_FALSE(d.learn(3, "h3:8"));
    CHECK(d.addresses() == std::map<std::uint64_t, std::string>{{1, "h1:7"}, {3, "h3:9"}});
}

TEST_CASE("at kMaxLearnedPeerAddresses the address said longest ago goes") {
    PeerDirectory d(1);
    for (std::uint64_t id = 100; id < 100 + kMaxLearnedPeerAddresses; ++id)
        REQUIRE(d.learn(id, "h:" + std::to_string(id)));
    CHECK(d.learned_count() == kMaxLearnedPeerAddresses);
    // 100 says hello again: 101 is now the oldest.
    CHECK_FALSE(d.learn(100, "h:100"));
    CHECK(d.learn(7, "h:7"));
    CHECK(d.learned_count() == kMaxLearnedPeerAddresses);
    const auto all = d.addresses();
    CHECK(all.count(100) == 1);
    CHECK(all.count(101) == 0);
    CHECK(all.count(7) == 1);
    // No configuration: the directory is the learned addresses alone.
    CHECK(all.size() == kMaxLearnedPeerAddresses);
}
