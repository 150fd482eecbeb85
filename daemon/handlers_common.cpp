#include <algorithm>
#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "handlers.hpp"

namespace keel::daemon {

std::optional<std::uint64_t> parse_u64(std::string_view text) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return v;
}

std::optional<bool> stale_read(const RouteRequest& request, Respond& respond) {
    auto consistency = request.query.find("consistency");
    if (consistency == request.query.end() || consistency->second == "linearizable") return false;
    if (consistency->second == "stale") return true;
    respond(
        error_response(400, "bad_request", "consistency must be \"linearizable\" or \"stale\""));
    return std::nullopt;
}

const char* mode_string(Mode mode) {
    return mode == Mode::single ? "single" : "cluster";
}

HttpResponse not_leader_response(const HandlerContext& context, NodeId leader_hint,
                                 const RouteRequest& request) {
    return not_leader_response(context, KvGroup{0, &context.node, &context.kv}, leader_hint,
                               request);
}

HttpResponse not_leader_response(const HandlerContext& context, const KvGroup& group,
                                 NodeId leader_hint, const RouteRequest& request) {
    const Node& node = *group.node;
    const NodeStatus status = node.status();
    NodeId leader = leader_hint != 0 ? leader_hint : status.leader_id;
    std::string http_address;
    if (leader != 0 && leader != status.id) {
        Result<MemberSpec> spec = node.member(leader);
        if (spec.ok()) http_address = spec->metadata;
    }
    if (http_address.empty()) {
        return error_response(503, "no_leader", "no leader is known; retry shortly");
    }
    nlohmann::json body = {{"error", "not_leader"},
                           {"message", "this node is not the leader"},
                           {"leader_id", leader},
                           {"leader_http", http_address}};
    if (group.id != 0) body["group"] = group.id;
    HttpResponse response;
    response.status = 307;
    response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    response.set_header("Location",
                        context.url_scheme + "://" + http_address + request.http.target);
    return response;
}

std::uint64_t total_state_bytes(const HandlerContext& context) {
    if (!context.sharded()) return context.kv.size_bytes();
    std::uint64_t bytes = 0;
    for (const KvGroup& group : context.groups) bytes += group.kv->size_bytes();
    return bytes;
}

std::uint64_t total_keys(const HandlerContext& context) {
    if (!context.sharded()) return context.kv.size();
    std::uint64_t keys = 0;
    for (const KvGroup& group : context.groups) keys += group.kv->size();
    return keys;
}

std::vector<NodeStatus> group_statuses(const HandlerContext& context) {
    if (!context.sharded()) return {context.node.status()};
    std::vector<NodeStatus> statuses;
    statuses.reserve(context.groups.size());
    for (const KvGroup& group : context.groups) statuses.push_back(group.node->status());
    return statuses;
}

std::optional<KvGroup> group_param(const HandlerContext& context, const RouteRequest& request,
                                   const char* name, Respond& respond) {
    auto find = [&](const Params& params) -> const std::string* {
        auto it = params.find(name);
        return it == params.end() ? nullptr : &it->second;
    };
    const std::string* text = find(request.params);
    if (!text) text = find(request.query);
    if (!text) {
        respond(error_response(
            400, "missing_field",
            fmt::format("{} (1..{}) is required with --groups", name, context.groups.size())));
        return std::nullopt;
    }
    std::uint64_t g = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), g);
    if (text->empty() || ec != std::errc() || end != text->data() + text->size()) {
        respond(error_response(400, "bad_request", fmt::format("{} must be an integer", name)));
        return std::nullopt;
    }
    if (g == 0 || g > context.groups.size()) {
        respond(error_response(
            404, "not_found",
            fmt::format("no group {}: the groups are 1..{}", g, context.groups.size())));
        return std::nullopt;
    }
    return context.groups[g - 1];
}

std::uint64_t storage_usage_bytes(const HandlerContext& context, bool fresh) {
    StorageQuota& quota = *context.quota;
    const auto now = std::chrono::steady_clock::now();
    if (fresh || quota.wal_bytes_stale(now))
        quota.note_wal_bytes(context.node.status().wal.bytes, now);
    return std::max(total_state_bytes(context), quota.wal_bytes());
}

}  // namespace keel::daemon
