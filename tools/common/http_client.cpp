#include "http_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <exception>
#include <optional>
#include <thread>

namespace keel::http_client {

// One TLS context and the sessions resumed with it: they go together, so
// that a session never crosses to another CA or client certificate.
struct HttpClient::Tls {
    explicit Tls(std::size_t sessions_max)
        : context(boost::asio::ssl::context::tls_client), sessions(sessions_max) {}

    boost::asio::ssl::context context;
    TlsSessionCache sessions;
};

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr std::size_t kDownloadChunkBytes = 64 << 10;
constexpr std::chrono::milliseconds kRetryAfterMax{1000};

// An answer that says "not now" for a reason that passes by itself: no
// leader (an election is under way), or busy (a leadership transfer, a
// queue full).  raftd refuses both before proposing anything.
bool asks_retry(const Response& r) {
    if (r.status == 429) return true;
    return r.status == 503 && r.body.find("\"no_leader\"") != std::string::npos;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

Status io_status(const std::string& what, const beast::error_code& ec) {
    if (ec == beast::error::timeout) return Status(ErrorCode::timeout, what + ": timed out");
    return Status(ErrorCode::io_error, what + ": " + ec.message());
}

// What a request needs besides its stream: shared by the plain and TLS paths.
struct Exchange {
    const Url& url;
    http::request<http::string_body>& request;
    const BodySink* sink;
    std::chrono::milliseconds timeout;               // each piece of a streamed body's
    std::chrono::steady_clock::time_point deadline;  // everything else's
    std::uint64_t body_max_bytes;
    Response response;
    Status status;
};

template <typename Stream>
net::awaitable<void> read_response(Stream& stream, Exchange& x) {
    beast::flat_buffer buffer;
    beast::error_code ec;
    auto& lowest = beast::get_lowest_layer(stream);
    if (!x.sink) {
        http::response_parser<http::string_body> parser;
        parser.body_limit(x.body_max_bytes);
        lowest.expires_at(x.deadline);
        co_await http::async_read(stream, buffer, parser,
                                  net::redirect_error(net::use_awaitable, ec));
        if (ec) {
            x.status = ec == http::error::body_limit
                           ? Status(ErrorCode::too_large, "the answer is too large")
                           : io_status("reading the answer from " + x.url.origin(), ec);
            co_return;
        }
        auto& message = parser.get();
        x.response.status = static_cast<int>(message.result_int());
        for (const auto& field : message) {
            x.response.headers[lower(field.name_string())] = std::string(field.value());
        }
        x.response.body = std::move(message.body());
        co_return;
    }
    // Streamed: the header first, then the body in pieces handed to the sink;
    // the deadline applies to each piece, not to the whole transfer.
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    lowest.expires_at(x.deadline);
    co_await http::async_read_header(stream, buffer, parser,
                                     net::redirect_error(net::use_awaitable, ec));
    if (ec) {
        x.status = io_status("reading the answer from " + x.url.origin(), ec);
        co_return;
    }
    x.response.status = static_cast<int>(parser.get().result_int());
    for (const auto& field : parser.get()) {
        x.response.headers[lower(field.name_string())] = std::string(field.value());
    }
    const std::uint64_t total = parser.content_length().value_or(0);
    const bool to_sink = x.response.status == 200;
    std::array<char, kDownloadChunkBytes> chunk{};
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        lowest.expires_after(x.timeout);
        co_await http::async_read(stream, buffer, parser,
                                  net::redirect_error(net::use_awaitable, ec));
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
            x.status = io_status("reading the answer from " + x.url.origin(), ec);
            co_return;
        }
        const std::size_t got = chunk.size() - parser.get().body().size;
        const std::string_view piece(chunk.data(), got);
        if (!to_sink) {
            if (x.response.body.size() + got > x.body_max_bytes) {
                x.status = Status(ErrorCode::too_large, "the answer is too large");
                co_return;
            }
            x.response.body.append(piece);
        } else if (got > 0 && !(*x.sink)(piece, total)) {
            x.status = Status(ErrorCode::aborted, "the download was abandoned");
            co_return;
        }
    }
}

net::awaitable<void> connect(tcp::resolver& resolver, beast::tcp_stream& stream, Exchange& x) {
    beast::error_code ec;
    auto endpoints = co_await resolver.async_resolve(x.url.host, x.url.port,
                                                     net::redirect_error(net::use_awaitable, ec));
    if (ec) {
        x.status = io_status("cannot resolve " + x.url.host, ec);
        co_return;
    }
    stream.expires_at(x.deadline);
    co_await stream.async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
    if (ec) x.status = io_status("cannot connect to " + x.url.origin(), ec);
}

net::awaitable<void> exchange_plain(Exchange& x) {
    auto executor = co_await net::this_coro::executor;
    tcp::resolver resolver(executor);
    beast::tcp_stream stream(executor);
    co_await connect(resolver, stream, x);
    if (!x.status.ok()) co_return;
    beast::error_code ec;
    stream.expires_at(x.deadline);
    co_await http::async_write(stream, x.request, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
        x.status = io_status("sending to " + x.url.origin(), ec);
        co_return;
    }
    co_await read_response(stream, x);
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
}

