#include <stdexcept>

#include <catch2/catch.hpp>

#include "router.hpp"

using namespace keel::daemon;

namespace {

HttpResponse dispatch(const Router& router, std::string method, std::string target) {
    HttpResponse out;
    out.status = -1;
    router.dispatch({std::move(method), std::move(target), "", ""},
                    [&](HttpResponse r) { out = r; });
    return out;
}

}  // namespace

TEST_CASE("routes capture one segment or the rest of the path, decoded", "[daemon][router]") {
    Router router;
    std::string seen;
    router.add("GET", "/v1/members/{id}/promote", Access::read, [&](RouteRequest& r, Respond done) {
        seen = "promote " + r.params.at("id");
        done({});
    });
    router.add("GET", "/v1/kv/{key*}", Access::read, [&](RouteRequest& r, Respond done) {
        seen = "kv " + r.params.at("key") + " q=" + (r.query.count("q") ? r.query.at("q") : "");
        done({});
    });
    CHECK(dispatch(router, "GET", "/v1/members/7/promote").status == 200);
    CHECK(seen == "promote 7");
    CHECK(dispatch(router, "GET", "/v1/kv/a/b%2Fc?q=x+y%21").status == 200);
    CHECK(seen == "kv a/b/c q=x y!");
    CHECK(dispatch(router, "GET", "/v1/members/7").status == 404);
    CHECK(dispatch(router, "GET", "/v1/members//promote").status == 404);
}

TEST_CASE("unknown paths are 404, known paths with another method 405", "[daemon][router]") {
    Router router;
    router.add("GET", "/a", Access::read, [](RouteRequest&, Respond done) { done({}); });
    router.add("PUT", "/a", Access::read, [](RouteRequest&, Respond done) { done({}); });
    CHECK(dispatch(router, "GET", "/b").status == 404);
    auto r = dispatch(router, "DELETE", "/a");
    CHECK(r.status == 405);
    REQUIRE(r.headers.size() == 1);
    CHECK(r.headers[0] == std::pair<std::string, std::string>{"Allow", "GET, PUT"});
    CHECK(dispatch(router, "GET", "*").status == 400);
}

TEST_CASE("a handler that throws answers 500, once", "[daemon][router]") {
    Router router;
    router.add("GET", "/boom", Access::read,
               [](RouteRequest&, Respond) -> void { throw std::runtime_error("x"); });
    router.add("GET", "/late", Access::read, [](RouteRequest&, Respond done) -> void {
        done({});
        throw std::runtime_error("after answering");
    });
    CHECK(dispatch(router, "GET", "/boom").status == 500);
    int answers = 0;
    router.dispatch({"GET", "/late", "", ""}, [&](HttpResponse) { ++answers; });
    CHECK(answers == 1);
}

TEST_CASE("each route names its access; unrouted requests need read", "[daemon][router]") {
    Router router;
    auto done = [](RouteRequest&, Respond respond) { respond({}); };
    router.add("GET", "/healthz", Access::open, done);
    router.add("PUT", "/v1/kv/{key*}", Access::write, done);
    router.add("GET", "/v1/kv/{key*}", Access::read, done);
    router.add("POST", "/v1/members/{id}/promote", Access::admin, done);
    CHECK(router.access("GET", "/healthz") == Access::open);
    CHECK(router.access("GET", "/healthz?x=1") == Access::open);
    CHECK(router.access("PUT", "/v1/kv/a/b") == Access::write);
    CHECK(router.access("GET", "/v1/kv/a?consistency=stale") == Access::read);
    CHECK(router.access("POST", "/v1/members/3/promote") == Access::admin);
    CHECK(router.access("POST", "/healthz") == Access::read);    // 405
    CHECK(router.access("GET", "/nothing") == Access::read);     // 404
    CHECK(router.access("GET", "*") == Access::read);            // 400
    CHECK(router.access("DELETE", "/v1/kv/a") == Access::read);  // 405
}

TEST_CASE("percent-decoding rejects malformed escapes", "[daemon][router]") {
    CHECK(percent_decode("a%20b", false) == "a b");
    CHECK(percent_decode("a+b", false) == "a+b");
    CHECK(percent_decode("a+b", true) == "a b");
    CHECK_FALSE(percent_decode("%", false));
    CHECK_FALSE(percent_decode("%4", false));
    CHECK_FALSE(percent_decode("%zz", false));
    CHECK(parse_query("a=1&&b=&c")->size() == 3);
}
