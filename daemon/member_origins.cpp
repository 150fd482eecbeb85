#include "member_origins.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "member_spec.hpp"

namespace keel::daemon {

std::optional<std::string> browser_origin(std::string_view scheme, std::string_view http_address) {
    if (scheme != "http" && scheme != "https") return std::nullopt;
    Result<HostPort> parsed = parse_host_port(http_address, false);
    if (!parsed.ok()) return std::nullopt;
    std::string host = parsed->host;
    std::transform(host.begin(), host.end(), host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (host.find(':') != std::string::npos) {
        in6_addr v6{};
        char text[INET6_ADDRSTRLEN] = {};
        if (::inet_pton(AF_INET6, host.c_str(), &v6) != 1 ||
            ::inet_ntop(AF_INET6, &v6, text, sizeof text) == nullptr) {
            return std::nullopt;
        }
        std::string bracketed(1, '[');
        bracketed.append(text);
        bracketed.push_back(']');
        host = std::move(bracketed);
    }
    const std::uint16_t default_port = scheme == "https" ? 443 : 80;
    std::string origin(scheme);
    origin.append("://").append(host);
    if (parsed->port != default_port) origin.append(":").append(std::to_string(parsed->port));
    return origin;
}

std::vector<std::string> member_origins(const NodeStatus& status, std::string_view scheme) {
    std::vector<std::string> origins;
    for (const MemberStatus& member : status.members) {
        std::optional<std::string> origin = browser_origin(scheme, member.spec.metadata);
        if (origin && std::find(origins.begin(), origins.end(), *origin) == origins.end()) {
            origins.push_back(std::move(*origin));
        }
    }
    return origins;
}

}  // namespace keel::daemon
