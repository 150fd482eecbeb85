// One HTTP connection, plain (beast::tcp_stream) or TLS
// (beast::ssl_stream<tcp_stream>): the same request loop over either stream;
// only the start (a handshake) and the graceful close differ.
#include <optional>
#include <type_traits>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <fmt/format.h>

#include "errors.hpp"
#include "http_server_impl.hpp"

namespace keel::daemon {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// After answering a request we refuse (413, 415, 400, ...), the client may
// still be sending; read and discard for at most this long so that closing
// does not reset the connection before the client has read the answer.
constexpr std::chrono::milliseconds kDrainTimeout{2000};
constexpr std::size_t kDrainBufferBytes = 64 << 10;
// An idle keep-alive connection is woken by its next request's first bytes.
constexpr std::size_t kIdleReadBytes = 4096;
// A streamed body (HttpResponse::stream) is read and written this much at a
// time: one piece of it in memory per connection.
constexpr std::size_t kStreamPieceBytes = 256 << 10;

template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
public:
    static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

    Session(tcp::socket&& socket, std::shared_ptr<HttpServer::Impl> server, ClientSlot slot)
        : stream_(make_stream(std::move(socket), *server)),
          server_(std::move(server)),
          slot_(std::move(slot)) {}

    ~Session() override {
        std::lock_guard lock(server_->mutex);
        server_->sessions.erase(this);
    }

    void start() {
        net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
            if constexpr (kTls) {
                self->handshake();
            } else {
                self->read_request(true);
            }
        });
    }

    void stop_soon() override {
        net::post(stream_.get_executor(), [self = this->shared_from_this()] {
            self->stop_requested_ = true;
            if (!self->busy_) self->close();
        });
    }

    void force_close() override {
        net::post(stream_.get_executor(), [self = this->shared_from_this()] {
            self->stop_requested_ = true;
            self->close();
        });
    }

