// daemon/request_guard.hpp — what raftd checks on every request once its
// headers are read, before its body is (the HTTP server's gate), in order:
//   1. Host (DNS rebinding): while the listener is loopback, the Host must be
//      localhost, 127.0.0.1 or [::1] (any port) or one of --http-allowed-host;
//      else 403 forbidden.  A missing Host is refused too.
//   2. Origin (cross-site requests from a browser): a request that carries an
//      Origin must name one of --http-allowed-origin (none by default), or a
//      current member's origin (cors.hpp): that one only to read (GET), and
//      a CORS preflight from it is answered here, 204, with no token asked;
//      else 403 forbidden.  Requests without an Origin (curl, programs) pass.
//   3. Token (--auth-tokens): routes other than the open ones need
//      `Authorization: Bearer TOKEN`; none or an unknown one is 401
//      unauthorized with `WWW-Authenticate: Bearer`, one whose role is too
//      low is 403 forbidden.
//   4. Body type: a request with a body must say `Content-Type:
//      application/json` (HTML forms cannot); else 415 unsupported_media_type.
// Every refusal is counted by reason, and carries the CORS headers
// (cors.hpp: Access-Control-Allow-Origin for a member origin only).
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth_tokens.hpp"
#include "cors.hpp"
#include "http_types.hpp"
#include "router.hpp"

namespace keel::daemon {

struct GuardOptions {
    std::vector<std::string> allowed_origins;  // exact origins, e.g. "https://ops.example.com"
    std::vector<std::string> allowed_hosts;    // host names (any port), e.g. "raftd.internal"
    // Cross-origin reads by the members' status pages; null: none.
    std::shared_ptr<const CorsPolicy> cors{};
};

class RequestGuard {
public:
    // `tokens` null: no token is asked for (no --auth-tokens).  `router`
    // names the Access of each route; it must outlive the guard.
    RequestGuard(GuardOptions options, std::shared_ptr<TokenStore> tokens, const Router& router);

    // nullopt: let the request through; else the answer: one that refuses
    // it, or a member origin's preflight answered (204).
    std::optional<HttpResponse> check(const HttpRequest& head, const ConnectionInfo& conn) const;

    // Refusals since start, by reason: host, origin, unauthorized, forbidden,
    // unsupported_media_type.
    std::map<std::string, std::uint64_t> refused() const;

private:
    enum Reason { kHost, kOrigin, kUnauthorized, kForbidden, kMediaType, kReasons };
    HttpResponse refuse(Reason reason, HttpResponse response,
                        const std::optional<std::string>& member_origin) const;
    bool host_allowed(std::string_view host_header) const;
    bool origin_allowed(std::string_view origin) const;

    GuardOptions options_;
    std::vector<std::string> allowed_host_names_;  // lower case, without port
    std::shared_ptr<TokenStore> tokens_;
    const Router& router_;
    mutable std::array<std::atomic<std::uint64_t>, kReasons> refused_{};
};

// "example.com:8080" -> "example.com", "[::1]:80" -> "[::1]", lower case,
// one trailing dot dropped.  "" when malformed.
std::string host_name_of(std::string_view host_header);
// "application/json; charset=utf-8" -> true.
bool is_json_media_type(std::string_view content_type);

}  // namespace keel::daemon
