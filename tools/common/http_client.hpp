// tools/common/http_client.hpp — an HTTP/1.1 client for raftd's API, shared
// by keelctl and raftd (a member asking another member: daemon/member_client.hpp):
// one request at a time over plain TCP or TLS, with an optional bearer token
// (or an Authorization header passed on as is) and client certificate.
// Over TLS the server's certificate must chain to the CA given (the system's
// store without one) and name the host asked for (DNS name or IP address);
// there is no fallback to plain HTTP.  `call` follows raftd's 307 redirects
// to the leader and waits out "no leader known" answers (503 no_leader) for
// a bounded time; `send` does neither.
//
// Errors are values: a Status whose code says what went wrong —
// io_error (unreachable: resolve, connect, TLS handshake, read or write
// failed), timeout (a deadline passed), too_large (the answer passed
// body_max_bytes), invalid_argument (a malformed URL or redirect, or TLS
// files that cannot be loaded).  An HTTP answer of any status is a success
// at this layer; the callers interpret it.
//
// A client keeps the TLS sessions of its servers (tls_session_cache.hpp) and
// resumes them: a request to a server it asked before skips most of the
// handshake, and its certificate is not sent again — only a server that
// passed the full checks for that same host and port, with this client's CA
// and certificate, can resume.  A failed handshake that offered a session is
// tried once more without one (a server that cannot resume, such as raftd
// before 0046 with --http-client-ca, fails the handshake instead of
// ignoring the session).
//
// Threads: a client is immutable once made, but for its session cache;
// `send` and `call` may run on several threads at once (they share the TLS
// context, which OpenSSL allows, and the cache, which locks).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "keel/status.hpp"
#include "tls_session_cache.hpp"

namespace keel::http_client {

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

// The largest answer read into memory by default (lists, status): raftd's
// own answers are far smaller; a bigger one is refused, not buffered.
constexpr std::uint64_t kBodyBytesMax = 256ull << 20;

// Servers whose TLS session a client keeps by default: raftd asks the
// members of its cluster, keelctl its --endpoints; a handful each.
constexpr std::size_t kTlsSessionsMax = 64;

struct ClientOptions {
    std::string token;  // sent as "Authorization: Bearer TOKEN" when non-empty
    // Sent as the Authorization header as is when `token` is empty and this
    // is not (a client's credentials that raftd passes on).
    std::string authorization;
    std::string cacert;  // PEM file of the CA that signed raftd's certificate; "": the system's
    std::string cert;    // client certificate (PEM) for --http-client-ca servers
    std::string key;     // its private key (PEM)
    std::string user_agent = "keelctl";
    // One deadline per request, from connecting to the answer's last byte;
    // a streamed download (a BodySink) has it per piece of the body instead.
    std::chrono::milliseconds timeout{5000};
    // Total wait in call() for an answer that asks to be retried: a 503
    // no_leader (an election) or a 429 busy (a leadership transfer, a full queue).
    std::chrono::milliseconds retry_wait{10000};
    std::uint64_t body_max_bytes = kBodyBytesMax;     // an answer read into memory
    int redirects_max = 5;
    // Servers whose TLS session is kept for the next handshake with them
    // (0: none, every handshake a full one).  Read when the client is made.
    std::size_t tls_sessions_max = kTlsSessionsMax;
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
    // Loads the TLS files of `options` now; when they cannot be loaded,
    // tls_status() says why and every https request fails with it.
    explicit HttpClient(ClientOptions options);

    // Whether the CA and client certificate of the options were loaded.
    const Status& tls_status() const { return tls_status_; }

    // A copy with other `options` sharing this client's TLS context and
    // session cache: their TLS files are not read again.  REQUIRES:
    // options.cacert, cert and key are this client's.
    HttpClient with_options(ClientOptions options) const;

    // One request to `origin`'s host; `target` replaces origin.target.  A
    // non-empty body is sent as application/json.
    Result<Response> send(const Url& origin, std::string_view method, std::string_view target,
                          std::string_view body = {}, const BodySink* sink = nullptr) const;

    // send(), then: a 307 is followed (same method and body) to its Location,
    // at most redirects_max times; a 503 no_leader or a 429 busy is asked
    // again, from `origin`, after its Retry-After (capped at 1 s) until
    // retry_wait has passed, then returned as it is.  Retrying either is safe
    // for any request: raftd refuses them before anything is proposed (a
    // write that lost its leader after being proposed answers 503 aborted or
    // timeout, which is not retried).  Any other answer is returned as is.
    Result<Response> call(const Url& origin, std::string_view method, std::string_view target,
                          std::string_view body = {}, const BodySink* sink = nullptr) const;

    const ClientOptions& options() const { return options_; }

    // What this client's TLS handshakes did (shared with its copies).
    TlsSessionStats tls_sessions() const;

    struct Tls;  // the context and the sessions kept with it (http_client.cpp)

private:
    ClientOptions options_;
    std::shared_ptr<Tls> tls_;  // null when tls_status_ is an error
    Status tls_status_;
};

}  // namespace keel::http_client
