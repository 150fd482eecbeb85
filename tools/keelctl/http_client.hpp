// tools/keelctl/http_client.hpp — keelctl's HTTP/1.1 client for raftd: one
// request at a time over plain TCP or TLS, with an optional bearer token and
// client certificate.  `call` follows raftd's 307 redirects to the leader and
// waits out "no leader known" answers (503 no_leader) for a bounded time;
// `send` does neither.
//
// Errors are values: a Status whose code says what went wrong —
// io_error (unreachable: resolve, connect, TLS handshake, read or write
// failed), timeout (a deadline passed), corruption (the answer is not HTTP),
// invalid_argument (a malformed URL or redirect).  An HTTP answer of any
// status is a success at this layer; the commands interpret it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "keel/status.hpp"

namespace keel::keelctl {

// http[s]://host:port, as given to --endpoints or found in a Location header.
struct Url {
    bool tls = false;
    std::string host;  // without brackets for IPv6
    std::string port;
    std::string target;  // path and query; "/" when absent

    // "scheme://host:port" (IPv6 hosts in brackets).
    std::string origin() const;
};

// Accepts http://HOST[:PORT][/PATH] and https://...; the port defaults to 80
// or 443.  invalid_argument otherwise.
Result<Url> parse_url(std::string_view text);

struct ClientOptions {
    std::string token;   // sent as "Authorization: Bearer TOKEN" when non-empty
    std::string cacert;  // PEM file of the CA that signed raftd's certificate
    std::string cert;    // client certificate (PEM) for --http-client-ca servers
    std::string key;     // its private key (PEM)
    std::chrono::milliseconds timeout{5000};          // per request, connect included
    std::chrono::milliseconds no_leader_wait{10000};  // total wait for a leader in call()
    int redirects_max = 5;
};

struct Response {
    int status = 0;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;
    std::string origin;  // where the answer came from (after redirects)

    std::string header(const std::string& lower_name) const;
};

// Receives a response body in pieces as it arrives (for downloads).  Returns
// false to abort the transfer.  `total_bytes` is the Content-Length, or 0.
using BodySink = std::function<bool(std::string_view piece, std::uint64_t total_bytes)>;

class HttpClient {
public:
    explicit HttpClient(ClientOptions options);

    // One request to `origin`'s host; `target` replaces origin.target.  A
    // non-empty body is sent as application/json.
    Result<Response> send(const Url& origin, std::string_view method, std::string_view target,
                          std::string_view body = {}, const BodySink* sink = nullptr) const;

    // send(), then: a 307 is followed (same method and body) to its Location,
    // at most redirects_max times; a 503 no_leader is retried after its
    // Retry-After (capped at 1 s) until no_leader_wait has passed.  Any other
    // answer is returned as is.
    Result<Response> call(const Url& origin, std::string_view method, std::string_view target,
                          std::string_view body = {}, const BodySink* sink = nullptr) const;

    const ClientOptions& options() const { return options_; }

private:
    ClientOptions options_;
};

}  // namespace keel::keelctl
