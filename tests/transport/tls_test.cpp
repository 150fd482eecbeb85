// TlsContext and TlsSession without sockets: two sessions pumped into each
// other in memory; what loading refuses; what each side sees when a
// certificate is missing or from another CA.
#include <catch2/catch.hpp>

#include <openssl/ssl.h>

#include <string>

#include "tcp_support.hpp"

using namespace keel;
using namespace keel::transport;
using namespace keel::transport::testing;

namespace {

// Moves bytes between a client and a server until neither has output left
// or one fails; returns each side's last handshake result.
struct Pump {
    TlsSession client;
    TlsSession server;
    Result<TlsSession::Handshake> client_state = TlsSession::Handshake::in_progress;
    Result<TlsSession::Handshake> server_state = TlsSession::Handshake::in_progress;

    Pump(std::shared_ptr<const TlsContext> c, std::shared_ptr<const TlsContext> s)
        : client(std::move(c), TlsSession::Role::client),
          server(std::move(s), TlsSession::Role::server) {}

    void run() {
        for (int round = 0; round < 10; ++round) {
            if (client_state.ok() && *client_state == TlsSession::Handshake::in_progress)
                client_state = client.handshake();
            std::string to_server;
            client.take_output(to_server);
            server.put_received(to_server);
            if (server_state.ok() && *server_state == TlsSession::Handshake::in_progress)
                server_state = server.handshake();
            std::string to_client;
            server.take_output(to_client);
            client.put_received(to_client);
            if (to_server.empty() && to_client.empty()) return;
        }
    }
};

bool done(const Result<TlsSession::Handshake>& r) {
    return r.ok() && *r == TlsSession::Handshake::done;
}

}  // namespace

TEST_CASE("two members complete a handshake and exchange records both ways", "[transport][tls]") {
    Pump p(pki().member, pki().member);
    p.run();
    REQUIRE(done(p.client_state));
    REQUIRE(done(p.server_state));
    CHECK(p.server.peer_subject() == "/CN=member");

    // A frame larger than one record (16 KiB), split across several puts.
    const std::string frame = random_bytes(50000, 7);
    std::string wire;
    REQUIRE(p.client.encrypt(frame, wire).ok());
    CHECK(wire.size() > frame.size());
    std::string got;
    for (std::size_t at = 0; at < wire.size(); at += 1000) {
        p.server.put_received(std::string_view(wire).substr(at, 1000));
        for (;;) {
            char buf[3000];
            Result<std::size_t> n = p.server.decrypt(buf, sizeof buf);
            REQUIRE(n.ok());
            if (*n == 0) break;
            got.append(buf, *n);
        }
    }
    CHECK(got == frame);
    // Nothing else flows after the handshake: no session tickets.
    CHECK_FALSE(p.server.has_output());
}

TEST_CASE("a certificate from another CA is refused by the server, and the client hears why",
          "[transport][tls]") {
    Pump p(pki().stranger, pki().member);
    p.run();
    // TLS 1.3: the client is done before the server has judged its certificate.
    CHECK(done(p.client_state));
    REQUIRE_FALSE(p.server_state.ok());
    const std::string why = p.server_state.status().message();
    INFO(why);
    CHECK(why.find("TLS handshake failed") != std::string::npos);
    CHECK(why.find("unable to get local issuer certificate (not signed by our CA)") !=
          std::string::npos);
    char buf[64];
    Result<std::size_t> alert = p.client.decrypt(buf, sizeof buf);
    REQUIRE_FALSE(alert.ok());
    INFO(alert.status().message());
    CHECK(alert.status().message().find("unknown ca") != std::string::npos);
}

TEST_CASE("a server with a certificate from another CA is refused by the client",
          "[transport][tls]") {
    Pump p(pki().member, pki().stranger);
    p.run();
    REQUIRE_FALSE(p.client_state.ok());
    INFO(p.client_state.status().message());
    CHECK(p.client_state.status().message().find("certificate verify failed") != std::string::npos);
    CHECK_FALSE(done(p.server_state));
}

TEST_CASE("a client without a certificate is refused", "[transport][tls]") {
    // A bare OpenSSL client that trusts the members' CA but has no certificate.
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    REQUIRE(SSL_CTX_load_verify_locations(ctx, pki().ca.cert_path().c_str(), nullptr) == 1);
    SSL* ssl = SSL_new(ctx);
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, in, out);
    SSL_set_connect_state(ssl);
    TlsSession server(pki().member, TlsSession::Role::server);
    Result<TlsSession::Handshake> server_state = TlsSession::Handshake::in_progress;
    for (int round = 0; round < 10 && server_state.ok(); ++round) {
        (void)SSL_do_handshake(ssl);
        char buf[16384];
        int n = 0;
        while ((n = BIO_read(out, buf, sizeof buf)) > 0) server.put_received({buf, std::size_t(n)});
        server_state = server.handshake();
        std::string back;
        server.take_output(back);
        BIO_write(in, back.data(), static_cast<int>(back.size()));
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    REQUIRE_FALSE(server_state.ok());
    INFO(server_state.status().message());
    CHECK(server_state.status().message().find("certificate") != std::string::npos);
}

TEST_CASE("bytes that are not TLS fail the server's handshake", "[transport][tls]") {
    TlsSession server(pki().member, TlsSession::Role::server);
    server.put_received(encode_hello(Hello{kCluster, 1, ""}));
    Result<TlsSession::Handshake> r = server.handshake();
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("TLS handshake failed") != std::string::npos);
}

TEST_CASE("loading refuses what peers would refuse, naming the file", "[transport][tls]") {
    TestPki& p = pki();
    TempDir dir;
    auto check_refused = [](const TlsFiles& files, const std::string& needle) {
        Result<std::shared_ptr<const TlsContext>> r = TlsContext::load(files);
        REQUIRE_FALSE(r.ok());
        INFO(r.status().message());
        CHECK(r.status().message().find(needle) != std::string::npos);
    };
    TlsFiles missing = p.member_files;
    missing.cert_file = dir.sub("nope.crt");
    check_refused(missing, "nope.crt");
    TlsFiles half = p.member_files;
    half.ca_file.clear();
    check_refused(half, "needs a certificate, its key and the CA");
    TlsFiles wrong_key = p.member_files;
    wrong_key.key_file = p.stranger_files.key_file;
    check_refused(wrong_key, "key values mismatch");
    TlsFiles wrong_ca = p.member_files;
    wrong_ca.ca_file = p.other_ca.cert_path();
    check_refused(wrong_ca, "does not chain to the CA");
    auto expired = p.ca.issue("expired", -40, 30);
    check_refused(TlsFiles{expired.cert_file, expired.key_file, p.ca.cert_path()}, "has expired");
    auto early = p.ca.issue("early", 2, 30);
    check_refused(TlsFiles{early.cert_file, early.key_file, p.ca.cert_path()}, "not valid yet");
    write_file(dir.sub("junk.pem"), "not a certificate");
    TlsFiles junk = p.member_files;
    junk.ca_file = dir.sub("junk.pem");
    check_refused(junk, "junk.pem");
    CHECK(TlsContext::load(p.member_files).ok());
}
