#include <algorithm>
#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "handlers.hpp"

namespace keel::daemon {

const char* mode_string(Mode mode) {
    return mode == Mode::single ? "single" : "cluster";
}

HttpResponse not_leader_response(const HandlerContext& context, NodeId leader_hint,
                                 const RouteRequest& request) {
    NodeId leader = leader_hint != 0 ? leader_hint : context.node.status().leader_id;
    const NodeId self = context.node.status().id;
    std::string http_address;
    if (leader != 0 && leader != self) {
        Result<MemberSpec> spec = context.node.member(leader);
        if (spec.ok()) http_address = spec->metadata;
    }
    if (http_address.empty()) {
        return error_response(503, "no_leader", "no leader is known; retry shortly");
    }
    nlohmann::json body = {{"error", "not_leader"},
                           {"message", "this node is not the leader"},
                           {"leader_id", leader},
                           {"leader_http", http_address}};
    HttpResponse response;
    response.status = 307;
    response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    response.set_header("Location",
                        context.url_scheme + "://" + http_address + request.http.target);
    return response;
}

std::uint64_t storage_usage_bytes(const HandlerContext& context, bool fresh) {
    StorageQuota& quota = *context.quota;
    const auto now = std::chrono::steady_clock::now();
    if (fresh || quota.wal_bytes_stale(now))
        quota.note_wal_bytes(context.node.status().wal.bytes, now);
    return std::max(context.kv.size_bytes(), quota.wal_bytes());
}

}  // namespace keel::daemon
