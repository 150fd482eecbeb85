// daemon/http_front.hpp — raftd's HTTP side wired to what the process
// serves: the handlers' context (with --groups, the calls to other members:
// a ForwardPool running MemberClient GETs), the routes, the request guard
// with the members' CORS policy, and the server.
//
// Threads: made, started and destroyed on main's thread; stopped through
// server() (served.hpp's shut_down) before it is destroyed.  Destruction
// first lets the calls to other members still running finish, while the
// context and the server they answer through exist (the queued ones are
// dropped).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "auth_tokens.hpp"
#include "cors.hpp"
#include "flags.hpp"
#include "forward_pool.hpp"
#include "handlers.hpp"
#include "http_server.hpp"
#include "member_client.hpp"
#include "request_guard.hpp"
#include "router.hpp"
#include "served.hpp"

namespace keel::daemon {

class HttpFront {
public:
    // `config`, `served` and `members` must outlive it; `tokens` null: no
    // --auth-tokens.
    HttpFront(const DaemonConfig& config, const Served& served, const MemberClient& members,
              std::shared_ptr<TokenStore> tokens);
    ~HttpFront();
    HttpFront(const HttpFront&) = delete;
    HttpFront& operator=(const HttpFront&) = delete;

    // Listens and serves: the port (--http's, or the one the system chose
    // for port 0); an error when it cannot.
    Result<std::uint16_t> start() { return server_->start(); }

    HttpServer& server() { return *server_; }
    // "https" with --http-cert, else "http".
    const std::string& scheme() const { return context_.url_scheme; }

private:
    Router router_;
    std::unique_ptr<HttpServer> server_;
    HandlerContext context_;
    std::shared_ptr<const CorsPolicy> cors_;
    RequestGuard guard_;
    std::unique_ptr<ForwardPool> forwards_;  // last: the first destroyed
};

}  // namespace keel::daemon
