// The routes of raftd --groups against fake groups: each key's request goes
// to its group (and is redirected to that group's leader), a list merges
// every group, /v1/groups/{g} and /v1/status show the groups.
#include <memory>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "fake_node.hpp"
#include "handlers.hpp"

using nlohmann::json;
using namespace keel;
using namespace keel::daemon;

namespace {

constexpr std::size_t kGroups = 4;

struct GroupsHarness {
    std::vector<std::shared_ptr<KvStateMachine>> maps;
    std::vector<std::unique_ptr<testing::FakeNode>> nodes;
    std::unique_ptr<HandlerContext> context;
    Router router;

    GroupsHarness() {
        for (std::size_t g = 0; g < kGroups; ++g) {
            maps.push_back(std::make_shared<KvStateMachine>());
            nodes.push_back(std::make_unique<testing::FakeNode>(maps.back()));
        }
        context = std::make_unique<HandlerContext>(HandlerContext{
            *nodes[0], *maps[0], HandlerLimits{}, [](std::function<void()> f) { f(); }});
        for (std::size_t g = 0; g < kGroups; ++g)
            context->groups.push_back(KvGroup{g + 1, nodes[g].get(), maps[g].get()});
        add_kv_routes(router, *context);
        add_admin_routes(router, *context);
        add_group_routes(router, *context);
    }

