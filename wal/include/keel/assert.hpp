// keel/assert.hpp — invariants that stay checked in every build.
//
// KEEL_ASSERT(cond, "why") aborts with file, line, the condition and the
// reason when `cond` is false.  Unlike assert() it is never compiled out:
// a consensus library that silently continues past a broken invariant can
// lose acknowledged data, so we prefer to stop (fail-stop).
//
// This is the one header every keel layer shares.  It depends on the
// standard library only, so the pure Raft core and the WAL may both use it.
//
// Rule (docs/style.md): KEEL_ASSERT guards our own invariants only; what
// comes from outside (peer bytes, HTTP, files on disk) is checked, refused
// with a Status and counted, never asserted.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace keel::detail {

[[noreturn]] inline void assertion_failed(const char* condition, const char* why,
                                          const char* file, int line) noexcept {
    std::fprintf(stderr, "keel: assertion failed at %s:%d: %s (%s)\n", file, line, why,
                 condition);
    std::fflush(stderr);
    std::abort();
}

}  // namespace keel::detail

#define KEEL_ASSERT(cond, why)                                                  \
    do {                                                                        \
        if (!(cond)) [[unlikely]]                                               \
            ::keel::detail::assertion_failed(#cond, (why), __FILE__, __LINE__); \
    } while (0)

// For states that must be impossible (an exhaustive switch fell through).
#define KEEL_UNREACHABLE(why) ::keel::detail::assertion_failed("unreachable", (why), __FILE__, __LINE__)
