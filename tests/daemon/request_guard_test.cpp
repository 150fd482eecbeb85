#include <catch2/catch.hpp>

#include "request_guard.hpp"

using namespace keel::daemon;

namespace {

const std::string kAdmin = "admin-token-0123456789abcdef";
const std::string kWrite = "write-token-0123456789abcdef";
const std::string kRead = "read-token-0123456789abcdef";

struct Fixture {
    Router router;
    std::shared_ptr<TokenStore> tokens;

    explicit Fixture(bool with_tokens) {
        auto done = [](RouteRequest&, Respond respond) { respond({}); };
        router.add("GET", "/healthz", Access::open, done);
        router.add("GET", "/metrics", Access::read, done);
        router.add("GET", "/v1/kv/{key*}", Access::read, done);
        router.add("PUT", "/v1/kv/{key*}", Access::write, done);
        router.add("POST", "/v1/members", Access::admin, done);
        if (with_tokens) {
            tokens = std::make_shared<TokenStore>(*TokenSet::parse(
                "admin " + kAdmin + "\nwrite " + kWrite + "\nread " + kRead + "\n"));
        }
    }
};

HttpRequest head(std::string method, std::string target) {
    HttpRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.host = "127.0.0.1:8080";
    return r;
}

HttpRequest with_body(HttpRequest r, std::string content_type) {
    r.has_body = true;
    r.content_type = std::move(content_type);
    return r;
}

HttpRequest bearer(HttpRequest r, const std::string& token) {
    r.authorization = "Bearer " + token;
    return r;
}

int status_of(const RequestGuard& guard, const HttpRequest& r, bool loopback = true) {
    auto refusal = guard.check(r, ConnectionInfo{loopback, false});
    return refusal ? refusal->status : 200;
}

}  // namespace

TEST_CASE("on a loopback listener only loopback Host names pass, unless allowed",
          "[daemon][guard]") {
    Fixture f(false);
    RequestGuard guard(GuardOptions{{}, {"raftd.internal", "Other.Example:9000"}}, nullptr,
                       f.router);
    auto with_host = [](std::string host) {
        HttpRequest r = head("GET", "/v1/kv/a");
        r.host = std::move(host);
        return r;
    };
    for (const char* ok : {"localhost", "localhost:8080", "LOCALHOST:1", "127.0.0.1", "[::1]",
                           "[::1]:8080", "localhost.", "raftd.internal:443", "other.example"}) {
        INFO(ok);
        CHECK(status_of(guard, with_host(ok)) == 200);
    }
    for (const char* bad : {"", "evil.example", "evil.example:8080", "127.0.0.2", "[::2]:80",
                            "localhost.evil.example", "::1", "[::1", "127.0.0.1.nip.io"}) {
        INFO(bad);
        auto refusal = guard.check(with_host(bad), ConnectionInfo{true, false});
        REQUIRE(refusal);
        CHECK(refusal->status == 403);
        CHECK(refusal->body.find("\"error\":\"forbidden\"") != std::string::npos);
    }
    // Not loopback: any Host (the listener is reached by its own names).
    CHECK(status_of(guard, with_host("evil.example"), false) == 200);
    CHECK(guard.refused().at("host") == 9);
}

TEST_CASE("a request with an Origin passes only if that origin is allowed", "[daemon][guard]") {
    Fixture f(false);
    RequestGuard none(GuardOptions{}, nullptr, f.router);
    RequestGuard some(GuardOptions{{"https://ops.example.com", "http://localhost:3000/"}, {}},
                      nullptr, f.router);
    HttpRequest r = head("GET", "/v1/kv/a");
    CHECK(status_of(none, r) == 200);  // no Origin: not a browser's cross-site request
    for (const char* origin : {"https://evil.example", "null", "https://ops.example.com.evil",
                               "http://ops.example.com"}) {
        r.origin = origin;
        INFO(origin);
        CHECK(status_of(none, r) == 403);
        CHECK(status_of(some, r) == 403);
    }
    r.origin = "https://OPS.example.com";
    CHECK(status_of(none, r) == 403);
    CHECK(status_of(some, r) == 200);
    r.origin = "http://localhost:3000";
    CHECK(status_of(some, r) == 200);
    CHECK(none.refused().at("origin") == 5);
}

