// runtime/peer_security.hpp — when members may talk plain TCP.
//
// Plain TCP authenticates no one: any process that reaches the Raft port
// can speak for any member.  keel allows it only while every address
// involved is loopback (one host, one trust domain); otherwise it needs
// mutual TLS (NodeOptions::peer_tls) or the operator's explicit
// NodeOptions::peer_insecure.  None of it applies to an application's own
// transport (NodeOptions::transport), which secures its links itself.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "keel/options.hpp"
#include "keel/status.hpp"

namespace keel::runtime {

// Whether "host:port" ("[v6]:port" too) names this host's loopback:
// 127.0.0.0/8, ::1, ::ffff:127.x.x.x or "localhost".  Any other name is not
// (what it resolves to may change).
bool is_loopback_address(std::string_view address);

// Node::open's rule.  `member_addresses`: the Raft addresses of the
// configuration's members and of initial_members.  invalid_argument when
// peer_tls is half set or set together with peer_insecure, or when the
// transport would be plain TCP with this node's listen_address or a member
// address not loopback and peer_insecure unset.  `warning` is set when
// peer_insecure is what lets it start.
Status check_peer_security(const NodeOptions& options,
                           const std::vector<std::string>& member_addresses, std::string& warning);

// add_member's rule: a plain-TCP cluster without peer_insecure takes
// loopback members only.
Status check_new_member_address(const NodeOptions& options, const std::string& raft_address);

}  // namespace keel::runtime
