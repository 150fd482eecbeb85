// daemon/member_origins.hpp — the browser origins of the cluster's members:
// where each member's status page (/ui) is served from, as a browser names it
// in an Origin header.  They are what the status page may connect to (its
// Content-Security-Policy) and the only origins raftd answers cross-origin
// reads for (cors.hpp).  A member's HTTP address comes from the replicated
// membership, which only an admin token can change.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status_report.hpp"

namespace keel::daemon {

// "SCHEME://HOST[:PORT]" for a member's HTTP address ("host:port",
// "[v6]:port") as browsers serialise it: host in lower case, an IPv6 address
// bracketed in its canonical form, the port left out when it is the scheme's
// default (80 for http, 443 for https).  nullopt when `http_address` is not a
// valid host:port or `scheme` is neither "http" nor "https".
std::optional<std::string> browser_origin(std::string_view scheme, std::string_view http_address);

// The browser origins of every member in `status` (its own included) under
// `scheme`, in member order, without duplicates; members whose address is not
// valid are left out.
std::vector<std::string> member_origins(const NodeStatus& status, std::string_view scheme);

}  // namespace keel::daemon