    HttpResponse call(std::string method, std::string target, std::string body = "") {
        HttpResponse out;
        out.status = -1;
        router.dispatch(HttpRequest{std::move(method), std::move(target), std::move(body), ""},
                        [&out](HttpResponse r) { out = std::move(r); });
        REQUIRE(out.status != -1);  // the fakes complete inline
        return out;
    }
    testing::FakeNode& group(GroupId g) { return *nodes[g - 1]; }
    KvStateMachine& map(GroupId g) { return *maps[g - 1]; }
};

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

TEST_CASE("with --groups, each key is written to and read from its own group", "[daemon][groups]") {
    GroupsHarness h;
    // "a" is in group 1, "b" in 2, "greeting" in 3 (kv_shards_test.cpp).
    for (const char* key : {"a", "b", "greeting"})
        REQUIRE(h.call("PUT", std::string("/v1/kv/") + key, R"({"value":"v"})").status == 200);
    CHECK(h.map(1).get("a"));
    CHECK(h.map(2).get("b"));
    CHECK(h.map(3).get("greeting"));
    CHECK(h.map(1).size() == 1);
    CHECK(h.map(4).size() == 0);
    // Revisions are the group's own log indexes.
    CHECK(body_of(h.call("GET", "/v1/kv/b"))["revision"] == 1);
    REQUIRE(h.call("DELETE", "/v1/kv/greeting").status == 200);
    CHECK(h.map(3).size() == 0);
    CHECK(h.call("GET", "/v1/kv/greeting").status == 404);
}

TEST_CASE("with --groups, a key whose group is led elsewhere is redirected to that leader",
          "[daemon][groups]") {
    GroupsHarness h;
    h.group(2).leader = 2;  // member 2 (127.0.0.1:8082) leads group 2 only
    auto put = h.call("PUT", "/v1/kv/b", R"({"value":"v"})");
    REQUIRE(put.status == 307);
    CHECK(body_of(put)["group"] == 2);
    CHECK(body_of(put)["leader_id"] == 2);
    CHECK(h.call("GET", "/v1/kv/b").status == 307);
    CHECK(h.call("GET", "/v1/kv/b?consistency=stale").status == 404);  // read here
    CHECK(h.call("PUT", "/v1/kv/a", R"({"value":"v"})").status == 200);
    // A linearizable list needs every group's leader; a stale one reads here.
    auto list = h.call("GET", "/v1/kv?prefix=");
    CHECK(list.status == 503);
    CHECK(body_of(list)["error"] == "not_leader");
    CHECK(body_of(h.call("GET", "/v1/kv?prefix=&consistency=stale"))["count"] == 1);
}

TEST_CASE("with --groups, a list merges every group's keys in order", "[daemon][groups]") {
    GroupsHarness h;
    for (int i = 0; i < 20; ++i) {
        REQUIRE(h.call("PUT", "/v1/kv/k" + std::to_string(100 + i), R"({"value":"v"})").status ==
                200);
    }
    REQUIRE(h.call("PUT", "/v1/kv/other", R"({"value":"v"})").status == 200);
    std::size_t groups_used = 0;
    for (GroupId g = 1; g <= kGroups; ++g) groups_used += h.map(g).size() > 0;
    CHECK(groups_used > 1);
    json all = body_of(h.call("GET", "/v1/kv?prefix=k&limit=100"));
    REQUIRE(all["count"] == 20);
    CHECK(all["truncated"] == false);
    for (int i = 0; i < 20; ++i) CHECK(all["keys"][i]["key"] == "k" + std::to_string(100 + i));
    json first = body_of(h.call("GET", "/v1/kv?prefix=k&limit=5"));
    REQUIRE(first["count"] == 5);
    CHECK(first["truncated"] == true);
    CHECK(first["keys"][4]["key"] == "k104");
    CHECK(body_of(h.call("GET", "/v1/kv?prefix=k&limit=20"))["truncated"] == false);
}

// A member's part of a list, as another member's forward_get hands it over.
struct ForwardCall {
    std::string address, target, credentials;
};

TEST_CASE("with --groups, a linearizable list asks each other leader once for its groups' part",
          "[daemon][groups][list]") {
    GroupsHarness h;
    REQUIRE(h.call("PUT", "/v1/kv/a", R"({"value":"v"})").status == 200);  // group 1, here
    h.group(2).leader = 2;  // "b" is group 2's: member 2 (127.0.0.1:8082) leads it
    h.group(4).leader = 2;
    std::vector<ForwardCall> calls;
    std::string answer = R"({"keys":[{"key":"b","revision":7}],"count":1,"truncated":false})";
    h.context->forward_get = [&](std::string address, std::string target, std::string credentials,
                                 HandlerContext::ForwardDone done) {
        calls.push_back({address, target, credentials});
        done(HttpAnswer{200, answer});
        return true;
    };
    json all = body_of(h.call("GET", "/v1/kv?prefix=&limit=10"));
    REQUIRE(calls.size() == 1);  // one call for groups 2 and 4
    CHECK(calls[0].address == "127.0.0.1:8082");
    CHECK(calls[0].target == "/v1/kv?prefix=&limit=10&groups=2,4");
    REQUIRE(all["count"] == 2);
    CHECK(all["keys"][0]["key"] == "a");
    CHECK(all["keys"][1]["key"] == "b");
    CHECK(all["keys"][1]["revision"] == 7);
    // The other member's answer is checked: a key of a group not asked, keys
    // out of order, more than the limit, not JSON.
    for (const char* bad :
         {R"({"keys":[{"key":"a","revision":1}],"truncated":false})",
          R"({"keys":[{"key":"b","revision":1},{"key":"b","revision":1}],"truncated":false})",
          R"({"keys":[{"key":"b"}],"truncated":false})", "not json"}) {
        INFO(bad);
        answer = bad;
        auto refused = h.call("GET", "/v1/kv?prefix=&limit=10");
        CHECK(refused.status == 502);
        CHECK(body_of(refused)["error"] == "bad_gateway");
    }
    answer = R"({"keys":[{"key":"b","revision":1},{"key":"d","revision":1}],"truncated":false})";
    CHECK(h.call("GET", "/v1/kv?prefix=&limit=2").status == 200);
    CHECK(h.call("GET", "/v1/kv?prefix=&limit=1").status == 502);  // more keys than asked
    // Its refusals: unreachable or not leading any more (503, retry), busy (429).
    h.context->forward_get = [&](std::string, std::string, std::string,
                                 HandlerContext::ForwardDone done) {
        done(Status(ErrorCode::io_error, "connection refused"));
        return true;
    };
    CHECK(h.call("GET", "/v1/kv?prefix=").status == 503);
    h.context->forward_get = [&](std::string, std::string, std::string,
                                 HandlerContext::ForwardDone) { return false; };
    CHECK(h.call("GET", "/v1/kv?prefix=").status == 429);
    // A prefix is sent percent-encoded.
    calls.clear();
    h.context->forward_get = [&](std::string address, std::string target, std::string credentials,
                                 HandlerContext::ForwardDone done) {
        calls.push_back({address, target, credentials});
        done(HttpAnswer{200, R"({"keys":[],"truncated":false})"});
        return true;
    };
    CHECK(h.call("GET", "/v1/kv?prefix=a%20b%26c").status == 200);
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].target == "/v1/kv?prefix=a%20b%26c&limit=100&groups=2,4");
    // No leader known for a group: 503 no_leader.
    h.group(3).leader = 0;
    CHECK(body_of(h.call("GET", "/v1/kv?prefix="))["error"] == "no_leader");
}

