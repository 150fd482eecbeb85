// daemon/router.hpp — maps (method, path) to a handler.
//
// Patterns are '/'-separated; a segment "{name}" matches one non-empty path
// segment, and a final "{name*}" matches the rest of the path (one or more
// segments, '/' included).  Captured values are percent-decoded.  A path no
// pattern matches is a 404; a path some pattern matches under another method
// is a 405 with an Allow header.  Handlers that throw answer 500: exceptions
// stop at this edge.  Each route names the Access it needs (auth_tokens.hpp),
// which the request guard checks before the body is read.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth_tokens.hpp"
#include "http_types.hpp"

namespace keel::daemon {

using Params = std::map<std::string, std::string, std::less<>>;

struct RouteRequest {
    HttpRequest http;
    std::string path;  // the target before '?', not decoded
    Params params;     // captured from the path, decoded
    Params query;      // from the query string, decoded
};

using RouteHandler = std::function<void(RouteRequest&, Respond)>;

class Router {
public:
    // REQUIRES: pattern starts with '/'.  Not thread-safe: add every route
    // before the first dispatch; dispatch is then safe from any thread.
    void add(std::string method, std::string_view pattern, Access access, RouteHandler handler);
    void dispatch(HttpRequest request, Respond respond) const;
    // The Access the route for (method, target) needs.  A request no route
    // takes (404, 405, a malformed target) needs `read`: a client without a
    // token learns nothing about which routes exist.
    Access access(std::string_view method, std::string_view target) const;

private:
    struct Route {
        std::string method;
        std::vector<std::string> segments;
        Access access;
        RouteHandler handler;
    };
    static bool match(const Route& route, const std::vector<std::string_view>& path,
                      Params& params);

    std::vector<Route> routes_;
};

// Percent-decoding ('+' stays '+' in paths; in queries it is a space).
// nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space);
// "a=1&b=x%20y" -> {a: "1", b: "x y"}; nullopt on a malformed escape.
std::optional<Params> parse_query(std::string_view query);

}  // namespace keel::daemon
