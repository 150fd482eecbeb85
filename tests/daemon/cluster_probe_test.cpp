// raftd --join's probe of the cluster's group count: a member's /healthz
// body read (outside input: anything but the documented answer refused),
// and a member that cannot be reached.
#include <catch2/catch.hpp>

#include "cluster_probe.hpp"

using namespace keel;
using namespace keel::daemon;

TEST_CASE("a /healthz body names the group count, or none without groups", "[daemon][probe]") {
    Result<std::optional<std::size_t>> none = parse_health_groups(R"({"status":"ok"})");
    REQUIRE(none.ok());
    CHECK(!none->has_value());
    Result<std::optional<std::size_t>> six = parse_health_groups(R"({"status":"ok","groups":6})");
    REQUIRE(six.ok());
    CHECK(six->value() == 6);
}

TEST_CASE("a /healthz body that is not raftd's is refused", "[daemon][probe]") {
    for (const char* body : {"", "[]", "not json", R"({"groups":0})", R"({"groups":-3})",
                             R"({"groups":"6"})", R"({"groups":1.5})", R"({"groups":10001})"}) {
        INFO(body);
        Result<std::optional<std::size_t>> parsed = parse_health_groups(body);
        REQUIRE(!parsed.ok());
        CHECK(parsed.status().code() == ErrorCode::corruption);
    }
}

TEST_CASE("a member that cannot be reached is an io_error", "[daemon][probe]") {
    // Port 1 on loopback: nothing listens there for an unprivileged test.
    Result<std::optional<std::size_t>> probed =
        probe_group_count("127.0.0.1:1", std::chrono::milliseconds(2000));
    REQUIRE(!probed.ok());
    CHECK(probed.status().code() == ErrorCode::io_error);
    CHECK(!probe_group_count("no port", std::chrono::milliseconds(100)).ok());
}
