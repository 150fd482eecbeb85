// transport/cluster_id.hpp — the random 128-bit identity a cluster is born
// with.  Every member keeps it in its data dir and sends it in the hello of
// each connection; a hello with another cluster's id is refused, so two
// clusters sharing hosts (and even a CA) never exchange a message.
//
// Standard library only (the codec uses it).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "keel/status.hpp"

namespace keel::transport {

struct ClusterId {
    static constexpr std::size_t kBytes = 16;
    static constexpr std::size_t kHexDigits = 2 * kBytes;

    std::array<std::uint8_t, kBytes> bytes{};

    // All zero: not known (yet).  A created id is never all zero.
    bool unset() const;
    // kHexDigits lowercase hex digits; "" when unset.
    std::string hex() const;
    // Exactly kHexDigits hex digits (either case), not all zero;
    // invalid_argument otherwise.
    static Result<ClusterId> parse_hex(std::string_view text);
    // A new id from the kernel's random source (getrandom); io_error if
    // it cannot be read.
    static Result<ClusterId> random();

    friend bool operator==(const ClusterId&, const ClusterId&) = default;
};

}  // namespace keel::transport
