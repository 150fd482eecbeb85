#include <memory>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "fake_node.hpp"
#include "handlers.hpp"
#include "status_page.hpp"

using keel::ErrorCode;
using keel::Status;
using nlohmann::json;
using namespace keel::daemon;

namespace {

struct Harness {
    std::shared_ptr<KvStateMachine> kv = std::make_shared<KvStateMachine>();
    testing::FakeNode node{kv};
    HandlerContext context{node, *kv, HandlerLimits{}, [](std::function<void()> f) { f(); }};
    Router router;

    Harness() {
        context.limits.max_value_bytes = 1000;
        context.limits.max_key_bytes = 64;
        add_kv_routes(router, context);
        add_admin_routes(router, context);
    }

    HttpResponse call(std::string method, std::string target, std::string body = "") {
        HttpResponse out;
        out.status = -1;
        router.dispatch(HttpRequest{std::move(method), std::move(target), std::move(body), ""},
                        [&out](HttpResponse r) { out = std::move(r); });
        REQUIRE(out.status != -1);  // the fake completes inline
        return out;
    }
};

// {"value":"vvv..."} with n bytes of value.
std::string value_body(std::size_t n) {
    std::string body = R"({"value":")";
    body.append(n, 'v');
    body += "\"}";
    return body;
}

json body_of(const HttpResponse& r) {
    return json::parse(r.body);
}

std::string header(const HttpResponse& r, const std::string& name) {
    for (const auto& [n, v] : r.headers) {
        if (n == name) return v;
    }
    return "";
}

}  // namespace

TEST_CASE("PUT then GET returns the value and the revision of the change", "[daemon][kv]") {
    Harness h;
    auto put = h.call("PUT", "/v1/kv/a", R"({"value":"1"})");
    REQUIRE(put.status == 200);
    CHECK(body_of(put) == json{{"key", "a"}, {"revision", 1}});
    auto get = h.call("GET", "/v1/kv/a");
    REQUIRE(get.status == 200);
    CHECK(body_of(get) == json{{"key", "a"}, {"value", "1"}, {"revision", 1}});
    CHECK(h.call("GET", "/v1/kv/a?consistency=stale").status == 200);
    CHECK(h.call("GET", "/v1/kv/missing").status == 404);
    CHECK(body_of(h.call("GET", "/v1/kv/missing"))["error"] == "not_found");
}

TEST_CASE("keys may hold slashes and percent-escapes", "[daemon][kv]") {
    Harness h;
    REQUIRE(h.call("PUT", "/v1/kv/dir/sub%20key", R"({"value":"x"})").status == 200);
    CHECK(body_of(h.call("GET", "/v1/kv/dir/sub%20key"))["key"] == "dir/sub key");
}

TEST_CASE("compare-and-set on value and revision answers 409 with the current value",
          "[daemon][kv]") {
    Harness h;
    REQUIRE(h.call("PUT", "/v1/kv/k", R"({"value":"old"})").status == 200);
    auto ok = h.call("PUT", "/v1/kv/k", R"({"value":"new","prev_value":"old"})");
    REQUIRE(ok.status == 200);
    CHECK(body_of(ok)["revision"] == 2);
    auto failed = h.call("PUT", "/v1/kv/k", R"({"value":"x","prev_value":"old"})");
    REQUIRE(failed.status == 409);
    CHECK(body_of(failed)["error"] == "compare_failed");
    CHECK(body_of(failed)["current"] == json{{"key", "k"}, {"value", "new"}, {"revision", 2}});
    CHECK(h.call("PUT", "/v1/kv/k", R"({"value":"y","prev_revision":1})").status == 409);
    CHECK(h.call("PUT", "/v1/kv/k", R"({"value":"y","prev_revision":2})").status == 200);
    // prev_revision 0: create only if absent.
    CHECK(h.call("PUT", "/v1/kv/k", R"({"value":"z","prev_revision":0})").status == 409);
    auto created = h.call("PUT", "/v1/kv/fresh", R"({"value":"z","prev_revision":0})");
    CHECK(created.status == 200);
    auto absent = h.call("PUT", "/v1/kv/none", R"({"value":"z","prev_value":"q"})");
    REQUIRE(absent.status == 409);
    CHECK(body_of(absent)["current"].is_null());
}

