// CRC-32C: known vectors, hardware == portable, chaining by extension.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "keel/crc32c.hpp"

using namespace keel;

TEST_CASE("crc32c matches the standard check value") {
    const std::string s = "123456789";
    REQUIRE(crc32c_extend_portable(0, s.data(), s.size()) == 0xE3069283u);
    if (crc32c_hardware_available())
        REQUIRE(crc32c_extend_hardware(0, s.data(), s.size()) == 0xE3069283u);
    REQUIRE(crc32c(s.data(), s.size()) == 0xE3069283u);
}

TEST_CASE("crc32c hardware and portable paths agree on every length and alignment") {
    if (!crc32c_hardware_available()) return;
    std::mt19937_64 rng(42);
    std::string data(4096 + 16, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    for (std::size_t start = 0; start < 8; ++start) {
        for (std::size_t len = 0; len < 300; ++len) {
            const std::uint32_t seed = static_cast<std::uint32_t>(rng());
            REQUIRE(crc32c_extend_hardware(seed, data.data() + start, len) ==
                    crc32c_extend_portable(seed, data.data() + start, len));
        }
    }
    REQUIRE(crc32c_extend_hardware(7, data.data(), 4096) ==
            crc32c_extend_portable(7, data.data(), 4096));
}

TEST_CASE("crc32c_extend continues a finished checksum") {
    const std::string a = "hello, ", b = "write-ahead log";
    const std::string ab = a + b;
    REQUIRE(crc32c_extend(crc32c(a.data(), a.size()), b.data(), b.size()) ==
            crc32c(ab.data(), ab.size()));
    REQUIRE(crc32c_extend_portable(crc32c(a.data(), a.size()), b.data(), b.size()) ==
            crc32c(ab.data(), ab.size()));
}
