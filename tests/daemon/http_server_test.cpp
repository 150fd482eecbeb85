// The HTTP server over real loopback sockets (plain POSIX clients, so that
// this test does not compile Beast again).
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <future>
#include <thread>

#include <catch2/catch.hpp>

#include "http_server.hpp"

using namespace keel::daemon;

namespace {

struct Client {
    int fd = -1;
    // From `source` (another loopback address is another client).
    explicit Client(std::uint16_t port, const char* source = nullptr) {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        timeval tv{10, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (source) {
            sockaddr_in from{};
            from.sin_family = AF_INET;
            REQUIRE(::inet_pton(AF_INET, source, &from.sin_addr) == 1);
            REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0);
        }
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~Client() { ::close(fd); }

    void send(const std::string& bytes) {
        std::size_t sent = 0;
        while (sent < bytes.size()) {
            ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
            REQUIRE(n > 0);
            sent += static_cast<std::size_t>(n);
        }
    }

    // Reads one response (status line, headers, Content-Length body).
    // Returns "" on end of stream.
    std::string response() {
        while (buffer.find("\r\n\r\n") == std::string::npos) {
            if (!fill()) return "";
        }
        std::size_t header_end = buffer.find("\r\n\r\n") + 4;
        std::size_t length = 0;
        std::size_t cl = buffer.find("Content-Length: ");
        if (cl != std::string::npos && cl < header_end) length = std::stoul(buffer.substr(cl + 16));
        while (buffer.size() < header_end + length) REQUIRE(fill());
        std::string out = buffer.substr(0, header_end + length);
        buffer.erase(0, header_end + length);
        return out;
    }

    bool fill() {
        char chunk[4096];
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buffer.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    std::string buffer;
};

HttpServerOptions small_limits() {
    HttpServerOptions options;
    options.port = 0;
    options.max_body_bytes = 1024;
    options.max_header_bytes = 2048;
    options.threads = 2;
    return options;
}

void echo(HttpRequest request, Respond respond) {
    HttpResponse response;
    response.body = request.method + " " + request.target + " " + request.body;
    respond(std::move(response));
}

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.rfind(prefix, 0) == 0;
}

// Polls `done` until it holds or 20 s pass (a bound, not a timing).
template <class F>
bool eventually(F done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

// Waits (up to the client's 10 s receive timeout) for the server to close
// the connection: true on end of stream or reset, false on a timeout or data.
bool closed_by_server(Client& client) {
    char byte;
    const ssize_t n = ::recv(client.fd, &byte, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

}  // namespace

TEST_CASE("one keep-alive connection serves several requests", "[daemon][http]") {
    HttpServer server(small_limits(), echo);
    auto port = server.start();
    REQUIRE(port.ok());
    Client client(*port);
    client.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string first = client.response();
    CHECK(starts_with(first, "HTTP/1.1 200 OK\r\n"));
    CHECK(first.find("GET /a ") != std::string::npos);
    client.send("PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    CHECK(client.response().find("PUT /b hello") != std::string::npos);
    server.shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE("a body over the limit gets 413 before it is sent", "[daemon][http]") {
    HttpServer server(small_limits(), echo);
    auto port = server.start();
    REQUIRE(port.ok());
    Client client(*port);
    client.send("PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
    std::string response = client.response();
    CHECK(starts_with(response, "HTTP/1.1 413 "));
    CHECK(response.find("\"error\":\"body_too_large\"") != std::string::npos);
    // At the limit is fine.
    Client ok(*port);
    ok.send("PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n" + std::string(1024, 'b'));
    CHECK(starts_with(ok.response(), "HTTP/1.1 200 "));
    // A chunked body is cut at the limit.
    Client chunked(*port);
    chunked.send("PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
                 std::string(2048, 'c') + "\r\n0\r\n\r\n");
    CHECK(starts_with(chunked.response(), "HTTP/1.1 413 "));
    server.shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE("malformed requests and oversized headers are refused", "[daemon][http]") {
    HttpServer server(small_limits(), echo);
    auto port = server.start();
    REQUIRE(port.ok());
    Client garbage(*port);
    garbage.send("NOT HTTP AT ALL\r\n\r\n");
    CHECK(starts_with(garbage.response(), "HTTP/1.1 400 "));
    Client headers(*port);
    headers.send("GET / HTTP/1.1\r\nX-Big: " + std::string(4096, 'h') + "\r\n\r\n");
    CHECK(starts_with(headers.response(), "HTTP/1.1 431 "));
    // The server still serves.
    Client fine(*port);
    fine.send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(starts_with(fine.response(), "HTTP/1.1 200 "));
    server.shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE("Expect: 100-continue is answered before the body is read", "[daemon][http]") {
    HttpServer server(small_limits(), echo);
    auto port = server.start();
    REQUIRE(port.ok());
    Client client(*port);
    client.send("PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    CHECK(starts_with(client.response(), "HTTP/1.1 100 Continue"));
    client.send("abc");
    CHECK(client.response().find("PUT /e abc") != std::string::npos);
    server.shutdown(std::chrono::milliseconds(1000));
}

namespace {

// A streamed body of `size_bytes` ('a', 'b', ... repeating) whose source
// gives out after `fail_after_bytes` (-1 when it fails, 0 when it ends early).
std::shared_ptr<StreamedBody> lettered_stream(std::uint64_t size_bytes,
                                              std::uint64_t fail_after_bytes, int failure) {
    auto body = std::make_shared<StreamedBody>();
    body->size_bytes = size_bytes;
    auto offset = std::make_shared<std::uint64_t>(0);
    body->read = [offset, fail_after_bytes, failure](char* buffer,
                                                     std::size_t capacity) -> std::ptrdiff_t {
        if (*offset >= fail_after_bytes) return failure;
        const std::uint64_t n = std::min<std::uint64_t>(capacity, fail_after_bytes - *offset);
        for (std::uint64_t i = 0; i < n; ++i)
            buffer[i] = static_cast<char>('a' + (*offset + i) % 26);
        *offset += n;
        return static_cast<std::ptrdiff_t>(n);
    };
    return body;
}

std::string header_block(const std::string& response) {
    return response.substr(0, response.find("\r\n\r\n") + 2);
}

}  // namespace

TEST_CASE("a streamed body arrives whole, in several pieces, and the connection goes on",
          "[daemon][http][stream]") {
    constexpr std::uint64_t kSize = 600 * 1024 + 7;  // more than two of the server's pieces
    HttpServer server(small_limits(), [&](HttpRequest request, Respond respond) {
        if (request.target != "/stream") return echo(std::move(request), std::move(respond));
        HttpResponse response;
        response.content_type = "application/octet-stream";
        response.set_header("X-Snapshot-Index", "42");
        response.stream = lettered_stream(kSize, kSize, 0);
        respond(std::move(response));
    });
    auto port = server.start();
    REQUIRE(port.ok());
    Client client(*port);
    client.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string response = client.response();
    const std::string head = header_block(response);
    CHECK(starts_with(head, "HTTP/1.1 200 OK\r\n"));
    CHECK(head.find("Content-Length: " + std::to_string(kSize) + "\r\n") != std::string::npos);
    CHECK(head.find("Content-Type: application/octet-stream\r\n") != std::string::npos);
    CHECK(head.find("X-Snapshot-Index: 42\r\n") != std::string::npos);
    const std::string body = response.substr(head.size() + 2);
    REQUIRE(body.size() == kSize);
    bool lettered = true;
    for (std::uint64_t i = 0; i < kSize; ++i)
        lettered = lettered && body[i] == static_cast<char>('a' + i % 26);
    CHECK(lettered);
    client.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n");  // keep-alive after a stream
    CHECK(client.response().find("GET /after ") != std::string::npos);
    server.shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE("a streamed body whose source fails or ends short is cut: the connection closes",
          "[daemon][http][stream]") {
    constexpr std::uint64_t kSize = 300 * 1024;
    constexpr std::uint64_t kGiven = 1000;
    for (int failure : {-1, 0}) {
        INFO("the source returns " << failure);
        HttpServer server(small_limits(), [&](HttpRequest, Respond respond) {
            HttpResponse response;
            response.stream = lettered_stream(kSize, kGiven, failure);
            respond(std::move(response));
        });
        auto port = server.start();
        REQUIRE(port.ok());
        Client client(*port);
        client.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
        std::string got;
        char chunk[4096];
        ssize_t n = 0;
        while ((n = ::recv(client.fd, chunk, sizeof chunk, 0)) > 0)
            got.append(chunk, static_cast<std::size_t>(n));
        CHECK((n == 0 || errno == ECONNRESET));  // closed, not the client's receive timeout
        REQUIRE(got.find("\r\n\r\n") != std::string::npos);
        CHECK(header_block(got).find("Content-Length: " + std::to_string(kSize)) !=
              std::string::npos);
        CHECK(got.size() - (got.find("\r\n\r\n") + 4) == kGiven);
        server.shutdown(std::chrono::milliseconds(1000));
    }
}

TEST_CASE("an empty content_type sends no Content-Type; a 204 says no Content-Length",
          "[daemon][http]") {
    HttpServer server(small_limits(), [&](HttpRequest request, Respond respond) {
        HttpResponse response;
        response.content_type.clear();
        if (request.target == "/stream") {
            response.stream = lettered_stream(3, 3, 0);
        } else if (request.target == "/none") {
            response.status = 204;
        } else {
            response.body = "abc";
        }
        respond(std::move(response));
    });
    auto port = server.start();
    REQUIRE(port.ok());
    Client client(*port);
    for (const char* target : {"/plain", "/stream", "/none"}) {
        INFO(target);
        client.send(std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
        const std::string response = client.response();
        const std::string head = header_block(response);
        CHECK(head.find("Content-Type") == std::string::npos);
        if (std::string(target) == "/none") {
            CHECK(starts_with(head, "HTTP/1.1 204 "));
            CHECK(head.find("Content-Length") == std::string::npos);
        } else {
            CHECK(head.find("Content-Length: 3\r\n") != std::string::npos);
            CHECK(response.substr(head.size() + 2) == "abc");
        }
    }
    server.shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE("shutdown finishes in-flight requests and closes idle connections", "[daemon][http]") {
    std::promise<Respond> pending;
    HttpServer server(small_limits(), [&pending](HttpRequest, Respond respond) {
        pending.set_value(std::move(respond));
    });
    auto port = server.start();
    REQUIRE(port.ok());
    Client idle(*port);
    Client busy(*port);
    busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    Respond respond = pending.get_future().get();  // the request is in flight
    auto stopped =
        std::async(std::launch::async, [&] { server.shutdown(std::chrono::milliseconds(5000)); });
    CHECK(idle.response().empty());  // closed without an answer
    HttpResponse answer;
    answer.body = "done";
    respond(answer);
    std::string response = busy.response();
    CHECK(starts_with(response, "HTTP/1.1 200 "));
    CHECK(response.find("Connection: close") != std::string::npos);
    stopped.get();
    // Nothing listens any more.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(*port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0);
    ::close(fd);
}

TEST_CASE("a request whose header does not arrive within header_timeout is closed",
          "[daemon][http][limits]") {
    HttpServerOptions options = small_limits();
    options.header_timeout = std::chrono::milliseconds(300);
    HttpServer server(options, echo);
    auto port = server.start();
    REQUIRE(port.ok());
    Client slow(*port);
    // Trickle a header, a byte at a time, never finishing it: sending keeps
    // no connection alive past the header timeout.
    const std::string partial = "GET /slow HTTP/1.1\r\nHost: x\r\nX-Trickle: ";
    std::atomic<bool> closed{false};
    std::thread trickler([&] {
        for (std::size_t i = 0; !closed; ++i) {
            const char byte = i < partial.size() ? partial[i] : 'a';
            if (::send(slow.fd, &byte, 1, MSG_NOSIGNAL) != 1) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    CHECK(closed_by_server(slow));
    closed = true;
    trickler.join();
    CHECK(eventually([&] { return server.stats().timeouts.at("header") == 1; }));
    // A connection that sends nothing at all is closed too.
    Client silent(*port);
    CHECK(closed_by_server(silent));
    CHECK(eventually([&] { return server.stats().timeouts.at("header") == 2; }));
    server.shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE(
    "a keep-alive connection waits for its next request under idle_timeout, not "
    "header_timeout",
    "[daemon][http][limits]") {
    HttpServerOptions options = small_limits();
    options.header_timeout = std::chrono::milliseconds(100);
    options.idle_timeout = std::chrono::milliseconds(60000);
    HttpServer server(options, echo);
    auto port = server.start();
    REQUIRE(port.ok());
    Client client(*port);
    client.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(starts_with(client.response(), "HTTP/1.1 200 "));
    // Idle for several header timeouts (elapsed time, not a synchronisation).
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    client.send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(starts_with(client.response(), "HTTP/1.1 200 "));
    CHECK(server.stats().timeouts.at("header") == 0);
    server.shutdown(std::chrono::milliseconds(1000));

    options.idle_timeout = std::chrono::milliseconds(100);
    options.header_timeout = std::chrono::milliseconds(60000);
    HttpServer short_idle(options, echo);
    port = short_idle.start();
    REQUIRE(port.ok());
    Client idle(*port);
    idle.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(starts_with(idle.response(), "HTTP/1.1 200 "));
    CHECK(closed_by_server(idle));
    CHECK(eventually([&] { return short_idle.stats().timeouts.at("idle") == 1; }));
    short_idle.shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE("a body that does not arrive within body_timeout is closed", "[daemon][http][limits]") {
    HttpServerOptions options = small_limits();
    options.body_timeout = std::chrono::milliseconds(200);
    HttpServer server(options, echo);
    auto port = server.start();
    REQUIRE(port.ok());
    Client client(*port);
    client.send("PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    CHECK(closed_by_server(client));
    CHECK(eventually([&] { return server.stats().timeouts.at("body") == 1; }));
    server.shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE("one client address holds at most max_connections_per_client", "[daemon][http][limits]") {
    HttpServerOptions options = small_limits();
    options.max_connections_per_client = 2;
    HttpServer server(options, echo);
    auto port = server.start();
    REQUIRE(port.ok());
    Client a(*port, "127.0.0.2"), b(*port, "127.0.0.2");
    for (Client* c : {&a, &b}) {
        c->send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(starts_with(c->response(), "HTTP/1.1 200 "));
    }
    Client third(*port, "127.0.0.2");
    CHECK(closed_by_server(third));
    CHECK(server.stats().connections_refused.at("max_conns_per_client") == 1);
    // Another address is another client.
    Client other(*port, "127.0.0.3");
    other.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(starts_with(other.response(), "HTTP/1.1 200 "));
    // A closed connection frees its place.
    ::shutdown(a.fd, SHUT_RDWR);
    CHECK(eventually([&] { return server.stats().connections == 2; }));
    Client again(*port, "127.0.0.2");
    again.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(starts_with(again.response(), "HTTP/1.1 200 "));
    server.shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE("the gate sees the header before the body; a refusal closes unless there was no body",
          "[daemon][http][gate]") {
    HttpServerOptions options = small_limits();
    std::atomic<int> gated{0};
    options.gate = [&](const HttpRequest& head, const ConnectionInfo& conn) {
        ++gated;
        CHECK(conn.loopback_listener);
        CHECK_FALSE(conn.tls);
        std::optional<HttpResponse> refusal;
        if (head.authorization != "Bearer ok") {
            refusal = HttpResponse{};
            refusal->status = 401;
        }
        return refusal;
    };
    std::string seen_authorization = "unset";
    HttpServer server(options, [&](HttpRequest request, Respond respond) {
        seen_authorization = request.authorization;
        echo(std::move(request), std::move(respond));
    });
    auto port = server.start();
    REQUIRE(port.ok());
    CHECK(server.loopback());
    Client client(*port);
    client.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(starts_with(client.response(), "HTTP/1.1 401 "));
    client.send("GET /a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ok\r\n\r\n");
    CHECK(starts_with(client.response(), "HTTP/1.1 200 "));
    CHECK(seen_authorization.empty());  // handlers never see credentials
    // Refused with its body unread: answered, then closed.
    client.send("PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
    std::string refused = client.response();
    CHECK(starts_with(refused, "HTTP/1.1 401 "));
    CHECK(refused.find("Connection: close") != std::string::npos);
    CHECK(closed_by_server(client));
    CHECK(gated == 3);
    CHECK(server.stats().requests == 1);
    server.shutdown(std::chrono::milliseconds(1000));
}

namespace {

std::size_t open_fds() {
    std::size_t n = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    REQUIRE(dir != nullptr);
    while (::readdir(dir)) ++n;
    ::closedir(dir);
    return n - 3;  // ".", ".." and the DIR's own
}

// Lowers the soft RLIMIT_NOFILE for a scope.
struct FdLimit {
    rlimit saved{};
    explicit FdLimit(rlim_t soft) {
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
        rlimit lowered = saved;
        lowered.rlim_cur = soft;
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    }
    ~FdLimit() { restore(); }
    void restore() { ::setrlimit(RLIMIT_NOFILE, &saved); }
};

}  // namespace

TEST_CASE("out of file descriptors, the acceptor backs off instead of spinning, then serves",
          "[daemon][http][limits]") {
    HttpServer server(small_limits(), echo);
    auto port = server.start();
    REQUIRE(port.ok());
    // Clients' sockets are made first: with the limit at the fds open now,
    // only the server's accept() fails, and keeps failing.
    std::vector<int> fds;
    for (int i = 0; i < 8; ++i) fds.push_back(::socket(AF_INET, SOCK_STREAM, 0));
    FdLimit limit(open_fds());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(*port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const auto start = std::chrono::steady_clock::now();
    for (int fd : fds) REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(eventually([&] { return server.stats().accept_backoffs >= 3; }));
    const auto backoffs = server.stats().accept_backoffs;
    const auto elapsed = std::chrono::steady_clock::now() - start;
    // Timers never fire early: at most one pause per kAcceptBackoffMin.
    CHECK(backoffs <= static_cast<std::uint64_t>(elapsed / kAcceptBackoffMin) + 1);
    limit.restore();
    for (int fd : fds) {
        const std::string request = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(request.size()));
        timeval tv{10, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buffer[16] = {};
        CHECK(::recv(fd, buffer, 12, MSG_WAITALL) == 12);
        CHECK(std::string(buffer, 12) == "HTTP/1.1 200");
        ::close(fd);
    }
    server.shutdown(std::chrono::milliseconds(1000));
}