TEST_CASE("DELETE removes a key, 404 when absent, and honours prev_revision", "[daemon][kv]") {
    Harness h;
    REQUIRE(h.call("PUT", "/v1/kv/d", R"({"value":"v"})").status == 200);
    CHECK(h.call("DELETE", "/v1/kv/d?prev_revision=7").status == 409);
    auto del = h.call("DELETE", "/v1/kv/d?prev_revision=1");
    REQUIRE(del.status == 200);
    CHECK(body_of(del)["revision"] == 3);
    CHECK(h.call("GET", "/v1/kv/d").status == 404);
    CHECK(h.call("DELETE", "/v1/kv/d").status == 404);
    CHECK(h.call("DELETE", "/v1/kv/d?prev_revision=x").status == 400);
}

TEST_CASE("GET /v1/kv lists keys by prefix up to a limit", "[daemon][kv]") {
    Harness h;
    for (const char* key : {"a/1", "a/2", "a/3", "b/1"}) {
        REQUIRE(h.call("PUT", std::string("/v1/kv/") + key, R"({"value":"v"})").status == 200);
    }
    auto all = body_of(h.call("GET", "/v1/kv?prefix=a/"));
    CHECK(all["count"] == 3);
    CHECK(all["truncated"] == false);
    CHECK(all["keys"][0]["key"] == "a/1");
    auto limited = body_of(h.call("GET", "/v1/kv?prefix=a/&limit=2"));
    CHECK(limited["count"] == 2);
    CHECK(limited["truncated"] == true);
    CHECK(body_of(h.call("GET", "/v1/kv"))["count"] == 4);
    CHECK(h.call("GET", "/v1/kv?limit=0").status == 400);
    CHECK(h.call("GET", "/v1/kv?limit=abc").status == 400);
    CHECK(h.call("GET", "/v1/kv?limit=10001").status == 400);
}

TEST_CASE("a follower redirects to the leader's HTTP address with 307", "[daemon][redirect]") {
    Harness h;
    h.node.leader = 2;
    for (auto [method, target, body] :
         {std::tuple{"PUT", "/v1/kv/a", R"({"value":"1"})"}, std::tuple{"GET", "/v1/kv/a", ""},
          std::tuple{"DELETE", "/v1/kv/a", ""}, std::tuple{"POST", "/v1/members/2/promote", ""},
          std::tuple{"POST", "/v1/leader/transfer", R"({"to":2})"}}) {
        auto r = h.call(method, target, body);
        INFO(method << " " << target);
        REQUIRE(r.status == 307);
        CHECK(header(r, "Location") == std::string("http://127.0.0.1:8082") + target);
        CHECK(body_of(r)["leader_id"] == 2);
        CHECK(body_of(r)["leader_http"] == "127.0.0.1:8082");
    }
    // A stale read is served locally.
    CHECK(h.call("GET", "/v1/kv/a?consistency=stale").status == 404);
}

TEST_CASE("with no known leader, requests get 503 no_leader and Retry-After",
          "[daemon][redirect]") {
    Harness h;
    h.node.leader = 0;
    auto r = h.call("PUT", "/v1/kv/a", R"({"value":"1"})");
    REQUIRE(r.status == 503);
    CHECK(body_of(r)["error"] == "no_leader");
    CHECK(header(r, "Retry-After") == "1");
    CHECK(h.call("GET", "/readyz").status == 503);
    CHECK(h.call("GET", "/healthz").status == 200);
}

