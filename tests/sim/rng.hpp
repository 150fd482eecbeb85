// sim/rng.hpp — the simulator's only source of randomness.
//
// One seed drives a whole run.  Each concern (network, disk, clock, client,
// faults, each node's core) gets its own stream split off the seed, so that
// adding a draw in one concern does not reshuffle every other concern.  The
// generator is xoshiro256** seeded through splitmix64: fast, and identical on
// every platform (no std::uniform_*_distribution, whose output is
// implementation-defined).
#pragma once

#include <cstdint>

#include "keel/assert.hpp"

namespace keel::sim {

class Rng {
public:
    explicit Rng(std::uint64_t seed) {
        std::uint64_t x = seed;
        for (auto& s : s_) s = splitmix64(x);
    }

    // An independent stream for `concern` (any constant, e.g. a node id).
    Rng split(std::uint64_t concern) const {
        return Rng(s_[0] ^ splitmix_once(concern * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull));
    }

    std::uint64_t next() {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    // Uniform in [lo, hi] (inclusive).
    std::uint64_t range(std::uint64_t lo, std::uint64_t hi) {
        KEEL_ASSERT(lo <= hi, "empty range");
        const std::uint64_t span = hi - lo + 1;
        if (span == 0) return next();  // the full 64-bit range
        return lo + next() % span;     // the modulo bias is irrelevant here
    }
    // Uniform in [0, 1).
    double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    bool chance(double p) { return p > 0 && unit() < p; }
    // An index into a container of `size` elements.
    std::size_t pick(std::size_t size) {
        KEEL_ASSERT(size > 0, "pick from an empty set");
        return static_cast<std::size_t>(next() % size);
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix64(std::uint64_t& x) {
        std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    static std::uint64_t splitmix_once(std::uint64_t x) { return splitmix64(x); }

    std::uint64_t s_[4];
};

// FNV-1a style mixing for digests of entries, states and traces.
inline std::uint64_t hash_bytes(std::uint64_t h, const void* data, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) {
        h ^= p[i];
        h *= 0x100000001B3ull;
    }
    return h;
}
inline constexpr std::uint64_t kHashSeed = 0xCBF29CE484222325ull;
inline std::uint64_t hash_mix(std::uint64_t h, std::uint64_t v) {
    return hash_bytes(h, &v, sizeof v);
}

}  // namespace keel::sim