TEST_CASE("tokens: 401 without one, 403 below the route's role, through at or above it",
          "[daemon][guard]") {
    Fixture f(true);
    RequestGuard guard(GuardOptions{}, f.tokens, f.router);
    const HttpRequest get = head("GET", "/v1/kv/a?consistency=stale");
    const HttpRequest put = with_body(head("PUT", "/v1/kv/a"), "application/json");
    const HttpRequest add = with_body(head("POST", "/v1/members"), "application/json");
    const HttpRequest metrics = head("GET", "/metrics");
    const HttpRequest health = head("GET", "/healthz");
    const HttpRequest unknown = head("DELETE", "/nowhere");

    for (const HttpRequest* r : {&get, &put, &add, &metrics, &unknown}) {
        auto refusal = guard.check(*r, ConnectionInfo{true, false});
        REQUIRE(refusal);
        CHECK(refusal->status == 401);
        CHECK(refusal->body.find("\"error\":\"unauthorized\"") != std::string::npos);
        REQUIRE(refusal->headers.size() == 1);
        CHECK(refusal->headers[0].first == "WWW-Authenticate");
        CHECK(refusal->headers[0].second.rfind("Bearer", 0) == 0);
    }
    CHECK(status_of(guard, health) == 200);
    CHECK(status_of(guard, bearer(get, "not-a-token-0123456789")) == 401);
    CHECK(status_of(guard, bearer(get, kRead.substr(0, 10))) == 401);

    struct Want {
        const std::string& token;
        int get, put, add, metrics;
    };
    for (const Want& want : {Want{kRead, 200, 403, 403, 200}, Want{kWrite, 200, 200, 403, 200},
                             Want{kAdmin, 200, 200, 200, 200}}) {
        INFO(want.token);
        CHECK(status_of(guard, bearer(get, want.token)) == want.get);
        CHECK(status_of(guard, bearer(put, want.token)) == want.put);
        CHECK(status_of(guard, bearer(add, want.token)) == want.add);
        CHECK(status_of(guard, bearer(metrics, want.token)) == want.metrics);
    }
    auto forbidden = guard.check(bearer(put, kRead), ConnectionInfo{true, false});
    REQUIRE(forbidden);
    CHECK(forbidden->body.find("\"error\":\"forbidden\"") != std::string::npos);
    CHECK(forbidden->body.find(kRead) == std::string::npos);
    // The scheme is case-insensitive; anything but Bearer is no token.
    HttpRequest lower = get;
    lower.authorization = "bearer  " + kRead;
    CHECK(status_of(guard, lower) == 200);
    lower.authorization = "Basic " + kRead;
    CHECK(status_of(guard, lower) == 401);
    // A replaced set takes effect for the next request.
    f.tokens->replace(*TokenSet::parse("read " + kAdmin));
    CHECK(status_of(guard, bearer(put, kAdmin)) == 403);
    CHECK(status_of(guard, bearer(get, kRead)) == 401);
}

TEST_CASE("a body must be application/json; requests without one need no type", "[daemon][guard]") {
    Fixture f(false);
    RequestGuard guard(GuardOptions{}, nullptr, f.router);
    const HttpRequest put = head("PUT", "/v1/kv/a");
    for (const char* type :
         {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "",
          "application/jsonx", "text/json"}) {
        INFO(type);
        auto refusal = guard.check(with_body(put, type), ConnectionInfo{true, false});
        REQUIRE(refusal);
        CHECK(refusal->status == 415);
        CHECK(refusal->body.find("\"error\":\"unsupported_media_type\"") != std::string::npos);
    }
    for (const char* type :
         {"application/json", "application/json; charset=utf-8", "Application/JSON ; x=y"}) {
        INFO(type);
        CHECK(status_of(guard, with_body(put, type)) == 200);
    }
    CHECK(status_of(guard, head("POST", "/v1/members")) == 200);  // no body at all
}

TEST_CASE("a CSRF-shaped request is refused whichever check sees it first", "[daemon][guard]") {
    Fixture f(true);
    RequestGuard guard(GuardOptions{}, f.tokens, f.router);
    HttpRequest csrf = with_body(head("POST", "/v1/members"), "text/plain");
    csrf.origin = "https://evil.example";
    CHECK(status_of(guard, csrf) == 403);
    csrf.origin.clear();
    CHECK(status_of(guard, csrf) == 401);
    CHECK(status_of(guard, bearer(csrf, kAdmin)) == 415);
}

TEST_CASE("Host names and media types parse as browsers send them", "[daemon][guard]") {
    CHECK(host_name_of("Example.COM:8080") == "example.com");
    CHECK(host_name_of("[::1]:80") == "[::1]");
    CHECK(host_name_of("[::1]x").empty());
    CHECK(host_name_of("a:b:c").empty());
    CHECK(host_name_of("  localhost  ") == "localhost");
    CHECK(is_json_media_type("application/json;charset=utf-8"));
    CHECK_FALSE(is_json_media_type("text/plain;application/json"));
}