TEST_CASE("keel errors map to HTTP statuses", "[daemon][errors]") {
    Harness h;
    h.node.fail_next = Status(ErrorCode::busy, "queue full");
    auto busy = h.call("PUT", "/v1/kv/a", R"({"value":"1"})");
    CHECK(busy.status == 429);
    CHECK(header(busy, "Retry-After") == "1");
    h.node.fail_next = Status(ErrorCode::aborted, "stopping");
    CHECK(h.call("PUT", "/v1/kv/a", R"({"value":"1"})").status == 503);
    h.node.fail_next = Status(ErrorCode::too_large, "entry");
    CHECK(h.call("PUT", "/v1/kv/a", R"({"value":"1"})").status == 413);
    h.node.fail_next = Status(ErrorCode::io_error, "disk");
    CHECK(h.call("PUT", "/v1/kv/a", R"({"value":"1"})").status == 500);
    h.node.fail_next = Status(ErrorCode::timeout, "read");
    CHECK(h.call("GET", "/v1/kv/a").status == 503);
    h.node.fail_next = Status(ErrorCode::no_space, "disk full");
    auto full = h.call("PUT", "/v1/kv/a", R"({"value":"1"})");
    CHECK(full.status == 507);
    CHECK(body_of(full)["error"] == "no_space");
}

TEST_CASE("alarms from keel and from raftd show in status and metrics, each once",
          "[daemon][alarms]") {
    Harness h;
    CHECK(body_of(h.call("GET", "/v1/status"))["alarms"] == json::array());
    CHECK(h.call("GET", "/metrics").body.find("keel_alarm{alarm=\"no_space\"} 0\n") !=
          std::string::npos);
    h.node.alarms = {"no_space"};
    h.context.alarms->set("no_space", true);
    h.context.alarms->set("zz_other", true);
    CHECK(body_of(h.call("GET", "/v1/status"))["alarms"] == json::array({"no_space", "zz_other"}));
    const std::string metrics = h.call("GET", "/metrics").body;
    CHECK(metrics.find("keel_alarm{alarm=\"no_space\"} 1\n") != std::string::npos);
    CHECK(metrics.find("keel_alarm{alarm=\"zz_other\"} 1\n") != std::string::npos);
    h.node.alarms.clear();
    h.context.alarms->set("no_space", false);
    CHECK(body_of(h.call("GET", "/v1/status"))["alarms"] == json::array({"zz_other"}));
}

TEST_CASE("a fail-stopped node answers 503 failed on /healthz and /readyz", "[daemon][health]") {
    Harness h;
    REQUIRE(h.call("GET", "/healthz").status == 200);
    CHECK(h.call("GET", "/metrics").body.find("keel_failed 0\n") != std::string::npos);
    h.node.failure = "fdatasync of 00000001.wal: Input/output error";
    auto health = h.call("GET", "/healthz");
    CHECK(health.status == 503);
    CHECK(body_of(health)["status"] == "failed");
    CHECK(body_of(health)["reason"] == h.node.failure);
    auto ready = h.call("GET", "/readyz");
    CHECK(ready.status == 503);
    CHECK(body_of(ready)["error"] == "failed");
    CHECK(body_of(h.call("GET", "/v1/status"))["failure"] == h.node.failure);
    CHECK(h.call("GET", "/metrics").body.find("keel_failed 1\n") != std::string::npos);
}

