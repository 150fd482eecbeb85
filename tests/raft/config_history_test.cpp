// ConfigHistory's version (raft/config_history.hpp): it moves on every change
// to the history, so Core::has_actions compares the latest configuration with
// the one it reported only when it may differ, and a truncation back to an
// earlier configuration is still seen as a change.
#include <catch2/catch.hpp>

#include "raft/config_history.hpp"

namespace {

using keel::raft::ConfigHistory;
using keel::raft::Configuration;

Configuration members(std::initializer_list<keel::raft::NodeId> ids) {
    Configuration c;
    for (keel::raft::NodeId id : ids) c.members[id].voter = true;
    return c;
}

}  // namespace

TEST_CASE("the config history's version moves on every change and only then", "[raft][config]") {
    ConfigHistory h;
    auto v = h.version();
    CHECK(v != 0);  // a reporter that starts at 0 compares once

    h.reset(5, members({1, 2, 3}));
    CHECK(h.version() != v);
    v = h.version();
    (void)h.latest();
    (void)h.at(7);
    CHECK(h.version() == v);  // reads leave it

    h.add(8, members({1, 2, 3, 4}));
    CHECK(h.version() != v);
    v = h.version();

    CHECK_FALSE(h.truncate_from(9));  // nothing after 8: no change
    CHECK(h.version() == v);
    CHECK(h.truncate_from(8));  // back to {1, 2, 3}
    CHECK(h.version() != v);
    CHECK(h.latest() == members({1, 2, 3}));
    v = h.version();

    h.add(10, members({1, 2}));
    v = h.version();
    h.compact(4);  // nothing superseded by 4
    CHECK(h.version() == v);
    h.compact(10);
    CHECK(h.version() != v);
}
