// daemon/http_server_impl.hpp — what the HTTP server's files share (private
// to http_server.cpp, http_session.cpp and http_tls.cpp): the server's state,
// its counters, and the base every connection derives from.
//
// Threads: one io_context per server thread, each run by exactly one
// thread.  A connection lives on one context, so its handlers never hop
// between threads (a shared multi-threaded io_context wakes a second thread
// for most events, which costs a 1-connection request two extra wakeups).
// The acceptor and its backoff timer live on contexts[0].
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl/context.hpp>

#include "client_counts.hpp"
#include "http_server.hpp"

namespace keel::daemon {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// Why a connection was closed for a timeout.
enum class TimeoutPhase { header, body, idle, write, tls_handshake, count };

// A connection, as the server sees it (the Beast stream type is the
// session's business: http_session.cpp).
class SessionBase {
public:
    virtual ~SessionBase() = default;
    // On shutdown: an idle connection closes now, a busy one after its answer.
    virtual void stop_soon() = 0;
    // After the server's threads are joined: close whatever is still open.
    virtual void force_close() = 0;
};

struct HttpServer::Impl {
    Impl(HttpServerOptions o, HttpHandler h);

    net::io_context& next_context() {
        return *contexts[next.fetch_add(1, std::memory_order_relaxed) % contexts.size()];
    }
    void accept(std::shared_ptr<Impl> self);
    void count_timeout(TimeoutPhase phase) {
        timeouts[static_cast<std::size_t>(phase)].fetch_add(1, std::memory_order_relaxed);
    }

    HttpServerOptions options;
    HttpHandler handler;
    std::unique_ptr<net::ssl::context> tls;  // null: plain HTTP
    ConnectionInfo connection_info;          // the same for every connection
    std::vector<std::unique_ptr<net::io_context>> contexts;
    std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
    std::atomic<std::size_t> next{0};
    tcp::acceptor acceptor;                                 // on contexts[0]
    net::steady_timer accept_backoff;                       // on contexts[0]
    std::chrono::milliseconds backoff = kAcceptBackoffMin;  // acceptor's thread only
    std::vector<std::thread> threads;
    std::shared_ptr<ClientCounts> clients;

    mutable std::mutex mutex;
    std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;  // GUARDED_BY(mutex)
    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> in_flight{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> rejected{0};
    std::atomic<std::uint64_t> refused_max_conns{0};
    std::atomic<std::uint64_t> refused_per_client{0};
    std::atomic<std::uint64_t> accept_backoffs{0};
    std::atomic<std::uint64_t> tls_handshake_failures{0};
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(TimeoutPhase::count)>
        timeouts{};
    bool started = false;
    bool stopped = false;
};

// Starts serving an accepted connection (plain or TLS, as `server` says).
// `slot` is its place in its client's count, held until it closes.
void launch_session(const std::shared_ptr<HttpServer::Impl>& server, tcp::socket socket,
                    ClientSlot slot);

// The TLS context for options' files, or why it cannot be built.
Result<std::unique_ptr<net::ssl::context>> make_tls_context(const HttpServerOptions& options);

}  // namespace keel::daemon
