// The server's lifecycle: binding, the accept loop (per-client and global
// caps, backoff when file descriptors run out), and the graceful shutdown.
// Connections themselves are http_session.cpp's.
#include "http_server.hpp"

#include <future>

#include <fmt/format.h>

#include "http_server_impl.hpp"

namespace keel::daemon {
namespace {

// Set on each server thread: the server it runs for, and its io_context.
thread_local const HttpServer::Impl* t_server = nullptr;
thread_local net::io_context* t_context = nullptr;

std::vector<std::unique_ptr<net::io_context>> make_contexts(unsigned n) {
    std::vector<std::unique_ptr<net::io_context>> v;
    for (unsigned i = 0; i < std::max(1u, n); ++i)
        v.push_back(std::make_unique<net::io_context>(1));  // one thread each
    return v;
}

// Clients are counted by address; an IPv4-mapped IPv6 address is its IPv4.
std::string client_of(const tcp::socket& socket) {
    boost::system::error_code ec;
    net::ip::address address = socket.remote_endpoint(ec).address();
    if (ec) return "";
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        address = net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
    }
    return address.to_string();
}

std::vector<std::shared_ptr<SessionBase>> live_sessions(HttpServer::Impl& impl) {
    std::vector<std::shared_ptr<SessionBase>> out;
    std::lock_guard lock(impl.mutex);
    for (auto& [raw, weak] : impl.sessions) {
        if (auto session = weak.lock()) out.push_back(std::move(session));
    }
    return out;
}

}  // namespace

HttpServer::Impl::Impl(HttpServerOptions o, HttpHandler h)
    : options(std::move(o)),
      handler(std::move(h)),
      contexts(make_contexts(options.threads)),
      acceptor(*contexts.front()),
      accept_backoff(*contexts.front()),
      clients(std::make_shared<ClientCounts>(
          std::max<std::size_t>(1, options.max_connections_per_client))) {}

void HttpServer::Impl::accept(std::shared_ptr<Impl> self) {
    acceptor.async_accept(next_context(), [self](boost::system::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
        if (ec && ec != net::error::connection_aborted) {
            // Out of file descriptors (EMFILE, ENFILE) or memory, retrying at
            // once would fail at once, the pending connection still in the
            // backlog: pause, longer each time, until an accept succeeds.
            // Any other error is paused on too, so that none can spin; a
            // client that reset before being accepted is no reason to.
            self->accept_backoffs.fetch_add(1, std::memory_order_relaxed);
            self->accept_backoff.expires_after(self->backoff);
            self->backoff = std::min(self->backoff * 2, kAcceptBackoffMax);
            self->accept_backoff.async_wait([self](boost::system::error_code wait_ec) {
                if (!wait_ec) self->accept(self);
            });
            return;
        }
        self->backoff = kAcceptBackoffMin;
        if (!ec) {
            if (std::optional<ClientSlot> slot = self->clients->acquire(client_of(socket))) {
                launch_session(self, std::move(socket), std::move(*slot));
            } else {
                self->refused_per_client.fetch_add(1, std::memory_order_relaxed);
                // `socket` closes as it goes out of scope
            }
        }
        self->accept(self);
    });
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() {
    shutdown(std::chrono::milliseconds(0));
}

Result<std::uint16_t> HttpServer::start() {
    KEEL_ASSERT(!impl_->started, "start() is called once");
    const HttpServerOptions& options = impl_->options;
    if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
        Result<std::unique_ptr<net::ssl::context>> tls = make_tls_context(options);
        if (!tls.ok()) return tls.status();
        impl_->tls = std::move(tls.value());
        impl_->connection_info.tls = true;
    }
    boost::system::error_code ec;
    auto address = net::ip::make_address(options.host, ec);
    if (ec) {
        // Not a literal address: resolve the name (e.g. "localhost").
        tcp::resolver resolver(*impl_->contexts.front());
        auto results = resolver.resolve(options.host, std::to_string(options.port), ec);
        if (ec || results.empty()) {
            return Status(ErrorCode::invalid_argument,
                          "cannot resolve HTTP host '" + options.host + "': " + ec.message());
        }
        address = results.begin()->endpoint().address();
    }
    tcp::endpoint endpoint(address, options.port);
    auto& acceptor = impl_->acceptor;
    if (acceptor.open(endpoint.protocol(), ec); ec) {
        return Status(ErrorCode::io_error, "HTTP socket: " + ec.message());
    }
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (acceptor.bind(endpoint, ec); ec) {
        return Status(ErrorCode::io_error,
                      fmt::format("cannot bind HTTP address {}:{}: {}",
                                  endpoint.address().to_string(), endpoint.port(), ec.message()));
    }
    if (acceptor.listen(net::socket_base::max_listen_connections, ec); ec) {
        return Status(ErrorCode::io_error, "HTTP listen: " + ec.message());
    }
    impl_->connection_info.loopback_listener = address.is_loopback();
    const std::uint16_t port = acceptor.local_endpoint().port();
    // Asio creates a context's reactor (an eventfd and a timerfd) with its
    // first socket or timer, and throws if that fails: make them now, not at
    // the first connection, which may come when file descriptors have run out.
    for (auto& context : impl_->contexts) {
        tcp::socket socket(*context);
        net::steady_timer timer(*context);
    }
    impl_->started = true;
    for (auto& context : impl_->contexts) impl_->work.emplace_back(context->get_executor());
    impl_->accept(impl_);
    for (auto& context : impl_->contexts) {
        impl_->threads.emplace_back([impl = impl_, ioc = context.get()] {
            t_server = impl.get();
            t_context = ioc;
            ioc->run();
        });
    }
    return port;
}

