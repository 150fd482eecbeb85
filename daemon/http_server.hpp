// daemon/http_server.hpp — raftd's HTTP/1.1 server (Boost.Beast, async,
// keep-alive), behind a pimpl so that only http_server.cpp compiles Beast.
//
// Per connection: one request at a time (read header, enforce limits, maybe
// answer "100 Continue", read body, dispatch, write, repeat).  Limits:
//   - a body over max_body_bytes gets 413 as soon as its Content-Length is
//     read (before the body is); a chunked body is cut at the limit;
//   - headers over max_header_bytes get 431;
//   - a request (or an idle keep-alive connection) taking longer than
//     read_timeout is closed;
//   - past max_connections, new connections are closed at once.
// Unparseable requests get 400 and the connection is closed.
//
// shutdown(): stop accepting, close idle connections, let in-flight requests
// finish and be answered (with "Connection: close"), bounded by a grace period.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
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
    std::chrono::milliseconds read_timeout{30000};
    std::chrono::milliseconds write_timeout{30000};
    // Server threads, each running its own io_context; connections are
    // dealt round-robin and stay on one thread (no cross-thread hops).
    unsigned threads = 1;
};

struct HttpServerStats {
    std::uint64_t requests = 0;     // dispatched to the handler
    std::uint64_t rejected = 0;     // answered by the server itself (400/413/431)
    std::uint64_t connections = 0;  // open now
    std::uint64_t in_flight = 0;    // dispatched, not yet answered
};

class HttpServer {
public:
    // `handler` is called on a server thread for every well-formed request.
    HttpServer(HttpServerOptions options, HttpHandler handler);
    ~HttpServer();  // shutdown(0) if still running
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds, listens and starts the threads.  Returns the bound port.
    Result<std::uint16_t> start();
    // Runs `work` on a server thread.  Thread-safe.
    void post(std::function<void()> work);
    // Graceful stop (see above).  Thread-safe; idempotent; returns once the
    // threads are joined.
    void shutdown(std::chrono::milliseconds grace);
    HttpServerStats stats() const;

    struct Impl;  // opaque: Beast lives in http_server.cpp only

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace keel::daemon