TEST_CASE("bad input is answered with the documented errors", "[daemon][bad-input]") {
    Harness h;
    struct Case {
        const char* method;
        std::string target;
        std::string body;
        int status;
        const char* error;
    };
    const std::vector<Case> cases = {
        {"PUT", "/v1/kv/a", "{", 400, "bad_json"},
        {"PUT", "/v1/kv/a", "", 400, "bad_json"},
        {"PUT", "/v1/kv/a", "[1,2]", 400, "bad_request"},
        {"PUT", "/v1/kv/a", R"({"val":"x"})", 400, "missing_field"},
        {"PUT", "/v1/kv/a", R"({"value":1})", 400, "wrong_type"},
        {"PUT", "/v1/kv/a", R"({"value":null})", 400, "wrong_type"},
        {"PUT", "/v1/kv/a", R"({"value":"x","prev_value":3})", 400, "wrong_type"},
        {"PUT", "/v1/kv/a", R"({"value":"x","prev_revision":-1})", 400, "wrong_type"},
        {"PUT", "/v1/kv/a", R"({"value":"x","prev_revision":"1"})", 400, "wrong_type"},
        {"PUT", "/v1/kv/a", R"({"value":"x","prev_revision":1.5})", 400, "wrong_type"},
        {"PUT", "/v1/kv/a", R"({"value":")" + std::string(1001, 'v') + "\"}", 413,
         "value_too_large"},
        {"PUT", "/v1/kv/" + std::string(65, 'k'), R"({"value":"x"})", 400, "invalid_key"},
        {"PUT", "/v1/kv/%FF%FE", R"({"value":"x"})", 400, "invalid_key"},
        {"PUT", "/v1/kv/a%zz", R"({"value":"x"})", 404, "not_found"},
        {"GET", "/v1/kv/a?consistency=eventual", "", 400, "bad_request"},
        {"GET", "/v1/kv/a?x=%", "", 400, "bad_request"},
        {"GET", "/v1/nope", "", 404, "not_found"},
        {"GET", "/", "", 404, "not_found"},
        {"GET", "/v1/kv/", "", 404, "not_found"},
        {"PATCH", "/v1/kv/a", "", 405, "method_not_allowed"},
        {"POST", "/v1/status", "", 405, "method_not_allowed"},
        {"DELETE", "/v1/members", "", 405, "method_not_allowed"},
        {"POST", "/v1/members", "nope", 400, "bad_json"},
        {"POST", "/v1/members", R"({"raft":"h:1","http":"h:2"})", 400, "missing_field"},
        {"POST", "/v1/members", R"({"id":0,"raft":"h:1","http":"h:2"})", 400, "wrong_type"},
        {"POST", "/v1/members", R"({"id":"3","raft":"h:1","http":"h:2"})", 400, "wrong_type"},
        {"POST", "/v1/members", R"({"id":3,"raft":"h","http":"h:2"})", 400, "invalid_member"},
        {"POST", "/v1/members", R"({"id":3,"raft":"h:99999","http":"h:2"})", 400, "invalid_member"},
        {"POST", "/v1/members", R"({"id":3,"raft":"h:1","http":"h:0"})", 400, "invalid_member"},
        {"POST", "/v1/members", R"({"id":3,"raft":"h:1"})", 400, "missing_field"},
        {"POST", "/v1/members", R"({"id":3,"raft":"h:1","http":2})", 400, "wrong_type"},
        {"POST", "/v1/members", R"({"id":3,"raft":"h:1","http":"h:2","role":"boss"})", 400,
         "invalid_member"},
        {"POST", "/v1/members", R"({"id":1,"raft":"h:1","http":"h:2"})", 400, "invalid_argument"},
        {"POST", "/v1/members/abc/promote", "", 400, "invalid_member"},
        {"DELETE", "/v1/members/0", "", 400, "invalid_member"},
        {"DELETE", "/v1/members/99", "", 404, "not_found"},
        {"POST", "/v1/leader/transfer", "{}", 400, "missing_field"},
        {"POST", "/v1/leader/transfer", R"({"to":"2"})", 400, "wrong_type"},
    };
    for (const Case& c : cases) {
        INFO(c.method << " " << c.target << " " << c.body.substr(0, 80));
        HttpResponse r = h.call(c.method, c.target, c.body);
        CHECK(r.status == c.status);
        json body = json::parse(r.body, nullptr, false);
        REQUIRE(body.is_object());
        CHECK(body["error"] == c.error);
        CHECK(body["message"].is_string());
    }
    // ... and the node keeps serving.
    CHECK(h.call("PUT", "/v1/kv/a", R"({"value":"fine"})").status == 200);
    CHECK(h.kv->size() == 1);
}

TEST_CASE("values and keys at their limits are accepted, one byte over refused",
          "[daemon][limits]") {
    Harness h;
    const std::string key(64, 'k');
    CHECK(h.call("PUT", "/v1/kv/" + key, value_body(1000)).status == 200);
    CHECK(h.call("PUT", "/v1/kv/" + key, value_body(1001)).status == 413);
    CHECK(h.call("GET", "/v1/kv?limit=10000").status == 200);
}

TEST_CASE("405 names the allowed methods", "[daemon][bad-input]") {
    Harness h;
    auto r = h.call("POST", "/v1/kv/a");
    REQUIRE(r.status == 405);
    CHECK(header(r, "Allow") == "PUT, GET, DELETE");
}

