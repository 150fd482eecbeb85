// daemon/cors.hpp — cross-origin reads for the cluster's own status pages.
//
// The status page (/ui) that one member serves polls the other members'
// /v1/status, which a browser treats as cross-origin requests.  raftd answers
// CORS for one kind of origin only, a current member's (member_origins.hpp,
// under this node's scheme), and only for reading:
//   - a preflight (OPTIONS with Origin and Access-Control-Request-Method) from
//     a member origin is answered 204, before any token check (a browser
//     never sends credentials with one), with Access-Control-Allow-Origin
//     echoing that origin, Allow-Methods GET, Allow-Headers Authorization,
//     Max-Age and Vary: Origin, and nothing else;
//   - a GET from a member origin goes through every other check (token and
//     role) as usual, and its answer, a refusal included, carries
//     Access-Control-Allow-Origin echoing the origin, so the page can tell
//     a 401 from an unreachable member;
//   - any other method from a member origin is refused 403.
// The request guard (request_guard.hpp) applies this; other origins are
// refused there (403) unless given with --http-allowed-origin, and no answer
// to them carries an Access-Control-Allow-* header.  Every answer carries
// Vary: Origin.  Why CORS rather than one node's view only:
// docs/decisions/0002-status-page-cors.md.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http_types.hpp"

namespace keel::daemon {

// How long a browser may reuse a preflight's answer.  A member removed
// meanwhile loses its reads at once all the same: every GET is checked.
inline constexpr int kPreflightMaxAgeSeconds = 600;

// An Origin header as compared: trimmed, lower case, no trailing '/'.
std::string normal_origin(std::string_view origin);

class CorsPolicy {
public:
    // `member_origins` returns the current members' browser origins; it is
    // called for each request that carries an Origin, from any HTTP thread.
    explicit CorsPolicy(std::function<std::vector<std::string>()> member_origins)
        : member_origins_(std::move(member_origins)) {}

    // The member origin `origin` (an Origin header) names, or nullopt.
    // Thread-safe.
    std::optional<std::string> member_origin(std::string_view origin) const;

    // OPTIONS with an Origin and an Access-Control-Request-Method.
    static bool is_preflight(const HttpRequest& head);
    // The 204 answer to a preflight from `member_origin`.
    static HttpResponse preflight_response(const std::string& member_origin);
    // Adds Vary: Origin, and Access-Control-Allow-Origin when the request
    // came from a member origin (`member_origin` set).
    static void add_headers(HttpResponse& response,
                            const std::optional<std::string>& member_origin);

private:
    std::function<std::vector<std::string>()> member_origins_;
};

// `inner`, whose every answer gets CorsPolicy::add_headers for the request's
// Origin.  `cors` must not be null.
HttpHandler with_cors(std::shared_ptr<const CorsPolicy> cors, HttpHandler inner);

}  // namespace keel::daemon