TEST_CASE("with --groups, groups= lists those groups only, linearizably on their leader only",
          "[daemon][groups][list]") {
    GroupsHarness h;
    for (const char* key : {"a", "b", "greeting"})  // groups 1, 2, 3
        REQUIRE(h.call("PUT", std::string("/v1/kv/") + key, R"({"value":"v"})").status == 200);
    json part = body_of(h.call("GET", "/v1/kv?prefix=&groups=1,3"));
    REQUIRE(part["count"] == 2);
    CHECK(part["keys"][0]["key"] == "a");
    CHECK(part["keys"][1]["key"] == "greeting");
    h.group(3).leader = 2;
    auto refused = h.call("GET", "/v1/kv?prefix=&groups=1,3");
    CHECK(refused.status == 503);  // never forwarded again
    CHECK(body_of(refused)["error"] == "not_leader");
    CHECK(body_of(h.call("GET", "/v1/kv?prefix=&groups=3&consistency=stale"))["count"] == 1);
    for (const char* bad : {"", "0", "5", "3,1", "1,1", "1,,2", "x"}) {
        INFO(bad);
        CHECK(h.call("GET", std::string("/v1/kv?prefix=&groups=") + bad).status == 400);
    }
}

TEST_CASE("GET /v1/groups/{g} shows one group; /v1/status sums them up", "[daemon][groups]") {
    GroupsHarness h;
    REQUIRE(h.call("PUT", "/v1/kv/b", R"({"value":"v"})").status == 200);
    h.group(4).leader = 2;
    h.group(3).alarms = {"no_space"};
    auto two = h.call("GET", "/v1/groups/2");
    REQUIRE(two.status == 200);
    CHECK(body_of(two)["group"] == 2);
    CHECK(body_of(two)["keys"] == 1);
    CHECK(body_of(two)["role"] == "leader");
    CHECK(body_of(h.call("GET", "/v1/groups/4"))["leader_id"] == 2);
    CHECK(h.call("GET", "/v1/groups/0").status == 404);
    CHECK(h.call("GET", "/v1/groups/5").status == 404);
    CHECK(h.call("GET", "/v1/groups/x").status == 400);
    json list = body_of(h.call("GET", "/v1/groups"));
    CHECK(list["count"] == kGroups);
    CHECK(list["groups"][3]["leader_id"] == 2);
    json status = body_of(h.call("GET", "/v1/status"));
    CHECK(status["keys"] == 1);
    CHECK(status["groups"]["count"] == kGroups);
    CHECK(status["groups"]["led_here"] == kGroups - 1);
    CHECK(status["groups"]["alarms"]["no_space"] == 1);
    CHECK(status["alarms"] == json::array({"no_space"}));
    // Not ready while one group has no known leader.
    CHECK(h.call("GET", "/readyz").status == 200);
    h.group(4).leader = 0;
    auto ready = h.call("GET", "/readyz");
    CHECK(ready.status == 503);
    CHECK(body_of(ready)["message"].get<std::string>().find("group 4") != std::string::npos);
}

