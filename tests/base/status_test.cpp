#include <string>

#include <catch2/catch.hpp>

#include "keel/status.hpp"

using keel::ErrorCode;
using keel::Result;
using keel::Status;

TEST_CASE("a default Status is ok and prints as ok", "[base]") {
    Status s;
    CHECK(s.ok());
    CHECK(s.code() == ErrorCode::ok);
    CHECK(s.to_string() == "ok");
}

TEST_CASE("an error Status carries its code and message", "[base]") {
    Status s(ErrorCode::corruption, "bad CRC at offset 64");
    CHECK_FALSE(s.ok());
    CHECK(s.to_string() == "corruption: bad CRC at offset 64");
}

TEST_CASE("a Result holds either a value or an error", "[base]") {
    Result<int> good(42);
    REQUIRE(good.ok());
    CHECK(*good == 42);
    CHECK(good.status().ok());

    Result<std::string> bad(Status(ErrorCode::not_found, "no such segment"));
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().code() == ErrorCode::not_found);
}
