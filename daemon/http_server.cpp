#include "http_server.hpp"

#include <atomic>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "errors.hpp"

namespace keel::daemon {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {
// After answering a request we refuse (413, 400), the client may still be
// sending; read and discard for at most this long so that closing does not
// reset the connection before the client has read the answer.
constexpr std::chrono::milliseconds kDrainTimeout{2000};
constexpr std::size_t kDrainBufferBytes = 64 << 10;
}  // namespace

class Session;

// One io_context per thread, each run by exactly one thread: a connection
// lives on one context, so its handlers never hop between threads (a shared
// multi-threaded io_context wakes a second thread for most events, which
// costs a 1-connection request two extra wakeups).  Connections are dealt
// round-robin.
struct HttpServer::Impl {
    Impl(HttpServerOptions o, HttpHandler h)
        : options(std::move(o)), handler(std::move(h)), contexts(make_contexts(options.threads)),
          acceptor(*contexts.front()) {}

    static std::vector<std::unique_ptr<net::io_context>> make_contexts(unsigned n) {
        std::vector<std::unique_ptr<net::io_context>> v;
        for (unsigned i = 0; i < std::max(1u, n); ++i)
            v.push_back(std::make_unique<net::io_context>(1));  // one thread each
        return v;
    }
    net::io_context& next_context() {
        return *contexts[next.fetch_add(1, std::memory_order_relaxed) % contexts.size()];
    }

    HttpServerOptions options;
    HttpHandler handler;
    std::vector<std::unique_ptr<net::io_context>> contexts;
    std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
    std::atomic<std::size_t> next{0};
    tcp::acceptor acceptor;  // on contexts[0]
    std::vector<std::thread> threads;

    std::mutex mutex;
    std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // GUARDED_BY(mutex)
    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> in_flight{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> rejected{0};
    bool started = false;
    bool stopped = false;

    void accept(std::shared_ptr<Impl> self);
};

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(tcp::socket&& socket, std::shared_ptr<HttpServer::Impl> server)
        : stream_(std::move(socket)), server_(std::move(server)) {}

    ~Session() {
        std::lock_guard lock(server_->mutex);
        server_->sessions.erase(this);
    }

    void start() {
        net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
    }

    // On shutdown: an idle connection closes now, a busy one after its answer.
    void stop_soon() {
        net::post(stream_.get_executor(), [self = shared_from_this()] {
            self->stop_requested_ = true;
            if (!self->busy_) self->close();
        });
    }

    // After the server's threads are joined: close whatever is still open.
    void force_close() {
        net::post(stream_.get_executor(), [self = shared_from_this()] {
            self->stop_requested_ = true;
            self->close();
        });
    }

private:
    void read_header() {
        if (stop_requested_) return close();
        parser_.emplace();
        parser_->body_limit(server_->options.max_body_bytes);
        parser_->header_limit(static_cast<std::uint32_t>(server_->options.max_header_bytes));
        stream_.expires_after(server_->options.read_timeout);
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    self->on_header(ec);
                                });
    }

    void on_header(beast::error_code ec) {
        if (ec) return on_read_error(ec);
        busy_ = true;
        auto& request = parser_->get();
        if (beast::iequals(request[http::field::expect], "100-continue")) {
            auto cont =
                std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
            http::async_write(
                stream_, *cont,
                [self = shared_from_this(), cont](beast::error_code ec2, std::size_t) {
                    if (ec2) return self->close();
                    self->read_body();
                });
            return;
        }
        read_body();
    }

    void read_body() {
        http::async_read(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read_error(beast::error_code ec) {
        if (ec == http::error::body_limit) {
            return reject(error_response(413, "body_too_large",
                                         "the body is larger than " +
                                             std::to_string(server_->options.max_body_bytes) +
                                             " bytes"));
        }
        if (ec == http::error::header_limit) {
            return reject(
                error_response(431, "headers_too_large", "the request headers are too large"));
        }
        // Any other HTTP parse error is the client's fault: answer 400.  Socket
        // errors, timeouts and a clean end of stream just close.
        const bool parse_error =
            ec.category() == http::make_error_code(http::error::bad_target).category();
        if (parse_error && ec != http::error::end_of_stream && ec != http::error::partial_message) {
            return reject(
                error_response(400, "bad_request", "malformed HTTP request: " + ec.message()));
        }
        close();  // end of stream, timeout, reset, shutdown
    }

    void on_read(beast::error_code ec) {
        if (ec) return on_read_error(ec);
        auto& message = parser_->get();
        HttpRequest request;
        request.method.assign(message.method_string());
        request.target.assign(message.target());
        request.content_type.assign(message[http::field::content_type]);
        request.body = std::move(message.body());
        keep_alive_ = message.keep_alive();
        server_->in_flight.fetch_add(1);
        server_->requests.fetch_add(1, std::memory_order_relaxed);
        auto self = shared_from_this();
        server_->handler(std::move(request), [self](HttpResponse response) {
            net::post(self->stream_.get_executor(), [self, r = std::move(response)]() mutable {
                self->write(std::move(r), true);
            });
        });
    }

    void reject(HttpResponse response) {
        server_->rejected.fetch_add(1, std::memory_order_relaxed);
        keep_alive_ = false;
        busy_ = true;
        write(std::move(response), false);
    }

    void write(HttpResponse response, bool counted) {
        const bool keep_alive = keep_alive_ && !stop_requested_ && !server_->stopping.load();
        auto message = std::make_shared<http::response<http::string_body>>(
            static_cast<http::status>(response.status), 11);
        message->set(http::field::server, "raftd");
        message->set(http::field::content_type, response.content_type);
        for (auto& [name, value] : response.headers) message->set(name, value);
        message->body() = std::move(response.body);
        message->keep_alive(keep_alive);
        message->prepare_payload();
        stream_.expires_after(server_->options.write_timeout);
        http::async_write(stream_, *message,
                          [self = shared_from_this(), message, keep_alive, counted](
                              beast::error_code ec, std::size_t) {
                              if (counted) self->server_->in_flight.fetch_sub(1);
                              self->busy_ = false;
                              if (ec) return self->close();
                              if (!keep_alive) return self->drain_and_close();
                              self->read_header();
                          });
    }

    // Half-close, then discard what the client still sends (bounded in time).
    void drain_and_close() {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (ec) return close();
        drain_buffer_.resize(kDrainBufferBytes);
        stream_.expires_after(kDrainTimeout);
        drain();
    }

    void drain() {
        stream_.async_read_some(net::buffer(drain_buffer_),
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    if (ec) return self->close();
                                    self->drain();
                                });
    }

    void close() {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        stream_.close();
    }

    beast::tcp_stream stream_;
    std::shared_ptr<HttpServer::Impl> server_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::vector<char> drain_buffer_;
    bool keep_alive_ = true;
    bool busy_ = false;            // a request is being read, handled or answered
    bool stop_requested_ = false;  // the server is shutting down
};

