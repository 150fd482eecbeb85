#include <catch2/catch.hpp>

#include "cors.hpp"
#include "member_origins.hpp"

using namespace keel::daemon;

namespace {

keel::NodeStatus members(std::vector<std::string> http_addresses) {
    keel::NodeStatus status;
    keel::NodeId id = 1;
    for (std::string& address : http_addresses) {
        keel::MemberStatus member;
        member.spec.id = id++;
        member.spec.metadata = std::move(address);
        status.members.push_back(member);
    }
    return status;
}

}  // namespace

TEST_CASE("a member's browser origin is written as browsers write it", "[daemon][cors]") {
    CHECK(browser_origin("http", "127.0.0.1:8081") == "http://127.0.0.1:8081");
    CHECK(browser_origin("https", "Raftd.Example:8443") == "https://raftd.example:8443");
    CHECK(browser_origin("http", "raftd.example:80") == "http://raftd.example");
    CHECK(browser_origin("https", "raftd.example:443") == "https://raftd.example");
    CHECK(browser_origin("https", "raftd.example:80") == "https://raftd.example:80");
    CHECK(browser_origin("http", "[::1]:8080") == "http://[::1]:8080");
    CHECK(browser_origin("http", "[0:0:0:0:0:0:0:1]:8080") == "http://[::1]:8080");
    CHECK(browser_origin("http", "[FE80::A]:80") == "http://[fe80::a]");
    for (const char* bad : {"", "host", "host:", "host:0", "host:70000", "a b:1", "[::1]",
                            "[zz::1]:80", "h\r\nX-Evil: 1:80", "host:80/path"}) {
        INFO(bad);
        CHECK_FALSE(browser_origin("http", bad));
    }
    CHECK_FALSE(browser_origin("ftp", "host:21"));
}

TEST_CASE("the members' origins: each valid address once, in member order", "[daemon][cors]") {
    auto origins = member_origins(
        members({"127.0.0.1:8082", "not an address", "127.0.0.1:8081", "127.0.0.1:8082"}), "https");
    CHECK(origins == std::vector<std::string>{"https://127.0.0.1:8082", "https://127.0.0.1:8081"});
    CHECK(member_origins(keel::NodeStatus{}, "http").empty());
}

TEST_CASE("with_cors adds Vary to every answer, and the origin only for a member",
          "[daemon][cors]") {
    auto cors = std::make_shared<const CorsPolicy>(
        [] { return std::vector<std::string>{"http://127.0.0.1:8081"}; });
    HttpHandler handler = with_cors(cors, [](HttpRequest, Respond respond) { respond({}); });
    auto answer = [&](std::string origin) {
        HttpRequest request;
        request.origin = std::move(origin);
        HttpResponse got;
        handler(request, [&](HttpResponse r) { got = std::move(r); });
        return got.headers;
    };
    using Headers = std::vector<std::pair<std::string, std::string>>;
    CHECK(answer("") == Headers{{"Vary", "Origin"}});
    CHECK(answer("http://evil.example") == Headers{{"Vary", "Origin"}});
    CHECK(answer(" http://127.0.0.1:8081/ ") ==
          Headers{{"Access-Control-Allow-Origin", "http://127.0.0.1:8081"}, {"Vary", "Origin"}});
    CHECK(normal_origin("\tHTTP://A.example/ ") == "http://a.example");
}
