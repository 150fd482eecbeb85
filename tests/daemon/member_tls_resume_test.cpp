// raftd asking other members over HTTPS resumes their TLS sessions
// (tools/common/tls_session_cache.hpp, docs/decisions/0046): against
// raftd's own HTTP server with client certificates required, what is
// resumed, and that a kept session never lets a check be skipped — not for
// another host name of the same member, not for a member that now presents
// another certificate, not for a client with another CA or no client
// certificate.  Real TLS over loopback, certificates of test_certs.hpp.
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "../common/temp_dir.hpp"
#include "../common/test_certs.hpp"
#include "bare_tls_server.hpp"
#include "http_client.hpp"
#include "http_server.hpp"
#include "member_client.hpp"

using namespace keel;
using namespace keel::daemon;

namespace {

constexpr std::chrono::milliseconds kTimeout{10000};

// A CA, and "localhost" certificates signed by it for a member's server and
// client sides (CN only: OpenSSL checks a DNS name against the CN when the
// certificate has no DNS SAN, and no IP address against it).
struct Certs {
    test::TempDir dir{"keel-tls-resume"};
    test::TestCa ca{dir.path(), "members"};
    test::TempDir other_dir{"keel-tls-resume-other"};  // its "localhost" files apart
    test::TestCa other_ca{other_dir.path(), "others"};
    test::TestCa::Member member = ca.issue("localhost");
    test::TestCa::Member elsewhere = ca.issue("elsewhere.example");
    test::TestCa::Member other_member = other_ca.issue("localhost");
};

// raftd's HTTP server over TLS with `server` as its certificate, requiring
// client certificates from `client_ca`, on `port` (0: any).
std::unique_ptr<HttpServer> tls_server(const test::TestCa::Member& server,
                                       const std::string& client_ca, std::uint16_t port = 0) {
    HttpServerOptions options;
    options.port = port;
    options.threads = 2;
    options.tls_cert_file = server.cert_file;
    options.tls_key_file = server.key_file;
    options.tls_client_ca_file = client_ca;
    auto made = std::make_unique<HttpServer>(options, [](HttpRequest, Respond respond) {
        HttpResponse response;
        response.content_type = "text/plain";
        response.body = "ok";
        respond(std::move(response));
    });
    return made;
}

std::uint16_t start(HttpServer& server) {
    Result<std::uint16_t> port = server.start();
    REQUIRE(port.ok());
    return *port;
}

std::unique_ptr<MemberClient> member_client(const std::string& ca, const test::TestCa::Member* me) {
    MemberClientOptions options;
    options.tls = true;
    options.ca_file = ca;
    if (me) {
        options.cert_file = me->cert_file;
        options.key_file = me->key_file;
    }
    Result<std::unique_ptr<MemberClient>> client = MemberClient::open(options);
    REQUIRE(client.ok());
    return std::move(client.value());
}

Result<HttpAnswer> ask(const MemberClient& client, const std::string& address) {
    return client.get(address, "/healthz", "", kTimeout, 1024);
}

// A member's address by name, and the port alone.
std::string localhost(std::uint16_t port) {
    return "localhost:" + std::to_string(port);
}

}  // namespace

