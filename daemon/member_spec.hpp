// daemon/member_spec.hpp — parsing and validating the addresses and member
// specs raftd takes from flags and from POST /v1/members.
//
//   --member ID,RAFT_HOST:PORT,HTTP_HOST:PORT      e.g. 2,127.0.0.1:7082,127.0.0.1:8082
//
// The HTTP address travels in keel::MemberSpec::metadata (opaque to keel,
// replicated with the membership), which is how any node can redirect a client
// to the leader's HTTP address.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "keel/options.hpp"
#include "keel/status.hpp"

namespace keel::daemon {

inline constexpr std::size_t kMaxHostBytes = 253;  // a DNS name's limit

struct HostPort {
    std::string host;  // without brackets for IPv6
    std::uint16_t port = 0;

    std::string to_string() const;  // "host:port", "[v6]:port"
};

// "host:port" or "[v6addr]:port".  allow_port_zero for listen addresses
// ("any free port"); a member's advertised address needs a real port.
Result<HostPort> parse_host_port(std::string_view text, bool allow_port_zero);

// Whether a listen host is loopback: 127.0.0.0/8, ::1 or "localhost".  Any
// other name counts as not loopback, whatever it resolves to.
bool is_loopback_host(std::string_view host);

// A decimal NodeId > 0 with no sign, spaces or overflow.
Result<NodeId> parse_node_id(std::string_view text);

// "ID,RAFT_HOST:PORT,HTTP_HOST:PORT" -> MemberSpec (voter; metadata = HTTP address).
Result<MemberSpec> parse_member_spec(std::string_view text);

}  // namespace keel::daemon
