// keelctl's HTTP client (tools/common/http_client.hpp): which refusals
// HttpClient::call asks again, and for how long.  A 503 no_leader and a 429
// busy (a leadership transfer, a full queue: raftd refuses both before it
// proposes anything) are asked again until the client's retry_wait; every
// other answer is the caller's at once.  Against raftd's own HTTP server on
// loopback, answering what each case scripts.
#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "http_client.hpp"
#include "http_server.hpp"

using namespace keel;
using namespace keel::daemon;

namespace {

// A server whose n-th request (from 0) is answered with script[n], the
// last entry once the script runs out.  Retry-After: 0, so that a retry
// is asked at once.
class ScriptedServer {
public:
    explicit ScriptedServer(std::vector<std::pair<int, std::string>> script)
        : script_(std::move(script)) {
        HttpServerOptions options;
        options.port = 0;
        options.threads = 1;
        server_ = std::make_unique<HttpServer>(options, [this](HttpRequest, Respond respond) {
            const std::size_t n = requests_.fetch_add(1);
            const auto& [status, body] = script_[std::min(n, script_.size() - 1)];
            HttpResponse response;
            response.status = status;
            response.body = body;
            response.set_header("Retry-After", "0");
            respond(std::move(response));
        });
        Result<std::uint16_t> port = server_->start();
        REQUIRE(port.ok());
        Result<http_client::Url> url =
            http_client::parse_url("http://127.0.0.1:" + std::to_string(*port));
        REQUIRE(url.ok());
        url_ = *url;
    }

    const http_client::Url& url() const { return url_; }
    std::size_t requests() const { return requests_.load(); }

private:
    const std::vector<std::pair<int, std::string>> script_;
    std::atomic<std::size_t> requests_{0};
    std::unique_ptr<HttpServer> server_;  // last: stopped before what its handler uses
    http_client::Url url_;
};

const std::string kBusy = R"({"error":"busy","message":"leadership transfer to 3 in progress"})";
const std::string kNoLeader = R"({"error":"no_leader","message":"no leader"})";

http_client::HttpClient client(std::chrono::milliseconds retry_wait) {
    http_client::ClientOptions options;
    options.retry_wait = retry_wait;
    return http_client::HttpClient(options);
}

}  // namespace

TEST_CASE("a 429 busy and a 503 no_leader are asked again until the answer", "[http_client]") {
    ScriptedServer server({{429, kBusy}, {503, kNoLeader}, {429, kBusy}, {200, "done"}});
    Result<http_client::Response> answer =
        client(std::chrono::seconds(30)).call(server.url(), "PUT", "/v1/kv/a", "{}");
    REQUIRE(answer.ok());
    CHECK(answer->status == 200);
    CHECK(answer->body == "done");
    CHECK(server.requests() == 4);
}

TEST_CASE("a refusal still asking to be retried after retry_wait is the answer",
          "[http_client]") {
    ScriptedServer server({{429, kBusy}});
    Result<http_client::Response> answer =
        client(std::chrono::milliseconds(0)).call(server.url(), "PUT", "/v1/kv/a", "{}");
    REQUIRE(answer.ok());
    CHECK(answer->status == 429);
    CHECK(server.requests() == 1);
}

TEST_CASE("other refusals are answered at once", "[http_client]") {
    const int status = GENERATE(400, 404, 409, 500, 507);
    ScriptedServer server({{status, R"({"error":"x"})"}, {200, "done"}});
    Result<http_client::Response> answer =
        client(std::chrono::seconds(30)).call(server.url(), "PUT", "/v1/kv/a", "{}");
    REQUIRE(answer.ok());
    CHECK(answer->status == status);
    CHECK(server.requests() == 1);
}

TEST_CASE("a 503 that is not no_leader (a write whose fate is unknown) is not retried",
          "[http_client]") {
    ScriptedServer server({{503, R"({"error":"aborted","message":"lost leadership"})"},
                           {200, "done"}});
    Result<http_client::Response> answer =
        client(std::chrono::seconds(30)).call(server.url(), "PUT", "/v1/kv/a", "{}");
    REQUIRE(answer.ok());
    CHECK(answer->status == 503);
    CHECK(server.requests() == 1);
}
