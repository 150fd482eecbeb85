#include "router.hpp"

#include <atomic>
#include <exception>
#include <memory>

#include "errors.hpp"

namespace keel::daemon {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> out;
    std::size_t start = 1;  // skip the leading '/'
    while (start <= path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        out.push_back(path.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return std::nullopt;
            int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::optional<Params> parse_query(std::string_view query) {
    Params params;
    while (!query.empty()) {
        std::size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (pair.empty()) continue;
        std::size_t eq = pair.find('=');
        auto name = percent_decode(pair.substr(0, eq), true);
        auto value = percent_decode(
            eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
        if (!name || !value) return std::nullopt;
        params.insert_or_assign(std::move(*name), std::move(*value));
    }
    return params;
}

void Router::add(std::string method, std::string_view pattern, Access access,
                 RouteHandler handler) {
    KEEL_ASSERT(!pattern.empty() && pattern[0] == '/', "a route pattern starts with '/'");
    Route route{std::move(method), {}, access, std::move(handler)};
    for (std::string_view segment : split_path(pattern)) route.segments.emplace_back(segment);
    routes_.push_back(std::move(route));
}

bool Router::match(const Route& route, const std::vector<std::string_view>& path, Params& params) {
    params.clear();
    for (std::size_t i = 0; i < route.segments.size(); ++i) {
        const std::string& want = route.segments[i];
        const bool capture = want.size() > 2 && want.front() == '{' && want.back() == '}';
        const bool rest = capture && want[want.size() - 2] == '*';
        if (i >= path.size()) return false;
        if (!capture) {
            if (path[i] != want) return false;
            continue;
        }
        std::string raw;
        if (rest) {
            for (std::size_t j = i; j < path.size(); ++j) {
                if (j > i) raw.push_back('/');
                raw.append(path[j]);
            }
        } else {
            raw.assign(path[i]);
        }
        if (raw.empty()) return false;
        auto decoded = percent_decode(raw, false);
        if (!decoded) return false;
        std::string name = want.substr(1, want.size() - (rest ? 3 : 2));
        params.insert_or_assign(std::move(name), std::move(*decoded));
        if (rest) return true;
    }
    return route.segments.size() == path.size();
}

Access Router::access(std::string_view method, std::string_view target) const {
    std::string_view path = target.substr(0, target.find('?'));
    if (path.empty() || path[0] != '/') return Access::read;
    const std::vector<std::string_view> segments = split_path(path);
    for (const Route& route : routes_) {
        Params params;
        if (route.method == method && match(route, segments, params)) return route.access;
    }
    return Access::read;
}

void Router::dispatch(HttpRequest request, Respond respond) const {
    RouteRequest route_request;
    std::string_view target = request.target;
    std::size_t question = target.find('?');
    route_request.path.assign(target.substr(0, question));
    if (route_request.path.empty() || route_request.path[0] != '/') {
        respond(error_response(400, "bad_request", "the request target must be an absolute path"));
        return;
    }
    if (question != std::string_view::npos) {
        auto query = parse_query(target.substr(question + 1));
        if (!query) {
            respond(error_response(400, "bad_request", "malformed query string"));
            return;
        }
        route_request.query = std::move(*query);
    }
    const std::vector<std::string_view> path = split_path(route_request.path);
    std::string allowed;
    for (const Route& route : routes_) {
        Params params;
        if (!match(route, path, params)) continue;
        if (route.method != request.method) {
            if (allowed.find(route.method) == std::string::npos) {
                if (!allowed.empty()) allowed += ", ";
                allowed += route.method;
            }
            continue;
        }
        route_request.params = std::move(params);
        route_request.http = std::move(request);
        // A handler that throws after answering must not answer twice.
        auto answered = std::make_shared<std::atomic<bool>>(false);
        Respond once = [answered, respond](HttpResponse response) {
            if (!answered->exchange(true)) respond(std::move(response));
        };
        try {
            route.handler(route_request, once);
        } catch (const std::exception& e) {
            once(error_response(500, "internal", e.what()));
        }
        return;
    }
    if (!allowed.empty()) {
        HttpResponse response = error_response(
            405, "method_not_allowed", request.method + " is not allowed on " + route_request.path);
        response.set_header("Allow", allowed);
        respond(std::move(response));
        return;
    }
    respond(error_response(404, "not_found", "no route for " + route_request.path));
}

}  // namespace keel::daemon
