// transport/cluster_id.cpp — hex form and creation of a ClusterId.
#include "transport/cluster_id.hpp"

#include <sys/random.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

namespace keel::transport {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

bool ClusterId::unset() const {
    return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

std::string ClusterId::hex() const {
    if (unset()) return "";
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(kHexDigits);
    for (std::uint8_t b : bytes) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 0xf]);
    }
    return out;
}

Result<ClusterId> ClusterId::parse_hex(std::string_view text) {
    if (text.size() != kHexDigits)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("a cluster id is {} hex digits, got {} characters", kHexDigits,
                                  text.size()));
    ClusterId id;
    for (std::size_t i = 0; i < kBytes; ++i) {
        const int high = hex_value(text[2 * i]);
        const int low = hex_value(text[2 * i + 1]);
        if (high < 0 || low < 0)
            return Status(ErrorCode::invalid_argument, "a cluster id is hex digits only");
        id.bytes[i] = static_cast<std::uint8_t>(high * 16 + low);
    }
    if (id.unset()) return Status(ErrorCode::invalid_argument, "a cluster id is never all zero");
    return id;
}

Result<ClusterId> ClusterId::random() {
    ClusterId id;
    // A 16-byte getrandom never returns short once the pool is initialised;
    // it blocks until then (early boot only).  Retried on EINTR.
    while (id.unset()) {
        ssize_t n = ::getrandom(id.bytes.data(), id.bytes.size(), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return Status(ErrorCode::io_error,
                          std::string("getrandom for a cluster id: ") + std::strerror(errno));
        if (n != static_cast<ssize_t>(id.bytes.size()))
            return Status(ErrorCode::io_error, "getrandom for a cluster id returned short");
    }
    return id;
}

}  // namespace keel::transport
