// daemon/http_types.hpp — the HTTP request and response as raftd's handlers
// see them: plain structs, so the router and handlers never include Beast
// (only the http_* files do) and can be unit-tested without sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace keel::daemon {

struct HttpRequest {
    std::string method;  // "GET", "PUT", ... as sent
    std::string target;  // path and query, as sent (e.g. "/v1/kv/a?consistency=stale")
    std::string body;
    std::string content_type;
    // Checked by the server's gate (request_guard.hpp) before the body is read.
    std::string host{};           // the Host header, "" when absent
    std::string origin{};         // the Origin header, "" when absent
    std::string authorization{};  // cleared once the gate has run: handlers never see it
    // The Authorization header the gate let through, kept only for a call
    // another member must answer on the client's behalf (a list across
    // groups: handlers_list.cpp), which carries the same credentials, and
    // only to a member over verified TLS or on loopback (member_client.hpp).
    // Handlers pass it on and never read it.
    std::string forwarded_credentials{};
    std::string access_control_request_method{};  // a CORS preflight's (cors.hpp), "" when absent
    bool has_body = false;                        // Content-Length > 0, or a chunked body
};

// Another member's answer to a GET raftd sent it (member_client.hpp).
struct HttpAnswer {
    int status = 0;
    std::string body;
};

// A response body read in pieces while it is written (a snapshot
// download), so that it never has to fit in memory.  `read` fills up to
// `capacity` bytes and returns how many, 0 at the end, or -1 when the
// source failed; it is called on the connection's thread, one piece at a
// time.  A failure or a short source (fewer than size_bytes in all) closes
// the connection: the client sees a body shorter than its Content-Length.
struct StreamedBody {
    std::uint64_t size_bytes = 0;
    std::function<std::ptrdiff_t(char* buffer, std::size_t capacity)> read;
};

struct HttpResponse {
    int status = 200;
    std::string body;
    std::shared_ptr<StreamedBody> stream{};                    // when set, `body` is not sent
    std::string content_type = "application/json";             // "": no Content-Type header
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers

    void set_header(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
    }
};

// What the server knows about the connection a request came on.
struct ConnectionInfo {
    bool loopback_listener = false;  // the server listens on 127.0.0.0/8 or ::1
    bool tls = false;
};

// Completes a request.  Must be called exactly once; may be called from any
// thread (the server posts the write back to the connection's executor).
using Respond = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(HttpRequest, Respond)>;
// Runs on a server thread once a request's headers are read, before its
// body: a response refuses the request (the connection is closed after it,
// the body unread); nullopt lets it through to the handler.
using HttpGate =
    std::function<std::optional<HttpResponse>(const HttpRequest&, const ConnectionInfo&)>;

}  // namespace keel::daemon
