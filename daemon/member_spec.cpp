#include "member_spec.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <charconv>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace keel::daemon {
namespace {

Status invalid(std::string what) {
    return Status(ErrorCode::invalid_argument, std::move(what));
}

bool valid_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

}  // namespace

std::string HostPort::to_string() const {
    if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
    return fmt::format("{}:{}", host, port);
}

Result<HostPort> parse_host_port(std::string_view text, bool allow_port_zero) {
    HostPort out;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        std::size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return invalid("expected [ipv6]:port, got '" + std::string(text) + "'");
        }
        out.host.assign(text.substr(1, close - 1));
        for (char c : out.host) {
            if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) {
                return invalid("bad IPv6 address in '" + std::string(text) + "'");
            }
        }
        port_text = text.substr(close + 2);
    } else {
        std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return invalid("expected host:port, got '" + std::string(text) + "'");
        }
        out.host.assign(text.substr(0, colon));
        for (char c : out.host) {
            if (!valid_host_char(c)) return invalid("bad host in '" + std::string(text) + "'");
        }
        port_text = text.substr(colon + 1);
    }
    if (out.host.empty() || out.host.size() > kMaxHostBytes) {
        return invalid("empty or overlong host in '" + std::string(text) + "'");
    }
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
        port > 65535 || (port == 0 && !allow_port_zero)) {
        return invalid("bad port in '" + std::string(text) + "'");
    }
    out.port = static_cast<std::uint16_t>(port);
    return out;
}

bool is_loopback_host(std::string_view host) {
    std::string name(host);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "localhost") return true;
    in_addr v4{};
    if (::inet_pton(AF_INET, name.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    if (::inet_pton(AF_INET6, name.c_str(), &v6) == 1) {
        return std::memcmp(&v6, &in6addr_loopback, sizeof v6) == 0;
    }
    return false;
}

Result<NodeId> parse_node_id(std::string_view text) {
    NodeId id = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || id == 0) {
        return invalid("bad node id '" + std::string(text) + "' (a decimal integer > 0)");
    }
    return id;
}

Result<MemberSpec> parse_member_spec(std::string_view text) {
    std::vector<std::string_view> fields;
    while (true) {
        std::size_t comma = text.find(',');
        fields.push_back(text.substr(0, comma));
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
        if (fields.size() > 3) break;
    }
    if (fields.size() != 3) return invalid("a member is ID,RAFT_HOST:PORT,HTTP_HOST:PORT");
    Result<NodeId> id = parse_node_id(fields[0]);
    if (!id.ok()) return id.status();
    Result<HostPort> raft = parse_host_port(fields[1], false);
    if (!raft.ok()) return raft.status();
    Result<HostPort> http = parse_host_port(fields[2], false);
    if (!http.ok()) return http.status();
    MemberSpec spec;
    spec.id = *id;
    spec.raft_address = raft->to_string();
    spec.metadata = http->to_string();
    spec.voter = true;
    return spec;
}

}  // namespace keel::daemon
