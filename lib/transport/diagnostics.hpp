// transport/diagnostics.hpp — how the transport layer reports what happens:
// log levels for its (optional) log callbacks.  The library never logs by
// itself.
#pragma once

#include <cstdint>

namespace keel::transport {

// error: something an operator must fix (a peer refuses our certificate).
enum class LogLevel : std::uint8_t { debug = 1, info = 2, warning = 3, error = 4 };

}  // namespace keel::transport
