#include "cors.hpp"

#include <algorithm>
#include <cctype>

namespace keel::daemon {

std::string normal_origin(std::string_view origin) {
    while (!origin.empty() && (origin.front() == ' ' || origin.front() == '\t'))
        origin.remove_prefix(1);
    while (!origin.empty() && (origin.back() == ' ' || origin.back() == '\t'))
        origin.remove_suffix(1);
    std::string out(origin);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!out.empty() && out.back() == '/') out.pop_back();
    return out;
}

std::optional<std::string> CorsPolicy::member_origin(std::string_view origin) const {
    const std::string name = normal_origin(origin);
    if (name.empty() || !member_origins_) return std::nullopt;
    for (std::string& member : member_origins_()) {
        if (member == name) return std::move(member);
    }
    return std::nullopt;
}

bool CorsPolicy::is_preflight(const HttpRequest& head) {
    return head.method == "OPTIONS" && !head.origin.empty() &&
           !head.access_control_request_method.empty();
}

HttpResponse CorsPolicy::preflight_response(const std::string& member_origin) {
    HttpResponse response;
    response.status = 204;
    response.content_type.clear();
    response.set_header("Access-Control-Allow-Methods", "GET");
    response.set_header("Access-Control-Allow-Headers", "Authorization");
    response.set_header("Access-Control-Max-Age", std::to_string(kPreflightMaxAgeSeconds));
    add_headers(response, member_origin);
    return response;
}

void CorsPolicy::add_headers(HttpResponse& response,
                             const std::optional<std::string>& member_origin) {
    if (member_origin) response.set_header("Access-Control-Allow-Origin", *member_origin);
    response.set_header("Vary", "Origin");
}

HttpHandler with_cors(std::shared_ptr<const CorsPolicy> cors, HttpHandler inner) {
    return [cors = std::move(cors), inner = std::move(inner)](HttpRequest request,
                                                              Respond respond) {
        std::optional<std::string> member;
        if (!request.origin.empty()) member = cors->member_origin(request.origin);
        inner(std::move(request),
              [member = std::move(member), respond = std::move(respond)](HttpResponse response) {
                  CorsPolicy::add_headers(response, member);
                  respond(std::move(response));
              });
    };
}

}  // namespace keel::daemon
