// runtime/peer_security.cpp — see peer_security.hpp.
#include "runtime/peer_security.hpp"

#include <arpa/inet.h>

#include <fmt/format.h>
#include <cstring>

namespace keel::runtime {
namespace {

std::string_view host_of(std::string_view address) {
    const std::size_t colon = address.rfind(':');
    std::string_view host = colon == std::string_view::npos ? address : address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return host;
}

// keel's own TCP transport without TLS.  An application transport
// (NodeOptions::transport) secures its links itself (keel/transport.hpp).
bool plain_tcp(const NodeOptions& o) {
    return !o.transport && !o.peer_tls.enabled();
}

}  // namespace

bool is_loopback_address(std::string_view address) {
    const std::string host(host_of(address));
    if (host == "localhost") return true;
    in_addr v4{};
    if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
        return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
    }
    return false;
}

Status check_peer_security(const NodeOptions& o, const std::vector<std::string>& member_addresses,
                           std::string& warning) {
    if (o.transport) return Status::ok_status();  // peer_tls and the addresses are not ours
    const PeerTls& tls = o.peer_tls;
    if (tls.enabled() && (tls.cert_file.empty() || tls.key_file.empty() || tls.ca_file.empty()))
        return Status(ErrorCode::invalid_argument,
                      "peer_tls needs cert_file, key_file and ca_file together");
    if (tls.enabled() && o.peer_insecure)
        return Status(ErrorCode::invalid_argument, "peer_insecure contradicts peer_tls");
    if (!plain_tcp(o)) return Status::ok_status();
    std::string exposed;
    if (!o.listen_address.empty() && !is_loopback_address(o.listen_address))
        exposed = o.listen_address + " (this node)";
    for (const std::string& address : member_addresses)
        if (exposed.empty() && !address.empty() && !is_loopback_address(address)) exposed = address;
    if (exposed.empty()) return Status::ok_status();
    if (!o.peer_insecure)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("Raft address {} is not loopback: members need mutual TLS "
                                  "(peer_tls: raftd --peer-cert/--peer-key/--peer-ca), or "
                                  "peer_insecure (--peer-insecure) to accept plain TCP knowingly",
                                  exposed));
    warning = fmt::format(
        "members talk plain TCP although {} is not loopback (peer_insecure): anyone who reaches a "
        "Raft port can speak for any member",
        exposed);
    return Status::ok_status();
}

Status check_new_member_address(const NodeOptions& o, const std::string& raft_address) {
    if (!plain_tcp(o) || o.peer_insecure || is_loopback_address(raft_address))
        return Status::ok_status();
    return Status(
        ErrorCode::invalid_argument,
        fmt::format(
            "cannot add a member at {}: it is not loopback and this cluster talks plain TCP "
            "(restart its members with mutual TLS, or with peer_insecure / --peer-insecure)",
            raft_address));
}

}  // namespace keel::runtime