TEST_CASE("a member asked again over HTTPS resumes its TLS session, client certificates required",
          "[daemon][tls]") {
    Certs certs;
    auto server = tls_server(certs.member, certs.ca.cert_path());
    const std::uint16_t port = start(*server);
    auto client = member_client(certs.ca.cert_path(), &certs.member);
    for (int i = 0; i < 4; ++i) {
        INFO(i);
        Result<HttpAnswer> answer = ask(*client, localhost(port));
        REQUIRE(answer.ok());
        CHECK(answer->status == 200);
    }
    const http_client::TlsSessionStats stats = client->tls_sessions();
    CHECK(stats.handshakes == 4);
    CHECK(stats.offered == 3);
    CHECK(stats.resumed == 3);
    CHECK(stats.refused == 0);
    CHECK(stats.entries == 1);
    server->shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE("a session kept for a member's host name is not offered to its IP address",
          "[daemon][tls]") {
    Certs certs;
    auto server = tls_server(certs.member, certs.ca.cert_path());
    const std::uint16_t port = start(*server);
    auto client = member_client(certs.ca.cert_path(), &certs.member);
    REQUIRE(ask(*client, localhost(port)).ok());
    // The same server, but its certificate names no IP address: a full
    // handshake, and the address is refused.
    Result<HttpAnswer> by_address = ask(*client, "127.0.0.1:" + std::to_string(port));
    REQUIRE(!by_address.ok());
    CHECK(by_address.status().code() == ErrorCode::io_error);
    CHECK(by_address.status().message().find("certificate verify failed") != std::string::npos);
    CHECK(client->tls_sessions().offered == 0);
    CHECK(ask(*client, localhost(port)).ok());
    CHECK(client->tls_sessions().resumed == 1);
    server->shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE(
    "a member that now presents a certificate for another host or from another CA is refused, "
    "though its session was kept",
    "[daemon][tls]") {
    Certs certs;
    auto server = tls_server(certs.member, certs.ca.cert_path());
    const std::uint16_t port = start(*server);
    auto client = member_client(certs.ca.cert_path(), &certs.member);
    REQUIRE(ask(*client, localhost(port)).ok());
    server->shutdown(std::chrono::milliseconds(1000));
    // Another process on the member's address cannot resume the session
    // (its ticket keys are its own): the full handshake checks what it shows.
    for (const test::TestCa::Member* impostor : {&certs.elsewhere, &certs.other_member}) {
        INFO(impostor->cert_file);
        auto other = tls_server(*impostor, certs.ca.cert_path(), port);
        REQUIRE(start(*other) == port);
        const std::uint64_t offered = client->tls_sessions().offered;
        Result<HttpAnswer> answer = ask(*client, localhost(port));
        REQUIRE(!answer.ok());
        CHECK(answer.status().message().find("certificate verify failed") != std::string::npos);
        CHECK(client->tls_sessions().resumed == 0);
        // The kept session was offered to the first impostor (and dropped
        // when its handshake failed): the check held with it.
        if (impostor == &certs.elsewhere) CHECK(client->tls_sessions().offered == offered + 1);
        other->shutdown(std::chrono::milliseconds(1000));
    }
}

TEST_CASE("a client with another CA, or without a client certificate, never resumes another's",
          "[daemon][tls]") {
    Certs certs;
    auto server = tls_server(certs.member, certs.ca.cert_path());
    const std::uint16_t port = start(*server);
    auto client = member_client(certs.ca.cert_path(), &certs.member);
    REQUIRE(ask(*client, localhost(port)).ok());
    REQUIRE(ask(*client, localhost(port)).ok());
    REQUIRE(client->tls_sessions().resumed == 1);
    // Trusting another CA: the member's certificate does not verify.
    auto distrusting = member_client(certs.other_ca.cert_path(), &certs.member);
    Result<HttpAnswer> answer = ask(*distrusting, localhost(port));
    REQUIRE(!answer.ok());
    CHECK(answer.status().message().find("certificate verify failed") != std::string::npos);
    // No client certificate: the member refuses the handshake.
    auto anonymous = member_client(certs.ca.cert_path(), nullptr);
    CHECK(!ask(*anonymous, localhost(port)).ok());
    for (const MemberClient* c : {distrusting.get(), anonymous.get()}) {
        CHECK(c->tls_sessions().offered == 0);
        CHECK(c->tls_sessions().resumed == 0);
    }
    server->shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE("a client keeps the sessions of at most tls_sessions_max servers, the least recent out",
          "[daemon][tls]") {
    Certs certs;
    auto a = tls_server(certs.member, certs.ca.cert_path());
    auto b = tls_server(certs.member, certs.ca.cert_path());
    const std::uint16_t port_a = start(*a);
    const std::uint16_t port_b = start(*b);
    http_client::ClientOptions options;  // keelctl's client, raftd's too
    options.cacert = certs.ca.cert_path();
    options.cert = certs.member.cert_file;
    options.key = certs.member.key_file;
    options.tls_sessions_max = 1;
    http_client::HttpClient client(options);
    auto get_from = [](const http_client::HttpClient& c, std::uint16_t port) {
        Result<http_client::Url> url = http_client::parse_url("https://" + localhost(port));
        REQUIRE(url.ok());
        Result<http_client::Response> r = c.send(*url, "GET", "/healthz");
        REQUIRE(r.ok());
        CHECK(r->status == 200);
    };
    auto get = [&](std::uint16_t port) { get_from(client, port); };
    get(port_a);
    get(port_b);  // drops a's session
    get(port_a);
    CHECK(client.tls_sessions().offered == 0);
    CHECK(client.tls_sessions().entries == 1);
    get(port_a);
    CHECK(client.tls_sessions().resumed == 1);

    options.tls_sessions_max = 0;
    http_client::HttpClient keeps_none(options);
    get_from(keeps_none, port_a);
    get_from(keeps_none, port_a);
    CHECK(keeps_none.tls_sessions().handshakes == 2);
    CHECK(keeps_none.tls_sessions().resumed == 0);
    CHECK(keeps_none.tls_sessions().entries == 0);
    a->shutdown(std::chrono::milliseconds(1000));
    b->shutdown(std::chrono::milliseconds(1000));
}

TEST_CASE("a member that fails a resumed handshake is asked again with a full one",
          "[daemon][tls]") {
    Certs certs;
    // As raftd before 0046: client certificates required, no session id
    // context, so offering a session fails the handshake.
    test::BareTlsServer old(certs.member.cert_file, certs.member.key_file, certs.ca.cert_path());
    auto client = member_client(certs.ca.cert_path(), &certs.member);
    for (int i = 0; i < 3; ++i) {
        INFO(i);
        Result<HttpAnswer> answer = ask(*client, localhost(old.port()));
        REQUIRE(answer.ok());
        CHECK(answer->status == 200);
    }
    const http_client::TlsSessionStats stats = client->tls_sessions();
    CHECK(stats.offered == 2);
    CHECK(stats.refused == 2);
    CHECK(stats.resumed == 0);
    CHECK(old.failed() == 2);
    CHECK(old.accepted() == 3);
}

TEST_CASE("threads asking a member at once share its kept session", "[daemon][tls]") {
    Certs certs;
    auto server = tls_server(certs.member, certs.ca.cert_path());
    const std::uint16_t port = start(*server);
    auto client = member_client(certs.ca.cert_path(), &certs.member);
    REQUIRE(ask(*client, localhost(port)).ok());
    constexpr int kThreads = 4;
    constexpr int kCalls = 5;
    std::atomic<int> answered{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < kCalls; ++i) {
                Result<HttpAnswer> answer = ask(*client, localhost(port));
                if (answer.ok() && answer->status == 200) answered.fetch_add(1);
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(answered.load() == kThreads * kCalls);
    CHECK(client->tls_sessions().resumed == kThreads * kCalls);
    server->shutdown(std::chrono::milliseconds(1000));
}
