// raftd --join's probe of the cluster's group count: a member's /healthz
// body read (outside input: anything but the documented answer refused),
// and a member that cannot be reached.  How raftd asks other members
// (member_client.hpp): TLS files loaded at start, an answer capped at its
// limit, credentials passed on only over TLS or to loopback.  HTTPS between real processes:
// raftd_groups_https_test.py.
#include <catch2/catch.hpp>

#include <mutex>

#include "cluster_probe.hpp"
#include "http_server.hpp"
#include "member_client.hpp"

using namespace keel;
using namespace keel::daemon;

namespace {

std::unique_ptr<MemberClient> plain_client() {
    Result<std::unique_ptr<MemberClient>> client = MemberClient::open(MemberClientOptions{});
    REQUIRE(client.ok());
    return std::move(client.value());
}

}  // namespace

TEST_CASE("a /healthz body names the group count, or none without groups", "[daemon][probe]") {
    Result<std::optional<std::size_t>> none = parse_health_groups(R"({"status":"ok"})");
    REQUIRE(none.ok());
    CHECK(!none->has_value());
    Result<std::optional<std::size_t>> six = parse_health_groups(R"({"status":"ok","groups":6})");
    REQUIRE(six.ok());
    CHECK(six->value() == 6);
}

TEST_CASE("a /healthz body that is not raftd's is refused", "[daemon][probe]") {
    for (const char* body : {"", "[]", "not json", R"({"groups":0})", R"({"groups":-3})",
                             R"({"groups":"6"})", R"({"groups":1.5})", R"({"groups":10001})"}) {
        INFO(body);
        Result<std::optional<std::size_t>> parsed = parse_health_groups(body);
        REQUIRE(!parsed.ok());
        CHECK(parsed.status().code() == ErrorCode::corruption);
    }
}

TEST_CASE("a member that cannot be reached is an io_error", "[daemon][probe]") {
    auto client = plain_client();
    // Port 1 on loopback: nothing listens there for an unprivileged test.
    Result<std::optional<std::size_t>> probed =
        probe_group_count(*client, "127.0.0.1:1", std::chrono::milliseconds(2000));
    REQUIRE(!probed.ok());
    CHECK(probed.status().code() == ErrorCode::io_error);
    CHECK(!probe_group_count(*client, "no port", std::chrono::milliseconds(100)).ok());
}

TEST_CASE("a joiner that can ask no member goes on; without --join nothing is asked",
          "[daemon][probe]") {
    auto client = plain_client();
    DaemonConfig config;
    config.join = true;
    config.groups = 4;
    config.members.push_back(MemberSpec{1, "127.0.0.1:2", "127.0.0.1:1", true});
    std::vector<std::pair<LogLevel, std::string>> logged;
    auto log = [&logged](LogLevel level, const std::string& message) {
        logged.emplace_back(level, message);
    };
    CHECK(joiner_matches_cluster(config, *client, std::chrono::milliseconds(2000), log));
    REQUIRE(logged.size() == 2);
    CHECK(logged[0].first == LogLevel::warn);
    CHECK(logged[0].second.find("cannot ask member 1") != std::string::npos);
    CHECK(logged[1].second.find("no member answered") != std::string::npos);
    logged.clear();
    config.join = false;
    CHECK(joiner_matches_cluster(config, *client, std::chrono::milliseconds(2000), log));
    CHECK(logged.empty());
}

TEST_CASE("TLS files that cannot be loaded stop raftd at start, naming the file",
          "[daemon][probe]") {
    MemberClientOptions options;
    options.tls = true;
    options.ca_file = "/nonexistent/members-ca.pem";
    Result<std::unique_ptr<MemberClient>> client = MemberClient::open(options);
    REQUIRE(!client.ok());
    CHECK(client.status().code() == ErrorCode::invalid_argument);
    CHECK(client.status().message().find("/nonexistent/members-ca.pem") != std::string::npos);
    options.ca_file.clear();  // the system's store
    options.cert_file = "/nonexistent/me.pem";
    options.key_file = "/nonexistent/me-key.pem";
    client = MemberClient::open(options);
    REQUIRE(!client.ok());
    CHECK(client.status().message().find("/nonexistent/me.pem") != std::string::npos);
    // Plain HTTP loads nothing.
    options.tls = false;
    CHECK(MemberClient::open(options).ok());
}

TEST_CASE("a client's credentials go to a member only over TLS or to loopback", "[daemon][probe]") {
    for (const char* host : {"127.0.0.1", "127.3.2.1", "::1", "localhost"}) {
        INFO(host);
        CHECK(may_pass_credentials(false, host));
        CHECK(may_pass_credentials(true, host));
    }
    for (const char* host :
         {"10.0.0.2", "192.168.1.5", "::ffff:127.0.0.1", "raftd.example", "2001:db8::1"}) {
        INFO(host);
        CHECK_FALSE(may_pass_credentials(false, host));
        CHECK(may_pass_credentials(true, host));
    }
}

TEST_CASE(
    "a member's answer is read up to body_max_bytes, and a loopback member gets the "
    "client's credentials",
    "[daemon][probe]") {
    std::mutex mu;
    std::string authorization;  // GUARDED_BY(mu): the last request's, as the gate saw it
    HttpServerOptions options;
    options.port = 0;
    options.threads = 1;
    options.gate = [&](const HttpRequest& head, const ConnectionInfo&) {
        std::lock_guard lock(mu);
        authorization = head.authorization;
        return std::optional<HttpResponse>();
    };
    HttpServer server(options, [](HttpRequest request, Respond respond) {
        HttpResponse response;  // "/bytes/N": N bytes
        response.content_type = "text/plain";
        response.body = std::string(std::stoul(request.target.substr(7)), 'x');
        respond(std::move(response));
    });
    Result<std::uint16_t> port = server.start();
    REQUIRE(port.ok());
    auto client = plain_client();
    const std::string address = "127.0.0.1:" + std::to_string(*port);
    constexpr std::uint64_t kMax = 4096;
    Result<HttpAnswer> at = client->get(address, "/bytes/4096", "Bearer at-the-limit",
                                        std::chrono::milliseconds(5000), kMax);
    REQUIRE(at.ok());
    CHECK(at->status == 200);
    CHECK(at->body.size() == kMax);
    {
        std::lock_guard lock(mu);
        CHECK(authorization == "Bearer at-the-limit");
    }
    Result<HttpAnswer> past =
        client->get(address, "/bytes/4097", "", std::chrono::milliseconds(5000), kMax);
    REQUIRE(!past.ok());
    CHECK(past.status().code() == ErrorCode::too_large);
    {
        std::lock_guard lock(mu);
        CHECK(authorization.empty());
    }
    server.shutdown(std::chrono::milliseconds(1000));
}