TEST_CASE("GET /v1/status reports the node's figures", "[daemon][admin]") {
    Harness h;
    REQUIRE(h.call("PUT", "/v1/kv/a", R"({"value":"1"})").status == 200);
    auto s = body_of(h.call("GET", "/v1/status"));
    for (const char* field : {"id", "role", "term", "leader_id", "commit_index", "applied_index",
                              "last_index", "mode", "members", "timer_wakeups", "wal"}) {
        CHECK(s.contains(field));
    }
    CHECK(s["mode"] == "cluster");
    CHECK(s["role"] == "leader");
    CHECK(s["commit_index"] == 1);
    CHECK(s["cluster_id"] == "00112233445566778899aabbccddeeff");
    for (const char* field : {"segments", "bytes", "fsyncs", "records_per_fsync"}) {
        CHECK(s["wal"].contains(field));
    }
}

TEST_CASE("members can be listed, added, promoted and removed", "[daemon][admin]") {
    Harness h;
    CHECK(body_of(h.call("GET", "/v1/members"))["members"].size() == 2);
    auto added =
        h.call("POST", "/v1/members",
               R"({"id":4,"raft":"127.0.0.1:7084","http":"127.0.0.1:8084","role":"learner"})");
    REQUIRE(added.status == 200);
    auto members = body_of(h.call("GET", "/v1/members"))["members"];
    REQUIRE(members.size() == 3);
    CHECK(members[2] == json{{"id", 4},
                             {"raft", "127.0.0.1:7084"},
                             {"http", "127.0.0.1:8084"},
                             {"role", "learner"},
                             {"match_index", 0}});
    REQUIRE(h.call("POST", "/v1/members/4/promote").status == 200);
    CHECK(body_of(h.call("GET", "/v1/members"))["members"][2]["role"] == "voter");
    REQUIRE(h.call("DELETE", "/v1/members/4").status == 200);
    CHECK(body_of(h.call("GET", "/v1/members"))["members"].size() == 2);
}

TEST_CASE("leader transfer, snapshot, health, readiness and metrics answer", "[daemon][admin]") {
    Harness h;
    REQUIRE(h.call("PUT", "/v1/kv/a", R"({"value":"1"})").status == 200);
    auto snap = h.call("POST", "/v1/snapshot");
    REQUIRE(snap.status == 200);
    CHECK(body_of(snap)["snapshot_index"] == 1);
    CHECK(h.call("GET", "/healthz").status == 200);
    CHECK(h.call("GET", "/readyz").status == 200);
    auto metrics = h.call("GET", "/metrics");
    REQUIRE(metrics.status == 200);
    CHECK(metrics.content_type.find("text/plain") == 0);
    CHECK(metrics.body.find("keel_term 3\n") != std::string::npos);
    auto transfer = h.call("POST", "/v1/leader/transfer", R"({"to":2})");
    REQUIRE(transfer.status == 200);
    CHECK(h.node.leader == 2);
    CHECK(h.call("POST", "/v1/leader/transfer", R"({"to":2})").status == 307);
}

TEST_CASE(
    "over the quota, writes get 507 no_space and raise the alarm; reads and deletes go on, "
    "and it clears by itself",
    "[daemon][quota]") {
    Harness h;
    h.context.quota = std::make_shared<StorageQuota>(10000, h.context.alarms);
    REQUIRE(h.call("PUT", "/v1/kv/a", value_body(900)).status == 200);
    // The WAL alone nearly at the quota (each is capped, not their sum).
    h.node.wal_bytes = 9500;  // keel's WAL, read at most kWalBytesMaxAge ago
    CHECK(h.call("GET", "/v1/status").status == 200);  // a fresh status reads it now
    auto refused = h.call("PUT", "/v1/kv/b", value_body(900));
    REQUIRE(refused.status == 507);
    CHECK(body_of(refused)["error"] == "no_space");
    CHECK(body_of(h.call("GET", "/v1/status"))["alarms"] == json::array({"no_space"}));
    CHECK(h.call("GET", "/metrics").body.find("keel_alarm{alarm=\"no_space\"} 1\n") !=
          std::string::npos);
    // Past 90 % of the quota, the alarm holds: not even a small write fits in.
    CHECK(h.call("PUT", "/v1/kv/tiny", R"({"value":""})").status == 507);
    CHECK(h.call("GET", "/v1/kv/a").status == 200);
    CHECK(h.call("GET", "/v1/kv?prefix=").status == 200);
    REQUIRE(h.call("DELETE", "/v1/kv/a").status == 200);
    // Deletes brought the state down; compaction the WAL.
    h.node.wal_bytes = 1000;
    auto status = body_of(h.call("GET", "/v1/status"));
    CHECK(status["alarms"] == json::array());
    CHECK(status["quota_bytes"] == 10000);
    CHECK(status["state_bytes"] == h.kv->size_bytes());
    CHECK(h.call("PUT", "/v1/kv/b", value_body(900)).status == 200);
}

