// daemon/http_server.hpp — raftd's HTTP/1.1 server (Boost.Beast, async,
// keep-alive, plain or TLS), behind a pimpl so that only the http_*.cpp
// files compile Beast.
//
// Per connection: a TLS handshake if TLS is on, then one request at a time:
// wait for it (idle), read its header, let the gate refuse it, maybe answer
// "100 Continue", read its body, dispatch, write, repeat.  Limits:
//   - a TLS handshake must finish within header_timeout, and so must the
//     header (from the connection's start or the handshake's end, or from
//     the first byte of a keep-alive request), the body
//     within body_timeout, and a keep-alive connection may stay idle for
//     idle_timeout; past any of them the connection is closed (counted);
//   - a body over max_body_bytes gets 413 as soon as its Content-Length is
//     read (before the body is); a chunked body is cut at the limit;
//   - headers over max_header_bytes get 431;
//   - past max_connections, or max_connections_per_client from one address,
//     new connections are closed at once (counted);
//   - when accept() fails for want of file descriptors (EMFILE, ENFILE) the
//     acceptor pauses, doubling from kAcceptBackoffMin to kAcceptBackoffMax,
//     instead of retrying at once (counted).
// Unparseable requests get 400 and the connection is closed; so is it after
// a request the gate refuses, unless that request had no body.
//
// shutdown(): stop accepting, close idle connections, let in-flight requests
// finish and be answered (with "Connection: close"), bounded by a grace period.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "http_types.hpp"
#include "keel/status.hpp"

namespace keel::daemon {

struct HttpServerOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;  // 0: any free port (see start())
    std::size_t max_body_bytes = 2 << 20;
    std::size_t max_header_bytes = 16 << 10;
    std::size_t max_connections = 4096;
    std::size_t max_connections_per_client = 256;
    std::chrono::milliseconds header_timeout{10000};
    std::chrono::milliseconds body_timeout{30000};
    std::chrono::milliseconds idle_timeout{60000};
    std::chrono::milliseconds write_timeout{30000};
    // Server threads, each running its own io_context; connections are
    // dealt round-robin and stay on one thread (no cross-thread hops).
    unsigned threads = 1;
    // TLS: both files set (PEM) serve HTTPS only; client_ca_file set also
    // requires a client certificate signed by that CA.
    std::string tls_cert_file;
    std::string tls_key_file;
    std::string tls_client_ca_file;
    // Runs on each request's header before its body is read; null: none.
    HttpGate gate;
};

inline constexpr std::chrono::milliseconds kAcceptBackoffMin{10};
inline constexpr std::chrono::milliseconds kAcceptBackoffMax{500};

struct HttpServerStats {
    std::uint64_t requests = 0;     // dispatched to the handler
    std::uint64_t rejected = 0;     // answered by the server itself (400/413/431) or the gate
    std::uint64_t connections = 0;  // open now
    std::uint64_t in_flight = 0;    // dispatched, not yet answered
    // Connections closed at once: "max_conns", "max_conns_per_client".
    std::map<std::string, std::uint64_t> connections_refused;
    // Connections closed for a timeout: "header", "body", "idle", "write",
    // "tls_handshake".
    std::map<std::string, std::uint64_t> timeouts;
    std::uint64_t tls_handshake_failures = 0;
    std::uint64_t accept_backoffs = 0;  // pauses of the acceptor (EMFILE, ENFILE, ...)
};

class HttpServer {
public:
    // `handler` is called on a server thread for every well-formed request
    // the gate lets through.
    HttpServer(HttpServerOptions options, HttpHandler handler);
    ~HttpServer();  // shutdown(0) if still running
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Loads the TLS files (if any), binds, listens and starts the threads.
    // Returns the bound port.
    Result<std::uint16_t> start();
    // Runs `work` on a server thread.  Thread-safe.
    void post(std::function<void()> work);
    // On one of this server's threads: queues `work` to run on it after the
    // handlers that are ready now (those of the connections one wakeup
    // brought in) and returns true.  On any other thread: false, nothing
    // queued.
    bool post_after_ready(std::function<void()> work);
    // Graceful stop (see above).  Thread-safe; idempotent; returns once the
    // threads are joined.
    void shutdown(std::chrono::milliseconds grace);
    HttpServerStats stats() const;
    // After start(): whether the listener's address is loopback.
    bool loopback() const;

    struct Impl;  // opaque: Beast lives in the http_*.cpp files only

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace keel::daemon
