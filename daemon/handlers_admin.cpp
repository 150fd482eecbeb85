// The admin API: status, members, leadership transfer, snapshots, health,
// readiness and metrics.
#include <charconv>
#include <memory>
#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "groups_summary.hpp"
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

// The fields of one Raft group's status that /v1/status and /v1/groups/{g}
// both show.
json raft_status_json(const NodeStatus& s) {
    return {{"id", s.id},
            {"cluster_id", s.cluster_id},
            {"role", keel::role_name(s.role)},
            {"term", s.term},
            {"leader_id", s.leader_id},
            {"commit_index", s.commit_index},
            {"applied_index", s.applied_index},
            {"first_index", s.first_index},
            {"last_index", s.last_index},
            {"snapshot_index", s.snapshot_index},
            {"mode", mode_string(s.mode)},
            {"quiescent", s.quiescent},
            {"members", members_json(s)},
            {"timer_wakeups", s.timer_wakeups},
            {"elections", s.elections},
            {"proposals", s.proposals},
            {"commits", s.commits}};
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
    context.quota->refresh(total_state_bytes(context) + s.wal.bytes);
}

json groups_json(const GroupsSummary& g) {
    return {{"count", g.count},         {"led_here", g.led_here},
            {"quiescent", g.quiescent}, {"without_leader", g.without_leader},
            {"failed", g.failed},       {"alarms", g.alarms}};
}