TEST_CASE("keel's own no_space alarm and the quota's combine", "[daemon][quota]") {
    Harness h;
    h.context.quota = std::make_shared<StorageQuota>(1 << 20, h.context.alarms);
    h.node.alarms = {"no_space"};
    h.node.fail_next = Status(ErrorCode::no_space, "disk full");
    CHECK(h.call("PUT", "/v1/kv/a", R"({"value":"1"})").status == 507);
    CHECK(body_of(h.call("GET", "/v1/status"))["alarms"] == json::array({"no_space"}));
    h.node.alarms.clear();
    CHECK(body_of(h.call("GET", "/v1/status"))["alarms"] == json::array());
    CHECK(h.call("PUT", "/v1/kv/a", R"({"value":"1"})").status == 200);
}

TEST_CASE("over HTTPS, redirects name https://", "[daemon][redirect]") {
    Harness h;
    h.context.url_scheme = "https";
    h.node.leader = 2;
    auto r = h.call("PUT", "/v1/kv/a", R"({"value":"1"})");
    REQUIRE(r.status == 307);
    CHECK(header(r, "Location") == "https://127.0.0.1:8082/v1/kv/a");
}

TEST_CASE("GET /ui is open, and its policy may connect to the current members only",
          "[daemon][ui]") {
    Harness h;
    add_ui_routes(h.router, h.context,
                  std::make_shared<const StatusPage>("<style>s{}</style><script>j()</script>"));
    CHECK(h.router.access("GET", "/ui") == Access::open);
    auto connect_src = [&] {
        HttpResponse r = h.call("GET", "/ui");
        REQUIRE(r.status == 200);
        CHECK(r.content_type == "text/html; charset=utf-8");
        const std::string policy = header(r, "Content-Security-Policy");
        const std::size_t start = policy.find("connect-src ");
        REQUIRE(start != std::string::npos);
        return policy.substr(start, policy.find(';', start) - start);
    };
    CHECK(connect_src() == "connect-src 'self' http://127.0.0.1:8081 http://127.0.0.1:8082");
    REQUIRE(h.call("DELETE", "/v1/members/2").status == 200);
    CHECK(connect_src() == "connect-src 'self' http://127.0.0.1:8081");
    h.context.url_scheme = "https";
    CHECK(connect_src() == "connect-src 'self' https://127.0.0.1:8081");
}

TEST_CASE("/metrics carries raftd's own figures", "[daemon][metrics]") {
    Harness h;
    h.context.quota = std::make_shared<StorageQuota>(1 << 20, h.context.alarms);
    h.context.server_figures = [] {
        DaemonFigures f;
        f.connections = 3;
        f.requests_refused = {{"unauthorized", 2}};
        f.accept_backoffs = 1;
        return f;
    };
    REQUIRE(h.call("PUT", "/v1/kv/a", R"({"value":"1"})").status == 200);
    const std::string text = h.call("GET", "/metrics").body;
    CHECK(text.find("raftd_http_connections 3\n") != std::string::npos);
    CHECK(text.find("raftd_http_requests_refused_total{reason=\"unauthorized\"} 2\n") !=
          std::string::npos);
    CHECK(text.find("raftd_http_accept_backoffs_total 1\n") != std::string::npos);
    CHECK(text.find("raftd_quota_bytes 1048576\n") != std::string::npos);
    CHECK(text.find("raftd_state_bytes " + std::to_string(h.kv->size_bytes()) + "\n") !=
          std::string::npos);
}