// The server's certificate must chain to the CA and name the host we asked
// for (an IP address is matched against the certificate's IP SANs).
Status verify_host(SSL* ssl, const std::string& host) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    beast::error_code ec;
    net::ip::make_address(host, ec);
    const int ok = ec ? X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size())
                      : X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    if (ok != 1) return Status(ErrorCode::invalid_argument, "cannot check the name " + host);
    if (ec && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1)
        return Status(ErrorCode::invalid_argument, "cannot send the server name " + host);
    return Status();
}

// A connected TLS stream whose handshake succeeded, or none (x.status says
// why).  A session kept for the server is offered first; when the handshake
// that offered it fails, one full handshake on a new connection follows (a
// server may fail a resumption it cannot handle instead of ignoring it).
// Each full handshake checks the chain and the host again.
net::awaitable<void> handshake(Exchange& x, HttpClient::Tls& tls, const std::string& key,
                               std::optional<TlsStream>& stream) {
    auto executor = co_await net::this_coro::executor;
    for (bool may_offer = true;; may_offer = false) {
        stream.reset();
        stream.emplace(executor, tls.context);
        tcp::resolver resolver(executor);
        co_await connect(resolver, beast::get_lowest_layer(*stream), x);
        if (!x.status.ok()) break;
        if (Status s = verify_host(stream->native_handle(), x.url.host); !s.ok()) {
            x.status = s;
            break;
        }
        const bool offered = may_offer && tls.sessions.offer(stream->native_handle(), key);
        beast::error_code ec;
        beast::get_lowest_layer(*stream).expires_at(x.deadline);
        co_await stream->async_handshake(ssl::stream_base::client,
                                         net::redirect_error(net::use_awaitable, ec));
        if (!ec) {
            tls.sessions.handshake_done(stream->native_handle());
            co_return;
        }
        tls.sessions.handshake_failed(key, offered);
        x.status = io_status("TLS handshake with " + x.url.origin(), ec);
        if (!offered || ec == beast::error::timeout) break;
        x.status = Status();
    }
    stream.reset();
}

net::awaitable<void> exchange_tls(Exchange& x, HttpClient::Tls& tls) {
    const std::string key = TlsSessionCache::key(x.url.host, x.url.port);
    std::optional<TlsStream> stream;
    co_await handshake(x, tls, key, stream);
    if (!stream) co_return;
    beast::error_code ec;
    beast::get_lowest_layer(*stream).expires_at(x.deadline);
    co_await http::async_write(*stream, x.request, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
        x.status = io_status("sending to " + x.url.origin(), ec);
        co_return;
    }
    co_await read_response(*stream, x);
    if (!x.status.ok()) co_return;
    // Read after the handshake with the answer: a TLS 1.3 server's tickets.
    tls.sessions.keep(stream->native_handle(), key);
    // The answer is complete (its length was known): send our close_notify
    // and close, without waiting for the server's (RFC 8446 §6.1 allows it;
    // waiting cost a round trip and a wakeup of the server per request).
    // Marking the server's as received makes SSL_shutdown finish once ours
    // is written.  Sending it also keeps OpenSSL from marking the session
    // unresumable when the stream is freed.
    SSL_set_shutdown(stream->native_handle(), SSL_RECEIVED_SHUTDOWN);
    beast::get_lowest_layer(*stream).expires_after(std::chrono::milliseconds(200));
    co_await stream->async_shutdown(net::redirect_error(net::use_awaitable, ec));
}

Result<std::shared_ptr<HttpClient::Tls>> make_tls(const ClientOptions& o) {
    auto made = std::make_shared<HttpClient::Tls>(o.tls_sessions_max);
    ssl::context* tls = &made->context;
    beast::error_code ec;
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                     ec);
    if (o.cacert.empty()) {
        tls->set_default_verify_paths(ec);
    } else {
        tls->load_verify_file(o.cacert, ec);
    }
    if (ec)
        return Status(
            ErrorCode::invalid_argument,
            "cannot load the CA " + (o.cacert.empty() ? "store" : o.cacert) + ": " + ec.message());
    tls->set_verify_mode(ssl::verify_peer, ec);
    if (!o.cert.empty() || !o.key.empty()) {
        if (o.cert.empty() || o.key.empty())
            return Status(ErrorCode::invalid_argument, "--cert and --key go together");
        tls->use_certificate_chain_file(o.cert, ec);
        if (ec) return Status(ErrorCode::invalid_argument, o.cert + ": " + ec.message());
        tls->use_private_key_file(o.key, ssl::context::pem, ec);
        if (ec) return Status(ErrorCode::invalid_argument, o.key + ": " + ec.message());
    }
    return made;
}

}  // namespace

std::string Url::origin() const {
    const bool v6 = host.find(':') != std::string::npos;
    return std::string(tls ? "https://" : "http://") + (v6 ? "[" + host + "]" : host) + ":" + port;
}

