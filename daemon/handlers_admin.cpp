// The admin API: status, members, leadership transfer, snapshots, health,
// readiness and metrics.
#include <charconv>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "handlers.hpp"
#include "member_spec.hpp"
#include "metrics.hpp"

namespace keel::daemon {
namespace {

using nlohmann::json;

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json member_json(const MemberStatus& member) {
    return {{"id", member.spec.id},
            {"raft", member.spec.raft_address},
            {"http", member.spec.metadata},
            {"role", member.spec.voter ? "voter" : "learner"},
            {"match_index", member.match_index}};
}

json members_json(const NodeStatus& status) {
    json members = json::array();
    for (const MemberStatus& member : status.members) members.push_back(member_json(member));
    return members;
}

json histogram_summary(const LatencyHistogram& h) {
    return {{"count", h.count},
            {"mean_us", h.count ? h.sum_us / static_cast<double>(h.count) : 0.0},
            {"p50_us", histogram_quantile_us(h, 0.50)},
            {"p99_us", histogram_quantile_us(h, 0.99)}};
}

// Re-evaluates the quota's alarm from a fresh status, so that it clears by
// itself as soon as anyone looks once usage is back under.
void refresh_quota(HandlerContext& context, const NodeStatus& s) {
    if (!context.quota) return;
    context.quota->note_wal_bytes(s.wal.bytes, std::chrono::steady_clock::now());
    context.quota->refresh(context.kv.size_bytes() + s.wal.bytes);
}

void handle_status(HandlerContext& context, RouteRequest&, Respond respond) {
    NodeStatus s = context.node.status();
    refresh_quota(context, s);
    json body = {{"id", s.id},
                 {"cluster_id", s.cluster_id},
                 {"role", keel::role_name(s.role)},
                 {"term", s.term},
                 {"leader_id", s.leader_id},
                 {"commit_index", s.commit_index},
                 {"applied_index", s.applied_index},
                 {"first_index", s.first_index},
                 {"last_index", s.last_index},
                 {"snapshot_index", s.snapshot_index},
                 {"snapshots_damaged", s.snapshots_damaged},
                 {"mode", mode_string(s.mode)},
                 {"members", members_json(s)},
                 {"timer_wakeups", s.timer_wakeups},
                 {"elections", s.elections},
                 {"proposals", s.proposals},
                 {"commits", s.commits},
                 {"keys", context.kv.size()},
                 {"state_bytes", context.kv.size_bytes()},
                 {"quota_bytes", context.quota ? context.quota->quota_bytes() : 0},
                 {"wal",
                  {{"segments", s.wal.segments},
                   {"bytes", s.wal.bytes},
                   {"fsyncs", s.wal.fsyncs},
                   {"records", s.wal.records},
                   {"records_per_fsync", s.wal.records_per_fsync}}},
                 {"commit_latency", histogram_summary(s.commit_latency)},
                 {"fsync_latency", histogram_summary(s.fsync_latency)},
                 {"alarms", active_alarms(s, *context.alarms)}};
    if (!s.failure.empty()) body["failure"] = s.failure;
    respond(json_response(200, dump(body)));
}

void handle_members(HandlerContext& context, RouteRequest&, Respond respond) {
    NodeStatus s = context.node.status();
    respond(json_response(200, dump({{"leader_id", s.leader_id}, {"members", members_json(s)}})));
}

// Completes an admin call: keel answers on its I/O thread; the follow-up (a
// redirect needs the Node again) runs on an HTTP thread.
std::function<void(Status)> finish(HandlerContext& context, const RouteRequest& request,
                                   Respond respond, std::function<HttpResponse()> on_ok) {
    auto target = std::make_shared<RouteRequest>();
    target->http.target = request.http.target;
    return
        [&context, target, respond = std::move(respond), on_ok = std::move(on_ok)](Status status) {
            context.defer([&context, target, respond, on_ok, status] {
                if (status.code() == ErrorCode::not_leader) {
                    return respond(not_leader_response(context, 0, *target));
                }
                if (!status.ok()) return respond(error_from_status(status));
                respond(on_ok());
            });
        };
}

// Parses the body as a JSON object; on failure answers 400 and returns nullopt.
std::optional<json> json_object_body(const RouteRequest& request, Respond& respond) {
    json body = json::parse(request.http.body, nullptr, false);
    if (body.is_discarded()) {
        respond(error_response(400, "bad_json", "the body is not valid JSON"));
        return std::nullopt;
    }
    if (!body.is_object()) {
        respond(error_response(400, "bad_request", "the body must be a JSON object"));
        return std::nullopt;
    }
    return body;
}

std::optional<NodeId> id_field(const json& body, const char* name, Respond& respond) {
    auto it = body.find(name);
    if (it == body.end()) {
        respond(error_response(400, "missing_field", std::string("\"") + name + "\" is required"));
        return std::nullopt;
    }
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() == 0) {
        respond(error_response(400, "wrong_type",
                               std::string("\"") + name + "\" must be an integer > 0"));
        return std::nullopt;
    }
    return it->get<NodeId>();
}

std::optional<NodeId> id_param(const RouteRequest& request, Respond& respond) {
    Result<NodeId> id = parse_node_id(request.params.at("id"));
    if (!id.ok()) {
        respond(error_response(400, "invalid_member", id.status().message()));
        return std::nullopt;
    }
    return *id;
}

void handle_add_member(HandlerContext& context, RouteRequest& request, Respond respond) {
    auto body = json_object_body(request, respond);
    if (!body) return;
    auto id = id_field(*body, "id", respond);
    if (!id) return;
    MemberSpec spec;
    spec.id = *id;
    for (const char* field : {"raft", "http"}) {
        auto it = body->find(field);
        if (it == body->end() || !it->is_string()) {
            return respond(error_response(400, it == body->end() ? "missing_field" : "wrong_type",
                                          std::string("\"") + field + "\" must be \"host:port\""));
        }
        Result<HostPort> address = parse_host_port(it->get<std::string>(), false);
        if (!address.ok())
            return respond(error_response(400, "invalid_member", address.status().message()));
        (std::string_view(field) == "raft" ? spec.raft_address : spec.metadata) =
            address->to_string();
    }
    if (auto role = body->find("role"); role != body->end()) {
        if (!role->is_string() || (*role != "voter" && *role != "learner")) {
            return respond(
                error_response(400, "invalid_member", "\"role\" is \"voter\" or \"learner\""));
        }
        spec.voter = *role == "voter";
    }
    json answer = {{"id", spec.id},
                   {"raft", spec.raft_address},
                   {"http", spec.metadata},
                   {"role", spec.voter ? "voter" : "learner"}};
    context.node.add_member_async(spec, finish(context, request, std::move(respond), [answer] {
                                      return json_response(200, dump({{"added", answer}}));
                                  }));
}

void handle_promote(HandlerContext& context, RouteRequest& request, Respond respond) {
    auto id = id_param(request, respond);
    if (!id) return;
    NodeId member = *id;
    context.node.promote_member_async(member,
                                      finish(context, request, std::move(respond), [member] {
                                          return json_response(200, dump({{"promoted", member}}));
                                      }));
}

void handle_remove(HandlerContext& context, RouteRequest& request, Respond respond) {
    auto id = id_param(request, respond);
    if (!id) return;
    NodeId member = *id;
    context.node.remove_member_async(member, finish(context, request, std::move(respond), [member] {
                                         return json_response(200, dump({{"removed", member}}));
                                     }));
}

void handle_transfer(HandlerContext& context, RouteRequest& request, Respond respond) {
    auto body = json_object_body(request, respond);
    if (!body) return;
    auto to = id_field(*body, "to", respond);
    if (!to) return;
    NodeId target = *to;
    context.node.transfer_leadership_async(
        target, finish(context, request, std::move(respond), [target] {
            return json_response(200, dump({{"transferred_to", target}}));
        }));
}

// Concurrent requests share the running snapshot (snapshot_gate.hpp).
void handle_snapshot(HandlerContext& context, RouteRequest& request, Respond respond) {
    Node& node = context.node;
    context.snapshots->run(
        [&node](SnapshotGate::Done done) { node.snapshot_async(std::move(done)); },
        finish(context, request, std::move(respond), [&context] {
            return json_response(200,
                                 dump({{"snapshot_index", context.node.status().snapshot_index}}));
        }));
}

// GET /v1/snapshot: the latest snapshot file, streamed: a backup
// (keelctl snapshot save; raftd --restore).  Its index, term and data
// checksum go in headers, so a client can check what it received.
void handle_snapshot_download(HandlerContext& context, RouteRequest&, Respond respond) {
    auto source = context.node.open_latest_snapshot();
    if (!source.ok()) {
        if (source.status().code() == ErrorCode::not_found)
            return respond(error_response(404, "no_snapshot",
                                          source.status().message() +
                                              " (POST /v1/snapshot takes one)"));
        return respond(error_from_status(source.status()));
    }
    std::shared_ptr<SnapshotFileSource> file(std::move(source.value()));
    const SnapshotFileInfo& info = file->info();
    HttpResponse response;
    response.content_type = "application/octet-stream";
    response.set_header("X-Keel-Snapshot-Index", std::to_string(info.index));
    response.set_header("X-Keel-Snapshot-Term", std::to_string(info.term));
    response.set_header("X-Keel-Snapshot-Data-Crc32", fmt::format("{:08x}", info.data_crc32));
    response.set_header("Content-Disposition",
                        fmt::format("attachment; filename=\"snapshot-{}-{}.snap\"", info.index,
                                    info.term));
    response.stream = std::make_shared<StreamedBody>(
        StreamedBody{info.size_bytes, [file](char* buffer, std::size_t capacity) {
                         Result<std::size_t> got = file->read(buffer, capacity);
                         return got.ok() ? static_cast<std::ptrdiff_t>(*got) : std::ptrdiff_t{-1};
                     }});
    respond(std::move(response));
}

// Liveness: 200 while the node runs, 503 once it has fail-stopped (a
// supervisor should restart it: recovery reads the disk afresh).
void handle_health(HandlerContext& context, RouteRequest&, Respond respond) {
    NodeStatus s = context.node.status();
    if (!s.failure.empty())
        return respond(json_response(503, dump({{"status", "failed"}, {"reason", s.failure}})));
    respond(json_response(200, R"({"status":"ok"})"));
}

void handle_ready(HandlerContext& context, RouteRequest&, Respond respond) {
    NodeStatus s = context.node.status();
    if (!s.failure.empty()) return respond(error_response(503, "failed", s.failure));
    if (s.leader_id == 0) return respond(error_response(503, "not_ready", "no leader is known"));
    if (s.applied_index + context.limits.ready_max_apply_lag_entries < s.commit_index) {
        return respond(error_response(503, "not_ready", "still applying the committed log"));
    }
    respond(json_response(200, dump({{"ready", true}, {"leader_id", s.leader_id}})));
}

void handle_metrics(HandlerContext& context, RouteRequest&, Respond respond) {
    HttpResponse response;
    NodeStatus status = context.node.status();
    refresh_quota(context, status);
    DaemonFigures figures;
    if (context.server_figures) figures = context.server_figures();
    figures.state_bytes = context.kv.size_bytes();
    if (context.quota) figures.quota_bytes = context.quota->quota_bytes();
    response.body = render_metrics(status, active_alarms(status, *context.alarms), &figures);
    response.content_type = kMetricsContentType;
    respond(std::move(response));
}

}  // namespace

