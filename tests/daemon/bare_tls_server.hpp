// tests/daemon/bare_tls_server.hpp — an HTTPS server of raw OpenSSL on one
// thread, set up as raftd's was before decision 0046: a client certificate
// required and verified, and no session id context, so that OpenSSL fails
// (fatally, instead of ignoring it) a handshake offering a session.  Every
// connection that completes a handshake and sends a request header gets
// "200 ok" and is closed.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "keel/assert.hpp"

namespace keel::test {

class BareTlsServer {
public:
    BareTlsServer(const std::string& cert_file, const std::string& key_file,
                  const std::string& client_ca_file) {
        ctx_ = SSL_CTX_new(TLS_server_method());
        KEEL_ASSERT(ctx_ != nullptr, "SSL_CTX_new");
        KEEL_ASSERT(SSL_CTX_use_certificate_chain_file(ctx_, cert_file.c_str()) == 1, "cert");
        KEEL_ASSERT(SSL_CTX_use_PrivateKey_file(ctx_, key_file.c_str(), SSL_FILETYPE_PEM) == 1,
                    "key");
        KEEL_ASSERT(SSL_CTX_load_verify_locations(ctx_, client_ca_file.c_str(), nullptr) == 1,
                    "client CA");
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        KEEL_ASSERT(listener_ >= 0, "socket");
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof addr;
        KEEL_ASSERT(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), length) == 0, "bind");
        KEEL_ASSERT(::listen(listener_, 16) == 0, "listen");
        KEEL_ASSERT(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &length) == 0,
                    "getsockname");
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }

    ~BareTlsServer() {
        ::shutdown(listener_, SHUT_RDWR);  // wakes accept()
        thread_.join();
        ::close(listener_);
        SSL_CTX_free(ctx_);
    }

    BareTlsServer(const BareTlsServer&) = delete;
    BareTlsServer& operator=(const BareTlsServer&) = delete;

    std::uint16_t port() const { return port_; }
    // Handshakes that succeeded and that failed so far.
    int accepted() const { return accepted_.load(); }
    int failed() const { return failed_.load(); }

private:
    void serve() {
        for (;;) {
            const int fd = ::accept(listener_, nullptr, nullptr);
            if (fd < 0) return;  // shut down
            timeval tv{10, 0};   // a bound on a client that stalls, not a timing
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            SSL* ssl = SSL_new(ctx_);
            SSL_set_fd(ssl, fd);
            if (SSL_accept(ssl) == 1) {
                accepted_.fetch_add(1);
                answer(ssl);
                SSL_shutdown(ssl);
            } else {
                failed_.fetch_add(1);
                ERR_clear_error();
            }
            SSL_free(ssl);
            ::close(fd);
        }
    }

    static void answer(SSL* ssl) {
        std::string request;
        char chunk[1024];
        while (request.find("\r\n\r\n") == std::string::npos) {
            const int n = SSL_read(ssl, chunk, sizeof chunk);
            if (n <= 0) return;
            request.append(chunk, static_cast<std::size_t>(n));
        }
        const std::string response =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
            "Connection: close\r\n\r\nok";
        SSL_write(ssl, response.data(), static_cast<int>(response.size()));
    }

    SSL_CTX* ctx_ = nullptr;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<int> accepted_{0};
    std::atomic<int> failed_{0};
    std::thread thread_;  // last: starts once the rest is set
};

}  // namespace keel::test