private:
    static Stream make_stream(tcp::socket&& socket, HttpServer::Impl& server) {
        if constexpr (kTls) {
            return Stream(std::move(socket), *server.tls);
        } else {
            return Stream(std::move(socket));
        }
    }

    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
    const HttpServerOptions& options() const { return server_->options; }

    void handshake() {
        lowest().expires_after(options().header_timeout);
        stream_.async_handshake(
            net::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
                if (ec == beast::error::timeout) {
                    self->server_->count_timeout(TimeoutPhase::tls_handshake);
                } else if (ec) {
                    self->server_->tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
                }
                if (ec) return self->close();
                self->read_request(true);
            });
    }

    // The first request's header timeout runs from the connection's start;
    // a later one's from its first byte, after an idle wait.
    void read_request(bool first) {
        if (stop_requested_) return close();
        parser_.emplace();
        parser_->body_limit(options().max_body_bytes);
        parser_->header_limit(static_cast<std::uint32_t>(options().max_header_bytes));
        if (first || buffer_.size() > 0) return read_header();
        lowest().expires_after(options().idle_timeout);
        stream_.async_read_some(
            buffer_.prepare(kIdleReadBytes),
            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                if (ec == beast::error::timeout) self->server_->count_timeout(TimeoutPhase::idle);
                if (ec) return self->close();
                self->buffer_.commit(n);
                self->read_header();
            });
    }

    void read_header() {
        lowest().expires_after(options().header_timeout);
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = this->shared_from_this()](
                                    beast::error_code ec, std::size_t) { self->on_header(ec); });
    }

    void on_header(beast::error_code ec) {
        if (ec) return on_read_error(ec, TimeoutPhase::header);
        busy_ = true;
        auto& message = parser_->get();
        head_.method.assign(message.method_string());
        head_.target.assign(message.target());
        head_.content_type.assign(message[http::field::content_type]);
        head_.host.assign(message[http::field::host]);
        head_.origin.assign(message[http::field::origin]);
        head_.authorization.assign(message[http::field::authorization]);
        head_.access_control_request_method.assign(
            message[http::field::access_control_request_method]);
        head_.has_body = parser_->chunked() || parser_->content_length().value_or(0) > 0;
        std::optional<HttpResponse> refusal;
        if (options().gate) refusal = options().gate(head_, server_->connection_info);
        // Handlers never see credentials, but may pass them on (http_types.hpp).
        head_.forwarded_credentials = refusal ? std::string() : std::move(head_.authorization);
        head_.authorization.clear();
        if (refusal) {
            // With no body left unread, the connection may serve the next request.
            const bool complete = !head_.has_body && parser_->is_done();
            return reject(std::move(*refusal), complete && message.keep_alive());
        }
        if (beast::iequals(message[http::field::expect], "100-continue")) {
            auto cont =
                std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
            lowest().expires_after(options().write_timeout);
            http::async_write(
                stream_, *cont,
                [self = this->shared_from_this(), cont](beast::error_code ec2, std::size_t) {
                    if (ec2) return self->close();
                    self->read_body();
                });
            return;
        }
        read_body();
    }

    void read_body() {
        lowest().expires_after(options().body_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                             self->on_read(ec);
                         });
    }

    void on_read_error(beast::error_code ec, TimeoutPhase phase) {
        if (ec == http::error::body_limit) {
            return reject(error_response(
                413, "body_too_large",
                fmt::format("the body is larger than {} bytes", options().max_body_bytes)));
        }
        if (ec == http::error::header_limit) {
            return reject(
                error_response(431, "headers_too_large", "the request headers are too large"));
        }
        if (ec == beast::error::timeout) {
            server_->count_timeout(phase);
            return close();
        }
        // Any other HTTP parse error is the client's fault: answer 400.  Socket
        // errors, a clean end of stream and a TLS failure just close.
        const bool parse_error =
            ec.category() == http::make_error_code(http::error::bad_target).category();
        if (parse_error && ec != http::error::end_of_stream && ec != http::error::partial_message) {
            return reject(
                error_response(400, "bad_request", "malformed HTTP request: " + ec.message()));
        }
        close();
    }

    void on_read(beast::error_code ec) {
        if (ec) return on_read_error(ec, TimeoutPhase::body);
        auto& message = parser_->get();
        HttpRequest request = std::move(head_);
        head_ = HttpRequest();
        request.body = std::move(message.body());
        keep_alive_ = message.keep_alive();
        server_->in_flight.fetch_add(1);
        server_->requests.fetch_add(1, std::memory_order_relaxed);
        auto self = this->shared_from_this();
        server_->handler(std::move(request), [self](HttpResponse response) {
            net::post(self->stream_.get_executor(), [self, r = std::move(response)]() mutable {
                self->write(std::move(r), true);
            });
        });
    }

    // Answers, then closes unless `keep_alive`: the rest of the request (its
    // body) is never read.
    void reject(HttpResponse response, bool keep_alive = false) {
        server_->rejected.fetch_add(1, std::memory_order_relaxed);
        keep_alive_ = keep_alive;
        busy_ = true;
        write(std::move(response), false);
    }

    void write(HttpResponse response, bool counted) {
        if (response.stream) return write_streamed(std::move(response), counted);
        const bool keep_alive = keep_alive_ && !stop_requested_ && !server_->stopping.load();
        auto message = std::make_shared<http::response<http::string_body>>(
            static_cast<http::status>(response.status), 11);
        message->set(http::field::server, "raftd");
        if (!response.content_type.empty())
            message->set(http::field::content_type, response.content_type);
        for (auto& [name, value] : response.headers) message->set(name, value);
        message->body() = std::move(response.body);
        message->keep_alive(keep_alive);
        message->prepare_payload();
        // A 204 has no body and must not say so (RFC 9110, 8.6).
        if (response.status == 204) message->erase(http::field::content_length);
        lowest().expires_after(options().write_timeout);
        http::async_write(stream_, *message,
                          [self = this->shared_from_this(), message, keep_alive, counted](
                              beast::error_code ec, std::size_t) {
                              if (counted) self->server_->in_flight.fetch_sub(1);
                              self->busy_ = false;
                              if (ec == beast::error::timeout)
                                  self->server_->count_timeout(TimeoutPhase::write);
                              if (ec) return self->close();
                              if (!keep_alive) return self->drain_and_close();
                              self->read_request(false);
                          });
    }

    // A response whose body is read from `response.stream` piece by piece:
    // the header, then each piece once the previous one is written.  Each
    // write has the write timeout (a stalled client is dropped).
    struct Streaming {
        http::response<http::buffer_body> message;
        std::optional<http::response_serializer<http::buffer_body>> serializer;
        std::shared_ptr<StreamedBody> source;
        std::vector<char> piece;
        std::uint64_t sent_bytes = 0;
        bool keep_alive = false;
        bool counted = false;
    };

    void write_streamed(HttpResponse response, bool counted) {
        auto s = std::make_shared<Streaming>();
        s->keep_alive = keep_alive_ && !stop_requested_ && !server_->stopping.load();
        s->counted = counted;
        s->source = std::move(response.stream);
        s->message.result(static_cast<http::status>(response.status));
        s->message.version(11);
        s->message.set(http::field::server, "raftd");
        if (!response.content_type.empty())
            s->message.set(http::field::content_type, response.content_type);
        for (auto& [name, value] : response.headers) s->message.set(name, value);
        s->message.keep_alive(s->keep_alive);
        s->message.content_length(s->source->size_bytes);
        s->message.body().data = nullptr;
        s->message.body().more = true;
        s->serializer.emplace(s->message);
        s->piece.resize(kStreamPieceBytes);
        lowest().expires_after(options().write_timeout);
        http::async_write_header(
            stream_, *s->serializer,
            [self = this->shared_from_this(), s](beast::error_code ec, std::size_t) {
                if (ec) return self->end_streamed(*s, ec);
                self->write_piece(s);
            });
    }

    void write_piece(const std::shared_ptr<Streaming>& s) {
        const std::ptrdiff_t got = s->source->read(s->piece.data(), s->piece.size());
        const std::uint64_t left = s->source->size_bytes - s->sent_bytes;
        if (got < 0 || static_cast<std::uint64_t>(got) > left || (got == 0 && left > 0))
            return end_streamed(*s, beast::error_code(boost::asio::error::broken_pipe));
        s->sent_bytes += static_cast<std::uint64_t>(got);
        s->message.body().data = got > 0 ? s->piece.data() : nullptr;
        s->message.body().size = static_cast<std::size_t>(got);
        s->message.body().more = got > 0;
        lowest().expires_after(options().write_timeout);
        http::async_write(stream_, *s->serializer,
                          [self = this->shared_from_this(), s](beast::error_code ec, std::size_t) {
                              if (ec == http::error::need_buffer) ec = {};
                              if (ec || s->serializer->is_done()) return self->end_streamed(*s, ec);
                              self->write_piece(s);
                          });
    }

    void end_streamed(Streaming& s, beast::error_code ec) {
        if (s.counted) server_->in_flight.fetch_sub(1);
        busy_ = false;
        if (ec == beast::error::timeout) server_->count_timeout(TimeoutPhase::write);
        if (ec) return close();
        if (!s.keep_alive) return drain_and_close();
        read_request(false);
    }

    // Plain: half-close, then discard what the client still sends.  TLS:
    // send close_notify and wait for the client's.  Bounded in time.
    void drain_and_close() {
        lowest().expires_after(kDrainTimeout);
        if constexpr (kTls) {
            stream_.async_shutdown(
                [self = this->shared_from_this()](beast::error_code) { self->close(); });
        } else {
            beast::error_code ec;
            lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
            if (ec) return close();
            drain_buffer_.resize(kDrainBufferBytes);
            drain();
        }
    }

    void drain() {
        lowest().async_read_some(
            net::buffer(drain_buffer_),
            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                if (ec) return self->close();
                self->drain();
            });
    }

    void close() {
        beast::error_code ec;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
        lowest().close();
    }

    Stream stream_;
    std::shared_ptr<HttpServer::Impl> server_;
    ClientSlot slot_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    HttpRequest head_;  // the request being read, from its header on
    std::vector<char> drain_buffer_;
    bool keep_alive_ = true;
    bool busy_ = false;            // a request is being read, handled or answered
    bool stop_requested_ = false;  // the server is shutting down
};

template <class Stream>
bool launch(const std::shared_ptr<HttpServer::Impl>& server, tcp::socket& socket,
            ClientSlot& slot) {
    std::shared_ptr<Session<Stream>> session;
    {
        std::lock_guard lock(server->mutex);
        if (server->stopping) return false;
        if (server->sessions.size() >= server->options.max_connections) {
            server->refused_max_conns.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        session = std::make_shared<Session<Stream>>(std::move(socket), server, std::move(slot));
        server->sessions.emplace(session.get(), session);
    }
    session->start();
    return true;
}

}  // namespace

void launch_session(const std::shared_ptr<HttpServer::Impl>& server, tcp::socket socket,
                    ClientSlot slot) {
    // A connection that is refused closes as `socket` goes out of scope.
    if (server->tls) {
        launch<TlsStream>(server, socket, slot);
    } else {
        launch<PlainStream>(server, socket, slot);
    }
}

}  // namespace keel::daemon
