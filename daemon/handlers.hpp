// daemon/handlers.hpp — raftd's HTTP routes: the KV API (handlers_kv.cpp), the
// admin API (handlers_admin.cpp) and the status page (handlers_ui.cpp), on top
// of keel's public Node API: one node, or with --groups the groups of the key
// space (HandlerContext::groups; each key's requests go to its group).
//
// Threading: handlers run on an HTTP thread.  keel completes its *_async calls
// on its own threads (apply or I/O), which must never block, so any follow-up
// work there that touches the Node again (redirects, status) or reads the map
// is handed back to the HTTP threads through HandlerContext::defer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "alarms.hpp"
#include "keel/node.hpp"
#include "kv_shards.hpp"
#include "kv_state_machine.hpp"
#include "metrics.hpp"
#include "proposal_batcher.hpp"
#include "router.hpp"
#include "snapshot_gate.hpp"
#include "status_page.hpp"
#include "storage_quota.hpp"

namespace keel::daemon {

struct HandlerLimits {
    std::size_t max_key_bytes = 4096;
    std::size_t max_value_bytes = 1 << 20;  // 1 MiB
    std::size_t max_list_limit = 10000;     // keys per GET /v1/kv
    std::size_t default_list_limit = 100;
    // /readyz: "caught up" = applied within this many entries of commit.
    std::uint64_t ready_max_apply_lag_entries = 1000;
};

struct HandlerContext {
    // Without --groups: the node and its map, which hold every key.  With
    // --groups: group 1's (its membership is every group's).
    Node& node;
    KvStateMachine& kv;
    HandlerLimits limits;
    // Runs `work` on an HTTP thread soon (never inline on a keel thread).
    std::function<void(std::function<void()>)> defer;
    // Alarms raftd raises itself (shown with keel's own).
    std::shared_ptr<DaemonAlarms> alarms = std::make_shared<DaemonAlarms>();
    // --quota-bytes (raising its alarm in `alarms`); null: no quota.
    std::shared_ptr<StorageQuota> quota{};
    // One POST /v1/snapshot at a time.
    std::shared_ptr<SnapshotGate> snapshots = std::make_shared<SnapshotGate>();
    // "https" when the API is served over TLS: redirects name it.  Every
    // member is expected to serve the same scheme.
    std::string url_scheme = "http";
    // The HTTP server's and request guard's figures for /metrics; null: none.
    std::function<DaemonFigures()> server_figures{};
    // Writes go through it (gathered per HTTP thread, a batch per group;
    // its group indexes are KvGroup::index); null: straight to the key's
    // group's propose_async.
    std::shared_ptr<ProposalBatcher> proposals{};
    // With --groups N: the N groups of the key space, groups[g - 1] being
    // group g (kv_shards.hpp); empty without --groups.
    std::vector<KvGroup> groups{};

    // With --groups: makes a process the Host reaches, before it is added to
    // the groups (POST /v1/members; group_peer_sync.hpp).  Null without.
    std::function<Status(const MemberSpec&)> add_process{};
    // With --groups: the processes the Host reaches now, by id (/v1/status
    // groups.peers).  Null without.
    std::function<std::vector<NodeId>()> peer_processes{};
    // With --groups: the leader rebalancer's transfers since start, asked
    // and failed (/v1/status groups.leader_transfers).  Null without.
    std::function<std::pair<std::uint64_t, std::uint64_t>()> leader_transfers{};
    // With --groups: GET `target` from the member whose HTTP address is
    // `address`, with the client's `credentials` (http_types.hpp; passed on
    // only where member_client.hpp allows), off the HTTP threads
    // (forward_pool.hpp, member_client.hpp); `done` runs on another thread.
    // false (and `done` not run) when it cannot be taken now.  Null: no
    // calls to other members, so a linearizable list of groups led
    // elsewhere answers 503.
    using ForwardDone = std::function<void(Result<HttpAnswer>)>;
    std::function<bool(std::string address, std::string target, std::string credentials,
                       ForwardDone done)>
        forward_get{};

    bool sharded() const { return !groups.empty(); }
    // The group that holds `key`.
    KvGroup group_of(std::string_view key) const {
        if (groups.empty()) return KvGroup{0, &node, &kv};
        return groups[group_of_key(key, groups.size()) - 1];
    }
};

void add_kv_routes(Router& router, HandlerContext& context);
// GET /v1/kv (handlers_list.cpp; add_kv_routes routes it).
void handle_list(HandlerContext& context, RouteRequest& request, Respond respond);
void add_admin_routes(Router& router, HandlerContext& context);
// GET /v1/groups and /v1/groups/{g} (handlers_admin.cpp): 404 without
// --groups.
void add_group_routes(Router& router, HandlerContext& context);
// GET /ui (handlers_ui.cpp).
void add_ui_routes(Router& router, HandlerContext& context, std::shared_ptr<const StatusPage> page);

// The answer to a request that needs the leader, on a node that is not it:
// 307 to the leader's HTTP address (from its member metadata) with a JSON body
// naming it, or 503 no_leader with Retry-After when no leader is known.
// `leader_hint` 0 = ask the node's status for the current leader.
HttpResponse not_leader_response(const HandlerContext& context, NodeId leader_hint,
                                 const RouteRequest& request);
// The same for a request to `group` (with --groups, the body names it:
// "group": g).
HttpResponse not_leader_response(const HandlerContext& context, const KvGroup& group,
                                 NodeId leader_hint, const RouteRequest& request);

// A decimal integer >= 0 with nothing else; nullopt otherwise.
std::optional<std::uint64_t> parse_u64(std::string_view text);
// The read consistency asked for (?consistency=): true for stale, false for
// linearizable; nullopt (after answering 400) for anything else.
std::optional<bool> stale_read(const RouteRequest& request, Respond& respond);

// keel's Mode as the API spells it ("single" / "cluster").
const char* mode_string(Mode mode);

// The maps' size and keys: every group's with --groups.
std::uint64_t total_state_bytes(const HandlerContext& context);
std::uint64_t total_keys(const HandlerContext& context);
// Every group's status, in group order (without --groups: the node's).
std::vector<NodeStatus> group_statuses(const HandlerContext& context);
// The group named by the request's path parameter or query field `name`
// (1..N); nullopt after answering 400 (missing, not a number) or 404 (no
// such group).  REQUIRES: context.sharded().
std::optional<KvGroup> group_param(const HandlerContext& context, const RouteRequest& request,
                                   const char* name, Respond& respond);

// What --quota-bytes counts now: the larger of the state machine's size and the WAL's
// (read from keel's status at most StorageQuota::kWalBytesMaxAge ago, or
// now when `fresh`).  REQUIRES: context.quota.
std::uint64_t storage_usage_bytes(const HandlerContext& context, bool fresh);

}  // namespace keel::daemon
