#include <catch2/catch.hpp>

#include "member_spec.hpp"

using namespace keel::daemon;

TEST_CASE("a member spec is ID,RAFT_HOST:PORT,HTTP_HOST:PORT", "[daemon][member_spec]") {
    auto spec = parse_member_spec("2,127.0.0.1:7082,localhost:8082");
    REQUIRE(spec.ok());
    CHECK(spec->id == 2);
    CHECK(spec->raft_address == "127.0.0.1:7082");
    CHECK(spec->metadata == "localhost:8082");
    CHECK(spec->voter);
    auto v6 = parse_member_spec("3,[::1]:7083,[::1]:8083");
    REQUIRE(v6.ok());
    CHECK(v6->raft_address == "[::1]:7083");
}

TEST_CASE("invalid member specs are refused with a reason", "[daemon][member_spec]") {
    for (const char* bad :
         {"", "1", "1,a:1", "1,a:1,b:2,c", "0,a:1,b:2", "-1,a:1,b:2", "x,a:1,b:2", "1,a,b:2",
          "1,a:0,b:2", "1,a:65536,b:2", "1,:1,b:2", "1,a:1,b:", "1,a b:1,b:2", "1,[::1:1,b:2",
          "1,a:1x,b:2", "99999999999999999999,a:1,b:2", " 1,a:1,b:2", "1,a:+1,b:2"}) {
        INFO(bad);
        auto spec = parse_member_spec(bad);
        REQUIRE_FALSE(spec.ok());
        CHECK(spec.status().code() == keel::ErrorCode::invalid_argument);
    }
}

TEST_CASE("listen addresses may ask for port 0", "[daemon][member_spec]") {
    CHECK(parse_host_port("127.0.0.1:0", true).ok());
    CHECK_FALSE(parse_host_port("127.0.0.1:0", false).ok());
    CHECK(parse_host_port("h:65535", false)->port == 65535);
}
