// tests/common/test_seed.hpp — the seed of a randomised test: KEEL_SEED when
// set (to re-run one seed), else the test's own.  Print it (INFO) so that a
// failure says how to replay it.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>

namespace keel::test {

// KEEL_SEED as a number, or none when it is unset or empty.
inline std::optional<std::uint64_t> seed_from_env() {
    const char* env = std::getenv("KEEL_SEED");
    if (env == nullptr || *env == '\0') return std::nullopt;
    return std::strtoull(env, nullptr, 10);
}

}  // namespace keel::test