void handle_status(HandlerContext& context, RouteRequest&, Respond respond) {
    std::vector<NodeStatus> groups = group_statuses(context);
    NodeStatus s = context.sharded() ? combined_status(groups) : groups.front();
    refresh_quota(context, s);
    json body = raft_status_json(s);
    body.update({{"snapshots_damaged", s.snapshots_damaged},
                 {"keys", total_keys(context)},
                 {"state_bytes", total_state_bytes(context)},
                 {"quota_bytes", context.quota ? context.quota->quota_bytes() : 0},
                 {"wal",
                  {{"segments", s.wal.segments},
                   {"bytes", s.wal.bytes},
                   {"fsyncs", s.wal.fsyncs},
                   {"records", s.wal.records},
                   {"records_per_fsync", s.wal.records_per_fsync}}},
                 {"commit_latency", histogram_summary(s.commit_latency)},
                 {"fsync_latency", histogram_summary(s.fsync_latency)},
                 {"alarms", active_alarms(s, *context.alarms)}});
    if (!s.failure.empty()) body["failure"] = s.failure;
    if (context.sharded()) {
        body["groups"] = groups_json(summarize_groups(groups));
        if (context.peer_processes) body["groups"]["peers"] = context.peer_processes();
        if (context.leader_transfers) {
            const auto [asked, failed] = context.leader_transfers();
            body["groups"]["leader_transfers"] = {{"asked", asked}, {"failed", failed}};
        }
    }
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

// Runs `call` on each of `groups` at once; `done` runs once every one has
// answered, with the first refusal and its group (ok when none refused), on
// the keel thread of the last answer.
using GroupCall = std::function<void(Node&, std::function<void(Status)>)>;
void fan_out(const std::vector<KvGroup>& groups, const GroupCall& call,
             std::function<void(Status, KvGroup)> done) {
    if (groups.empty()) return done(Status(), KvGroup{});
    struct Calls {
        std::mutex mu;
        std::size_t waiting = 0;  // GUARDED_BY(mu)
        Status refusal;           // GUARDED_BY(mu): the first one
        KvGroup refused_group;    // GUARDED_BY(mu)
        std::function<void(Status, KvGroup)> done;
    };
    auto calls = std::make_shared<Calls>();
    calls->waiting = groups.size();
    calls->done = std::move(done);
    for (const KvGroup& group : groups) {
        call(*group.node, [group, calls](Status status) {
            {
                std::lock_guard lock(calls->mu);
                if (!status.ok() && calls->refusal.ok()) {
                    calls->refusal = status;
                    calls->refused_group = group;
                }
                if (--calls->waiting != 0) return;
            }
            calls->done(calls->refusal, calls->refused_group);
        });
    }
}

// Runs `call` on `groups` (fan_out) and answers with the first refusal (a
// not_leader one redirected to that group's leader) or with on_ok.
void on_groups(HandlerContext& context, const RouteRequest& request, Respond respond,
               const std::vector<KvGroup>& groups, const GroupCall& call,
               std::function<HttpResponse()> on_ok) {
    auto target = std::make_shared<RouteRequest>();
    target->http.target = request.http.target;
    fan_out(groups, call,
            [&context, target, respond = std::move(respond), on_ok = std::move(on_ok)](
                Status refusal, KvGroup refused_group) {
                context.defer([&context, target, respond, on_ok, refusal, refused_group] {
                    if (refusal.code() == ErrorCode::not_leader)
                        return respond(not_leader_response(context, refused_group, 0, *target));
                    if (!refusal.ok()) return respond(error_from_status(refusal));
                    respond(on_ok());
                });
            });
}

// Every group: with --groups the N groups, else the node (as group 0).
std::vector<KvGroup> every_group(const HandlerContext& context) {
    if (context.sharded()) return context.groups;
    return {KvGroup{0, &context.node, &context.kv}};
}

// Membership changes apply to every group: with --groups each member is a
// member of every group, and the groups' leaders are spread over the
// members.  This member makes the change in the groups it leads that lack
// it (`applied` says a group has it: a retried or redirected request skips
// those), then, while some group lacks it as far as this member sees,
// redirects to that group's leader, which does the same: a client that
// follows redirects (curl -L) walks the members until every group has it.
using Applied = std::function<bool(const Node&)>;
void change_every_group(HandlerContext& context, const RouteRequest& request, Respond respond,
                        const GroupCall& call, Applied applied,
                        std::function<HttpResponse()> on_ok) {
    if (!context.sharded()) {
        return on_groups(context, request, std::move(respond), every_group(context), call,
                         std::move(on_ok));
    }
    std::vector<KvGroup> here;
    for (const KvGroup& group : context.groups) {
        if (!applied(*group.node) && group.node->status().role == Role::leader)
            here.push_back(group);
    }
    auto target = std::make_shared<RouteRequest>();
    target->http.target = request.http.target;
    fan_out(here, call,
            [&context, target, respond = std::move(respond), applied = std::move(applied),
             on_ok = std::move(on_ok)](Status refusal, KvGroup) {
                context.defer([&context, target, respond, applied, on_ok, refusal] {
                    // not_leader: that group's leadership moved; it is
                    // redirected below like the others.
                    if (!refusal.ok() && refusal.code() != ErrorCode::not_leader)
                        return respond(error_from_status(refusal));
                    for (const KvGroup& group : context.groups) {
                        if (!applied(*group.node))
                            return respond(not_leader_response(context, group, 0, *target));
                    }
                    respond(on_ok());
                });
            });
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
    // With --groups the new member is a process the Host must reach first
    // (a retry finds it there already).
    if (context.add_process) {
        if (Status s = context.add_process(spec); !s.ok()) return respond(error_from_status(s));
    }
    change_every_group(
        context, request, std::move(respond),
        [spec](Node& node, std::function<void(Status)> done) {
            node.add_member_async(spec, std::move(done));
        },
        [spec](const Node& node) {
            Result<MemberSpec> now = node.member(spec.id);
            return now.ok() && now->raft_address == spec.raft_address &&
                   now->metadata == spec.metadata && now->voter == spec.voter;
        },
        [answer] {
            return json_response(200, dump({{"added", answer}}));
        });
}

void handle_promote(HandlerContext& context, RouteRequest& request, Respond respond) {
    auto id = id_param(request, respond);
    if (!id) return;
    NodeId member = *id;
    change_every_group(
        context, request, std::move(respond),
        [member](Node& node, std::function<void(Status)> done) {
            node.promote_member_async(member, std::move(done));
        },
        [member](const Node& node) {
            Result<MemberSpec> now = node.member(member);
            return now.ok() && now->voter;
        },
        [member] {
            return json_response(200, dump({{"promoted", member}}));
        });
}

void handle_remove(HandlerContext& context, RouteRequest& request, Respond respond) {
    auto id = id_param(request, respond);
    if (!id) return;
    NodeId member = *id;
    change_every_group(
        context, request, std::move(respond),
        [member](Node& node, std::function<void(Status)> done) {
            node.remove_member_async(member, std::move(done));
        },
        [member](const Node& node) { return !node.member(member).ok(); },
        [member] {
            return json_response(200, dump({{"removed", member}}));
        });
}

void handle_transfer(HandlerContext& context, RouteRequest& request, Respond respond) {
    auto body = json_object_body(request, respond);
    if (!body) return;
    auto to = id_field(*body, "to", respond);
    if (!to) return;
    NodeId target = *to;
    std::vector<KvGroup> groups = every_group(context);
    if (context.sharded()) {
        // One group ("group": g), else every group led here.
        if (auto g = body->find("group"); g != body->end()) {
            if (!g->is_number_unsigned() || g->get<std::uint64_t>() == 0 ||
                g->get<std::uint64_t>() > context.groups.size()) {
                return respond(error_response(
                    400, "wrong_type",
                    fmt::format("\"group\" must be an integer in 1..{}", context.groups.size())));
            }
            groups = {context.groups[g->get<std::uint64_t>() - 1]};
        } else {
            std::erase_if(groups, [](const KvGroup& group) {
                return group.node->status().role != Role::leader;
            });
        }
    }
    const std::size_t count = groups.size();
    on_groups(
        context, request, std::move(respond), groups,
        [target](Node& node, std::function<void(Status)> done) {
            node.transfer_leadership_async(target, std::move(done));
        },
        [&context, target, count] {
            json answer = {{"transferred_to", target}};
            if (context.sharded()) answer["groups"] = count;
            return json_response(200, dump(answer));
        });
}

// Concurrent requests share the running snapshot (snapshot_gate.hpp).
// With --groups, every group takes one; the answer's snapshot_index is group
// 1's.
void handle_snapshot(HandlerContext& context, RouteRequest& request, Respond respond) {
    context.snapshots->run(
        [groups = every_group(context)](SnapshotGate::Done done) {
            fan_out(
                groups,
                [](Node& node, std::function<void(Status)> one) {
                    node.snapshot_async(std::move(one));
                },
                [done = std::move(done)](Status status, KvGroup) { done(status); });
        },
        finish(context, request, std::move(respond), [&context] {
            json answer = {{"snapshot_index", context.node.status().snapshot_index}};
            if (context.sharded()) answer["groups"] = context.groups.size();
            return json_response(200, dump(answer));
        }));
}

// GET /v1/snapshot: the latest snapshot file, streamed: a backup
// (keelctl snapshot save; raftd --restore).  Its index, term and data
// checksum go in headers, so a client can check what it received.
// With --groups, ?group=g names the group (each has its own snapshots).
void handle_snapshot_download(HandlerContext& context, RouteRequest& request, Respond respond) {
    Node* node = &context.node;
    if (context.sharded()) {
        std::optional<KvGroup> group = group_param(context, request, "group", respond);
        if (!group) return;
        node = group->node;
    }
    auto source = node->open_latest_snapshot();
    if (!source.ok()) {
        if (source.status().code() == ErrorCode::not_found)
            return respond(error_response(
                404, "no_snapshot", source.status().message() + " (POST /v1/snapshot takes one)"));
        return respond(error_from_status(source.status()));
    }
    std::shared_ptr<SnapshotFileSource> file(std::move(source.value()));
    const SnapshotFileInfo& info = file->info();
    HttpResponse response;
    response.content_type = "application/octet-stream";
    response.set_header("X-Keel-Snapshot-Index", std::to_string(info.index));
    response.set_header("X-Keel-Snapshot-Term", std::to_string(info.term));
    response.set_header("X-Keel-Snapshot-Data-Crc32", fmt::format("{:08x}", info.data_crc32));
    response.set_header(
        "Content-Disposition",
        fmt::format("attachment; filename=\"snapshot-{}-{}.snap\"", info.index, info.term));
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
    NodeStatus s = combined_status(group_statuses(context));
    if (!s.failure.empty())
        return respond(json_response(503, dump({{"status", "failed"}, {"reason", s.failure}})));
    // A joiner reads the group count before it writes anything (cluster_probe.hpp).
    if (context.sharded())
        return respond(
            json_response(200, dump({{"status", "ok"}, {"groups", context.groups.size()}})));
    respond(json_response(200, R"({"status":"ok"})"));
}

// With --groups: ready once every group is (the first that is not is named).
void handle_ready(HandlerContext& context, RouteRequest&, Respond respond) {
    const std::vector<NodeStatus> groups = group_statuses(context);
    for (std::size_t i = 0; i < groups.size(); ++i) {
        const NodeStatus& s = groups[i];
        const std::string which = context.sharded() ? fmt::format("group {}: ", i + 1) : "";
        if (!s.failure.empty()) return respond(error_response(503, "failed", which + s.failure));
        // A joiner's group that no member has added: the cluster may have
        // fewer groups than this process (group_count_guard.hpp).
        if (context.sharded() && s.members.empty())
            return respond(error_response(
                503, "not_ready",
                which + "not added to the cluster yet (a joiner's --groups must be the "
                        "cluster's)"));
        if (s.leader_id == 0)
            return respond(error_response(503, "not_ready", which + "no leader is known"));
        if (s.applied_index + context.limits.ready_max_apply_lag_entries < s.commit_index) {
            return respond(
                error_response(503, "not_ready", which + "still applying the committed log"));
        }
    }
    respond(json_response(200, dump({{"ready", true}, {"leader_id", groups.front().leader_id}})));
}

void handle_metrics(HandlerContext& context, RouteRequest&, Respond respond) {
    HttpResponse response;
    std::vector<NodeStatus> groups = group_statuses(context);
    NodeStatus status = context.sharded() ? combined_status(groups) : groups.front();
    refresh_quota(context, status);
    DaemonFigures figures;
    if (context.server_figures) figures = context.server_figures();
    if (context.sharded()) figures.groups = summarize_groups(groups);
    figures.state_bytes = total_state_bytes(context);
    if (context.quota) figures.quota_bytes = context.quota->quota_bytes();
    response.body = render_metrics(status, active_alarms(status, *context.alarms), &figures);
    response.content_type = kMetricsContentType;
    respond(std::move(response));
}

// GET /v1/groups/{g}: one group of raftd --groups as this member sees it.
void handle_group(HandlerContext& context, RouteRequest& request, Respond respond) {
    if (!context.sharded())
        return respond(error_response(404, "not_found", "raftd runs without --groups"));
    std::optional<KvGroup> group = group_param(context, request, "g", respond);
    if (!group) return;
    const NodeStatus s = group->node->status();
    json body = raft_status_json(s);
    body.update({{"group", group->id},
                 {"keys", group->kv->size()},
                 {"state_bytes", group->kv->size_bytes()},
                 {"commit_latency", histogram_summary(s.commit_latency)},
                 {"alarms", s.alarms}});
    if (!s.failure.empty()) body["failure"] = s.failure;
    respond(json_response(200, dump(body)));
}

// GET /v1/groups: every group in one line each (who leads it, in which term).
void handle_groups(HandlerContext& context, RouteRequest&, Respond respond) {
    if (!context.sharded())
        return respond(error_response(404, "not_found", "raftd runs without --groups"));
    json groups = json::array();
    for (const KvGroup& group : context.groups) {
        const NodeStatus s = group.node->status();
        groups.push_back({{"group", group.id},
                          {"role", keel::role_name(s.role)},
                          {"term", s.term},
                          {"leader_id", s.leader_id},
                          {"commit_index", s.commit_index},
                          {"quiescent", s.quiescent}});
    }
    respond(json_response(200, dump({{"count", context.groups.size()}, {"groups", groups}})));
}

}  // namespace

void add_group_routes(Router& router, HandlerContext& context) {
    HandlerContext* c = &context;
    router.add("GET", "/v1/groups", Access::read,
               [c](RouteRequest& r, Respond done) { handle_groups(*c, r, std::move(done)); });
    router.add("GET", "/v1/groups/{g}", Access::read,
               [c](RouteRequest& r, Respond done) { handle_group(*c, r, std::move(done)); });
}

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
