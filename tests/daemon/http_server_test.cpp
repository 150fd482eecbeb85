// The HTTP server over real loopback sockets (plain POSIX clients, so that
// this test does not compile Beast again).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include <catch2/catch.hpp>

#include "http_server.hpp"

using namespace keel::daemon;

namespace {

struct Client {
    int fd = -1;
    explicit Client(std::uint16_t port) {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        timeval tv{10, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
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