void HttpServer::post(std::function<void()> work) {
    net::post(impl_->next_context(), std::move(work));
}

bool HttpServer::post_after_ready(std::function<void()> work) {
    if (t_server != impl_.get() || t_context == nullptr) return false;
    // From the thread running it: queued behind the handlers already due.
    net::post(*t_context, std::move(work));
    return true;
}

bool HttpServer::loopback() const {
    return impl_->connection_info.loopback_listener;
}

void HttpServer::shutdown(std::chrono::milliseconds grace) {
    if (!impl_->started || impl_->stopped) return;
    impl_->stopped = true;
    impl_->stopping = true;
    std::promise<void> closed;
    net::post(impl_->acceptor.get_executor(), [impl = impl_, &closed] {
        boost::system::error_code ec;
        impl->acceptor.close(ec);
        impl->accept_backoff.cancel();
        closed.set_value();
    });
    closed.get_future().wait();
    for (auto& session : live_sessions(*impl_)) session->stop_soon();
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (;;) {
        std::size_t open = 0;
        {
            std::lock_guard lock(impl_->mutex);
            open = impl_->sessions.size();
        }
        if ((open == 0 && impl_->in_flight.load() == 0) ||
            std::chrono::steady_clock::now() >= deadline) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    impl_->work.clear();
    for (auto& context : impl_->contexts) context->stop();
    for (auto& thread : impl_->threads) thread.join();
    impl_->threads.clear();
    // Connections still open past the grace period: close them and let their
    // handlers run out, so no Session (which holds the Impl) outlives us.
    for (auto& session : live_sessions(*impl_)) session->force_close();
    for (auto& context : impl_->contexts) {
        context->restart();
        context->run_for(std::chrono::milliseconds(100));
    }
}

HttpServerStats HttpServer::stats() const {
    const Impl& impl = *impl_;
    HttpServerStats stats;
    stats.requests = impl.requests.load(std::memory_order_relaxed);
    stats.rejected = impl.rejected.load(std::memory_order_relaxed);
    stats.in_flight = impl.in_flight.load();
    stats.connections_refused["max_conns"] = impl.refused_max_conns.load(std::memory_order_relaxed);
    stats.connections_refused["max_conns_per_client"] =
        impl.refused_per_client.load(std::memory_order_relaxed);
    static const char* const kPhases[] = {"header", "body", "idle", "write", "tls_handshake"};
    for (std::size_t i = 0; i < impl.timeouts.size(); ++i) {
        stats.timeouts[kPhases[i]] = impl.timeouts[i].load(std::memory_order_relaxed);
    }
    stats.tls_handshake_failures = impl.tls_handshake_failures.load(std::memory_order_relaxed);
    stats.accept_backoffs = impl.accept_backoffs.load(std::memory_order_relaxed);
    std::lock_guard lock(impl.mutex);
    stats.connections = impl.sessions.size();
    return stats;
}

}  // namespace keel::daemon
