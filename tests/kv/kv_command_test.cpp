#include <random>

#include <catch2/catch.hpp>

#include "keel/kv/kv_command.hpp"

using namespace keel::kv;

TEST_CASE("commands round-trip through the codec", "[kv][codec]") {
    std::vector<KvCommand> commands = {
        {KvOp::put, "k", "v", std::nullopt, std::nullopt},
        {KvOp::put, "", std::string(1000, '\0'), std::string("old"), std::nullopt},
        {KvOp::put, "k", "v", std::nullopt, std::uint64_t{0}},
        {KvOp::put, "k", "v", std::string(""), std::uint64_t{~0ull}},
        {KvOp::del, "gone", "", std::nullopt, std::uint64_t{7}},
    };
    for (const KvCommand& command : commands) {
        auto decoded = decode_command(encode_command(command));
        REQUIRE(decoded.ok());
        CHECK(*decoded == command);
    }
}

TEST_CASE("every truncation of a command is rejected, not over-read", "[kv][codec]") {
    std::string bytes =
        encode_command({KvOp::put, "key", "value", std::string("p"), std::uint64_t{9}});
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        CHECK_FALSE(decode_command(std::string_view(bytes).substr(0, n)).ok());
    }
    CHECK_FALSE(decode_command(bytes + "x").ok());
}

TEST_CASE("unknown versions, ops and flags are rejected", "[kv][codec]") {
    std::string bytes = encode_command({KvOp::put, "k", "v", std::nullopt, std::nullopt});
    std::string bad = bytes;
    bad[0] = 2;
    CHECK(decode_command(bad).status().code() == keel::ErrorCode::unsupported);
    bad = bytes;
    bad[1] = 9;
    CHECK_FALSE(decode_command(bad).ok());
    bad = bytes;
    bad[2] = 4;
    CHECK_FALSE(decode_command(bad).ok());
    // A length field claiming more than remains.
    bad = bytes;
    bad[3] = '\xff';
    CHECK_FALSE(decode_command(bad).ok());
}

TEST_CASE("random bytes never crash the decoders", "[kv][codec]") {
    std::mt19937 rng(42);
    for (int i = 0; i < 20000; ++i) {
        std::string bytes(rng() % 40, '\0');
        for (char& c : bytes) c = static_cast<char>(rng());
        if (!bytes.empty() && rng() % 2) bytes[0] = 1;
        (void)decode_command(bytes).ok();
        (void)decode_result(bytes).ok();
    }
}

TEST_CASE("results round-trip through the codec", "[kv][codec]") {
    std::vector<KvResult> results = {
        {KvOutcome::ok, 12, std::nullopt},
        {KvOutcome::compare_failed, 0, KvValue{"now", 5}},
        {KvOutcome::compare_failed, 0, std::nullopt},
        {KvOutcome::not_found, 0, std::nullopt},
    };
    for (const KvResult& result : results) {
        auto decoded = decode_result(encode_result(result));
        REQUIRE(decoded.ok());
        CHECK(*decoded == result);
    }
}