Result<Url> parse_url(std::string_view text) {
    auto bad = [&](const std::string& why) {
        return Status(ErrorCode::invalid_argument, "'" + std::string(text) + "': " + why);
    };
    Url url;
    std::string_view rest = text;
    if (rest.substr(0, 7) == "http://") {
        rest.remove_prefix(7);
    } else if (rest.substr(0, 8) == "https://") {
        url.tls = true;
        rest.remove_prefix(8);
    } else {
        return bad("expected http://HOST:PORT or https://HOST:PORT");
    }
    const std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    url.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return bad("unclosed '[' in the host");
        url.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return bad("expected ':' after the IPv6 address");
            port = after.substr(1);
        }
    } else {
        const std::size_t colon = authority.rfind(':');
        url.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
        if (colon != std::string_view::npos && port.empty()) return bad("empty port");
    }
    if (url.host.empty()) return bad("no host");
    if (port.empty()) {
        url.port = url.tls ? "443" : "80";
    } else {
        if (port.size() > 5 ||
            !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
            std::stoul(std::string(port)) > 65535 || std::stoul(std::string(port)) == 0)
            return bad("bad port");
        url.port = std::string(port);
    }
    return url;
}

std::string Response::header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(ClientOptions options) : options_(std::move(options)) {
    Result<std::shared_ptr<Tls>> made = make_tls(options_);
    if (made.ok()) {
        tls_ = std::move(made.value());
    } else {
        tls_status_ = made.status();
    }
}

TlsSessionStats HttpClient::tls_sessions() const {
    return tls_ ? tls_->sessions.stats() : TlsSessionStats{};
}

HttpClient HttpClient::with_options(ClientOptions options) const {
    HttpClient copy = *this;
    copy.options_ = std::move(options);
    return copy;
}

Result<Response> HttpClient::send(const Url& origin, std::string_view method,
                                  std::string_view target, std::string_view body,
                                  const BodySink* sink) const {
    http::request<http::string_body> request;
    const http::verb verb = http::string_to_verb(method);
    if (verb == http::verb::unknown)
        return Status(ErrorCode::invalid_argument, "unknown method " + std::string(method));
    request.method(verb);
    request.target(std::string(target));
    request.version(11);
    const bool default_port = origin.port == (origin.tls ? "443" : "80");
    request.set(http::field::host,
                origin.host.find(':') != std::string::npos
                    ? "[" + origin.host + "]" + (default_port ? "" : ":" + origin.port)
                    : origin.host + (default_port ? "" : ":" + origin.port));
    request.set(http::field::user_agent, options_.user_agent);
    request.set(http::field::accept, "application/json");
    if (!options_.token.empty()) {
        request.set(http::field::authorization, "Bearer " + options_.token);
    } else if (!options_.authorization.empty()) {
        request.set(http::field::authorization, options_.authorization);
    }
    if (!body.empty()) {
        request.set(http::field::content_type, "application/json");
        request.body() = std::string(body);
    }
    request.keep_alive(false);
    request.prepare_payload();

    if (origin.tls && !tls_) return tls_status_;
    Exchange x{origin,
               request,
               sink,
               options_.timeout,
               std::chrono::steady_clock::now() + options_.timeout,
               options_.body_max_bytes,
               {},
               {}};
    x.response.origin = origin.origin();
    net::io_context io(1);
    std::exception_ptr failure;
    net::co_spawn(io, origin.tls ? exchange_tls(x, *tls_) : exchange_plain(x),
                  [&failure](std::exception_ptr e) { failure = e; });
    io.run();
    if (failure) {
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            return Status(ErrorCode::io_error, origin.origin() + ": " + e.what());
        }
    }
    if (!x.status.ok()) return x.status;
    return std::move(x.response);
}

Result<Response> HttpClient::call(const Url& origin, std::string_view method,
                                  std::string_view target, std::string_view body,
                                  const BodySink* sink) const {
    Url at = origin;
    std::string path(target);
    int redirects = 0;
    const auto retry_until = std::chrono::steady_clock::now() + options_.retry_wait;
    for (;;) {
        Result<Response> r = send(at, method, path, body, sink);
        if (!r.ok()) return r;
        if (r->status == 307 || r->status == 308) {
            if (++redirects > options_.redirects_max)
                return Status(ErrorCode::aborted,
                              "too many redirects (last to " + r->header("location") + ")");
            Result<Url> next = parse_url(r->header("location"));
            if (!next.ok())
                return Status(ErrorCode::invalid_argument,
                              "bad redirect from " + at.origin() + ": " + next.status().message());
            path = next->target;
            at = *next;
            continue;
        }
        if (!asks_retry(*r) || std::chrono::steady_clock::now() >= retry_until) return r;
        // Ask where we started again: the node we were sent to may be gone.
        at = origin;
        path = std::string(target);
        redirects = 0;
        std::chrono::milliseconds wait{200};
        if (auto retry = r->header("retry-after");
            !retry.empty() && retry.size() < 4 &&
            std::all_of(retry.begin(), retry.end(), ::isdigit))
            wait = std::min(kRetryAfterMax, std::chrono::milliseconds(std::stoi(retry) * 1000));
        // Waiting for a leader to be elected or a transfer to end: the one
        // place keelctl sleeps.
        std::this_thread::sleep_for(wait);
    }
}

}  // namespace keel::http_client
