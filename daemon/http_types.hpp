// daemon/http_types.hpp — the HTTP request and response as raftd's handlers
// see them: plain structs, so the router and handlers never include Beast
// (only http_server.cpp does) and can be unit-tested without sockets.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace keel::daemon {

struct HttpRequest {
    std::string method;  // "GET", "PUT", ... as sent
    std::string target;  // path and query, as sent (e.g. "/v1/kv/a?consistency=stale")
    std::string body;
    std::string content_type;
};

struct HttpResponse {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers

    void set_header(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
    }
};

// Completes a request.  Must be called exactly once; may be called from any
// thread (the server posts the write back to the connection's executor).
using Respond = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(HttpRequest, Respond)>;

}  // namespace keel::daemon