namespace {

const std::string kMember = "http://127.0.0.1:8082";

std::shared_ptr<const CorsPolicy> members_cors() {
    return std::make_shared<const CorsPolicy>([] {
        return std::vector<std::string>{"http://127.0.0.1:8081", kMember};
    });
}

std::string header(const HttpResponse& response, const std::string& name) {
    for (const auto& [key, value] : response.headers)
        if (key == name) return value;
    return "";
}

HttpRequest preflight(std::string origin) {
    HttpRequest r = head("OPTIONS", "/v1/status");
    r.origin = std::move(origin);
    r.access_control_request_method = "GET";
    return r;
}

}  // namespace

TEST_CASE("a member's origin may read, and only read; a stranger's gets nothing",
          "[daemon][guard][cors]") {
    Fixture f(false);
    RequestGuard guard(GuardOptions{{}, {}, members_cors()}, nullptr, f.router);
    HttpRequest get = head("GET", "/v1/kv/a");
    get.origin = "HTTP://127.0.0.1:8082/";  // compared as normalised
    CHECK(status_of(guard, get) == 200);
    HttpRequest put = with_body(head("PUT", "/v1/kv/a"), "application/json");
    put.origin = kMember;
    auto refusal = guard.check(put, ConnectionInfo{true, false});
    REQUIRE(refusal);
    CHECK(refusal->status == 403);
    CHECK(header(*refusal, "Access-Control-Allow-Origin") == kMember);  // the page can read why
    for (const char* stranger : {"https://127.0.0.1:8082", "http://127.0.0.1:8083",
                                 "http://localhost:8082", "null", "http://127.0.0.1:8082.evil"}) {
        INFO(stranger);
        get.origin = stranger;
        refusal = guard.check(get, ConnectionInfo{true, false});
        REQUIRE(refusal);
        CHECK(refusal->status == 403);
        CHECK(header(*refusal, "Access-Control-Allow-Origin").empty());
        CHECK(header(*refusal, "Vary") == "Origin");
        refusal = guard.check(preflight(stranger), ConnectionInfo{true, false});
        REQUIRE(refusal);
        CHECK(refusal->status == 403);
        for (const auto& [name, value] : refusal->headers)
            CHECK(name.rfind("Access-Control-", 0) == std::string::npos);
    }
    CHECK(guard.refused().at("origin") == 11);
}

TEST_CASE("a member's preflight is answered without a token; its GET needs one",
          "[daemon][guard][cors]") {
    Fixture f(true);
    RequestGuard guard(GuardOptions{{}, {}, members_cors()}, f.tokens, f.router);
    auto answer = guard.check(preflight(kMember), ConnectionInfo{true, false});
    REQUIRE(answer);
    CHECK(answer->status == 204);
    CHECK(answer->body.empty());
    CHECK(answer->content_type.empty());
    CHECK(header(*answer, "Access-Control-Allow-Origin") == kMember);
    CHECK(header(*answer, "Access-Control-Allow-Methods") == "GET");
    CHECK(header(*answer, "Access-Control-Allow-Headers") == "Authorization");
    CHECK(header(*answer, "Access-Control-Max-Age") == "600");
    CHECK(header(*answer, "Vary") == "Origin");
    CHECK(answer->headers.size() == 5);
    // An OPTIONS that is not a preflight (no Access-Control-Request-Method)
    // is not a read.
    HttpRequest options = preflight(kMember);
    options.access_control_request_method.clear();
    CHECK(status_of(guard, options) == 403);
    HttpRequest get = head("GET", "/v1/kv/a");
    get.origin = kMember;
    auto refusal = guard.check(get, ConnectionInfo{true, false});
    REQUIRE(refusal);
    CHECK(refusal->status == 401);
    CHECK(header(*refusal, "Access-Control-Allow-Origin") == kMember);
    CHECK(status_of(guard, bearer(get, kRead)) == 200);
    CHECK(guard.refused().at("unauthorized") == 1);
}

TEST_CASE("--http-allowed-origin keeps its meaning beside the members' origins",
          "[daemon][guard][cors]") {
    Fixture f(false);
    RequestGuard guard(GuardOptions{{"https://ops.example.com"}, {}, members_cors()}, nullptr,
                       f.router);
    HttpRequest put = with_body(head("PUT", "/v1/kv/a"), "application/json");
    put.origin = "https://ops.example.com";
    CHECK(status_of(guard, put) == 200);
    // Its preflight is not answered here (no CORS for it): the router's 405.
    CHECK(status_of(guard, preflight("https://ops.example.com")) == 200);
}