void HttpServer::Impl::accept(std::shared_ptr<Impl> self) {
    acceptor.async_accept(next_context(), [self](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
        if (!ec) {
            std::shared_ptr<Session> session;
            {
                std::lock_guard lock(self->mutex);
                if (self->sessions.size() < self->options.max_connections && !self->stopping) {
                    session = std::make_shared<Session>(std::move(socket), self);
                    self->sessions.emplace(session.get(), session);
                }
            }
            if (session) session->start();
            // else: `socket` closes as it goes out of scope
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
    beast::error_code ec;
    auto address = net::ip::make_address(impl_->options.host, ec);
    if (ec) {
        // Not a literal address: resolve the name (e.g. "localhost").
        tcp::resolver resolver(*impl_->contexts.front());
        auto results =
            resolver.resolve(impl_->options.host, std::to_string(impl_->options.port), ec);
        if (ec || results.empty()) {
            return Status(
                ErrorCode::invalid_argument,
                "cannot resolve HTTP host '" + impl_->options.host + "': " + ec.message());
        }
        address = results.begin()->endpoint().address();
    }
    tcp::endpoint endpoint(address, impl_->options.port);
    auto& acceptor = impl_->acceptor;
    if (acceptor.open(endpoint.protocol(), ec); ec) {
        return Status(ErrorCode::io_error, "HTTP socket: " + ec.message());
    }
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (acceptor.bind(endpoint, ec); ec) {
        return Status(ErrorCode::io_error,
                      "cannot bind HTTP address " + endpoint.address().to_string() + ":" +
                          std::to_string(endpoint.port()) + ": " + ec.message());
    }
    if (acceptor.listen(net::socket_base::max_listen_connections, ec); ec) {
        return Status(ErrorCode::io_error, "HTTP listen: " + ec.message());
    }
    const std::uint16_t port = acceptor.local_endpoint().port();
    impl_->started = true;
    for (auto& context : impl_->contexts) impl_->work.emplace_back(context->get_executor());
    impl_->accept(impl_);
    for (auto& context : impl_->contexts) {
        impl_->threads.emplace_back([impl = impl_, ioc = context.get()] { ioc->run(); });
    }
    return port;
}

void HttpServer::post(std::function<void()> work) {
    net::post(impl_->next_context(), std::move(work));
}

void HttpServer::shutdown(std::chrono::milliseconds grace) {
    if (!impl_->started || impl_->stopped) return;
    impl_->stopped = true;
    impl_->stopping = true;
    std::promise<void> closed;
    net::post(impl_->acceptor.get_executor(), [impl = impl_, &closed] {
        beast::error_code ec;
        impl->acceptor.close(ec);
        closed.set_value();
    });
    closed.get_future().wait();
    std::vector<std::shared_ptr<Session>> sessions;
    {
        std::lock_guard lock(impl_->mutex);
        for (auto& [raw, weak] : impl_->sessions) {
            if (auto session = weak.lock()) sessions.push_back(std::move(session));
        }
    }
    for (auto& session : sessions) session->stop_soon();
    sessions.clear();
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
    {
        std::lock_guard lock(impl_->mutex);
        for (auto& [raw, weak] : impl_->sessions) {
            if (auto session = weak.lock()) sessions.push_back(std::move(session));
        }
    }
    for (auto& session : sessions) session->force_close();
    sessions.clear();
    for (auto& context : impl_->contexts) {
        context->restart();
        context->run_for(std::chrono::milliseconds(100));
    }
}

HttpServerStats HttpServer::stats() const {
    HttpServerStats stats;
    stats.requests = impl_->requests.load(std::memory_order_relaxed);
    stats.rejected = impl_->rejected.load(std::memory_order_relaxed);
    stats.in_flight = impl_->in_flight.load();
    std::lock_guard lock(impl_->mutex);
    stats.connections = impl_->sessions.size();
    return stats;
}

}  // namespace keel::daemon
