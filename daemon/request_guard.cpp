#include "request_guard.hpp"

#include <algorithm>
#include <cctype>

#include "errors.hpp"

namespace keel::daemon {
namespace {

// Client input is quoted in messages, cut to this length.
constexpr std::size_t kQuotedBytes = 100;

const char* const kLoopbackHostNames[] = {"localhost", "127.0.0.1", "[::1]"};

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

std::string quoted(std::string_view text) {
    std::string out;
    out.reserve(kQuotedBytes + 5);
    out.push_back('\'');
    out.append(text.substr(0, kQuotedBytes));
    if (text.size() > kQuotedBytes) out.append("...");
    out.push_back('\'');
    return out;
}

// The token of "Bearer TOKEN" (scheme case-insensitive), or nullopt.
std::optional<std::string_view> bearer_token(std::string_view authorization) {
    authorization = trim(authorization);
    constexpr std::string_view kScheme = "bearer";
    if (authorization.size() <= kScheme.size() ||
        lower(authorization.substr(0, kScheme.size())) != kScheme ||
        (authorization[kScheme.size()] != ' ' && authorization[kScheme.size()] != '\t')) {
        return std::nullopt;
    }
    std::string_view token = trim(authorization.substr(kScheme.size()));
    if (token.empty()) return std::nullopt;
    return token;
}

}  // namespace

std::string host_name_of(std::string_view host_header) {
    std::string_view host = trim(host_header);
    if (host.empty()) return "";
    std::string_view name;
    if (host.front() == '[') {
        std::size_t close = host.find(']');
        if (close == std::string_view::npos) return "";
        name = host.substr(0, close + 1);
        std::string_view rest = host.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return "";
    } else {
        std::size_t colon = host.find(':');
        if (colon != std::string_view::npos && host.find(':', colon + 1) != std::string_view::npos)
            return "";  // an IPv6 address must be bracketed
        name = host.substr(0, colon);
    }
    std::string out = lower(name);
    if (out.size() > 1 && out.back() == '.') out.pop_back();
    return out;
}

bool is_json_media_type(std::string_view content_type) {
    return lower(trim(content_type.substr(0, content_type.find(';')))) == "application/json";
}

RequestGuard::RequestGuard(GuardOptions options, std::shared_ptr<TokenStore> tokens,
                           const Router& router)
    : options_(std::move(options)), tokens_(std::move(tokens)), router_(router) {
    for (const char* name : kLoopbackHostNames) allowed_host_names_.emplace_back(name);
    for (const std::string& host : options_.allowed_hosts) {
        // A flag may carry a port; any port is allowed anyway.
        std::string name = host_name_of(host);
        allowed_host_names_.push_back(name.empty() ? lower(host) : name);
    }
    for (std::string& origin : options_.allowed_origins) origin = normal_origin(origin);
}

bool RequestGuard::host_allowed(std::string_view host_header) const {
    const std::string name = host_name_of(host_header);
    if (name.empty()) return false;
    return std::find(allowed_host_names_.begin(), allowed_host_names_.end(), name) !=
           allowed_host_names_.end();
}

bool RequestGuard::origin_allowed(std::string_view origin) const {
    const std::string name = normal_origin(origin);
    return std::find(options_.allowed_origins.begin(), options_.allowed_origins.end(), name) !=
           options_.allowed_origins.end();
}

HttpResponse RequestGuard::refuse(Reason reason, HttpResponse response,
                                  const std::optional<std::string>& member_origin) const {
    refused_[reason].fetch_add(1, std::memory_order_relaxed);
    if (options_.cors) CorsPolicy::add_headers(response, member_origin);
    return response;
}

std::optional<HttpResponse> RequestGuard::check(const HttpRequest& head,
                                                const ConnectionInfo& conn) const {
    // Set when the request comes from a current member's page (cors.hpp).
    std::optional<std::string> member;
    if (!head.origin.empty() && options_.cors) member = options_.cors->member_origin(head.origin);
    if (conn.loopback_listener && !host_allowed(head.host)) {
        return refuse(kHost,
                      error_response(403, "forbidden",
                                     "Host " + quoted(head.host) +
                                         " is not allowed on a loopback listener "
                                         "(see --http-allowed-host)"),
                      member);
    }
    if (!head.origin.empty() && !origin_allowed(head.origin)) {
        if (!member) {
            return refuse(kOrigin,
                          error_response(403, "forbidden",
                                         "Origin " + quoted(head.origin) +
                                             " is not allowed (see --http-allowed-origin)"),
                          member);
        }
        if (head.method != "GET" && !CorsPolicy::is_preflight(head)) {
            return refuse(kOrigin,
                          error_response(403, "forbidden",
                                         "a member's status page may only read (GET), not " +
                                             quoted(head.method)),
                          member);
        }
    }
    if (member && CorsPolicy::is_preflight(head)) return CorsPolicy::preflight_response(*member);
    const Access needed = router_.access(head.method, head.target);
    if (tokens_ && needed != Access::open) {
        std::optional<std::string_view> token = bearer_token(head.authorization);
        std::optional<Access> role;
        if (token) role = tokens_->current()->role_of(*token);
        if (!role) {
            HttpResponse response = error_response(
                401, "unauthorized",
                token ? "the bearer token is not valid" : "a bearer token is required");
            response.set_header("WWW-Authenticate",
                                token ? R"(Bearer realm="raftd", error="invalid_token")"
                                      : R"(Bearer realm="raftd")");
            return refuse(kUnauthorized, std::move(response), member);
        }
        if (*role < needed) {
            return refuse(kForbidden,
                          error_response(403, "forbidden",
                                         std::string("this token's role (") + access_name(*role) +
                                             ") does not allow " + head.method + " here (needs " +
                                             access_name(needed) + ")"),
                          member);
        }
    }
    if (head.has_body && !is_json_media_type(head.content_type)) {
        return refuse(kMediaType,
                      error_response(415, "unsupported_media_type",
                                     "a request body must be sent as Content-Type: "
                                     "application/json, not " +
                                         quoted(head.content_type)),
                      member);
    }
    return std::nullopt;
}

std::map<std::string, std::uint64_t> RequestGuard::refused() const {
    static const char* const kNames[kReasons] = {"host", "origin", "unauthorized", "forbidden",
                                                 "unsupported_media_type"};
    std::map<std::string, std::uint64_t> out;
    for (int i = 0; i < kReasons; ++i) out[kNames[i]] = refused_[i].load(std::memory_order_relaxed);
    return out;
}

}  // namespace keel::daemon