TEST_CASE("with --groups, a membership change applies to every group", "[daemon][groups]") {
    GroupsHarness h;
    const std::string four = R"({"id":4,"raft":"127.0.0.1:7084","http":"127.0.0.1:8084"})";
    REQUIRE(h.call("POST", "/v1/members", four).status == 200);
    for (GroupId g = 1; g <= kGroups; ++g) CHECK(h.group(g).member(4).ok());
    // Again: every group has it already, nothing is proposed.
    h.group(1).fail_next = Status(ErrorCode::busy, "would be proposed");
    CHECK(h.call("POST", "/v1/members", four).status == 200);
    h.group(1).fail_next = Status();
    // The same id with other addresses is refused by keel, as without groups.
    CHECK(
        h.call("POST", "/v1/members", R"({"id":4,"raft":"127.0.0.1:7085","http":"127.0.0.1:8085"})")
            .status == 400);
}

TEST_CASE("with --groups, a membership change walks to the leaders of the groups led elsewhere",
          "[daemon][groups]") {
    GroupsHarness h;
    h.group(3).leader = 2;  // member 2 (127.0.0.1:8082) leads group 3
    auto removed = h.call("DELETE", "/v1/members/2");
    REQUIRE(removed.status == 307);  // done here, then on to group 3's leader
    CHECK(body_of(removed)["group"] == 3);
    CHECK(header(removed, "Location") == "http://127.0.0.1:8082/v1/members/2");
    CHECK(!h.group(1).member(2).ok());
    CHECK(h.group(3).member(2).ok());
    // Once group 3's leader has made it (seen here), this member answers 200.
    h.group(3).leader = 1;
    REQUIRE(h.call("DELETE", "/v1/members/2").status == 200);
    for (GroupId g = 1; g <= kGroups; ++g) CHECK(!h.group(g).member(2).ok());
    // Any other refusal is the answer.
    h.group(2).fail_next = Status(ErrorCode::busy, "one change at a time");
    CHECK(h.call("POST", "/v1/members/1/promote").status == 200);  // a voter already
    auto busy = h.call("POST", "/v1/members",
                       R"({"id":5,"raft":"127.0.0.1:7085","http":"127.0.0.1:8085"})");
    CHECK(busy.status == 429);
}

TEST_CASE("with --groups, a leadership transfer moves every group led here, or one",
          "[daemon][groups]") {
    GroupsHarness h;
    h.group(2).leader = 2;
    auto one = h.call("POST", "/v1/leader/transfer", R"({"to":2,"group":1})");
    REQUIRE(one.status == 200);
    CHECK(h.group(1).leader == 2);
    CHECK(h.group(3).leader == 1);
    auto rest = h.call("POST", "/v1/leader/transfer", R"({"to":2})");
    REQUIRE(rest.status == 200);
    CHECK(body_of(rest)["groups"] == 2);  // 3 and 4: 1 and 2 were led elsewhere
    for (GroupId g = 1; g <= kGroups; ++g) CHECK(h.group(g).leader == 2);
    CHECK(h.call("POST", "/v1/leader/transfer", R"({"to":2,"group":9})").status == 400);
}

TEST_CASE("without --groups, /v1/groups answers 404", "[daemon][groups]") {
    auto kv = std::make_shared<KvStateMachine>();
    testing::FakeNode node{kv};
    HandlerContext context{node, *kv, HandlerLimits{}, [](std::function<void()> f) { f(); }};
    Router router;
    add_group_routes(router, context);
    HttpResponse out;
    router.dispatch(HttpRequest{"GET", "/v1/groups/1", "", ""},
                    [&out](HttpResponse r) { out = std::move(r); });
    CHECK(out.status == 404);
}