void add_admin_routes(Router& router, HandlerContext& context) {
    HandlerContext* c = &context;
    auto bind = [c](void (*handler)(HandlerContext&, RouteRequest&, Respond)) {
        return [c, handler](RouteRequest& r, Respond done) { handler(*c, r, std::move(done)); };
    };
    router.add("GET", "/v1/status", Access::read, bind(handle_status));
    router.add("GET", "/v1/members", Access::read, bind(handle_members));
    router.add("POST", "/v1/members", Access::admin, bind(handle_add_member));
    router.add("POST", "/v1/members/{id}/promote", Access::admin, bind(handle_promote));
    router.add("DELETE", "/v1/members/{id}", Access::admin, bind(handle_remove));
    router.add("POST", "/v1/leader/transfer", Access::admin, bind(handle_transfer));
    router.add("POST", "/v1/snapshot", Access::admin, bind(handle_snapshot));
    router.add("GET", "/v1/snapshot", Access::admin, bind(handle_snapshot_download));
    // Probes stay open: a load balancer or supervisor holds no token.
    router.add("GET", "/healthz", Access::open, bind(handle_health));
    router.add("GET", "/readyz", Access::open, bind(handle_ready));
    router.add("GET", "/metrics", Access::read, bind(handle_metrics));
}

}  // namespace keel::daemon
