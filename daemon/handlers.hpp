// daemon/handlers.hpp — raftd's HTTP routes: the KV API (handlers_kv.cpp), the
// admin API (handlers_admin.cpp) and the status page (handlers_ui.cpp), on top
// of keel's public Node API.
//
// Threading: handlers run on an HTTP thread.  keel completes its *_async calls
// on its own threads (apply or I/O), which must never block, so any follow-up
// work there that touches the Node again (redirects, status) or reads the map
// is handed back to the HTTP threads through HandlerContext::defer.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "alarms.hpp"
#include "keel/node.hpp"
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
    // Writes go through it (gathered per HTTP thread); null: straight to
    // node.propose_async.
    std::shared_ptr<ProposalBatcher> proposals{};
};

void add_kv_routes(Router& router, HandlerContext& context);
void add_admin_routes(Router& router, HandlerContext& context);
// GET /ui (handlers_ui.cpp).
void add_ui_routes(Router& router, HandlerContext& context, std::shared_ptr<const StatusPage> page);

// The answer to a request that needs the leader, on a node that is not it:
// 307 to the leader's HTTP address (from its member metadata) with a JSON body
// naming it, or 503 no_leader with Retry-After when no leader is known.
// `leader_hint` 0 = ask the node's status for the current leader.
HttpResponse not_leader_response(const HandlerContext& context, NodeId leader_hint,
                                 const RouteRequest& request);

// keel's Mode as the API spells it ("single" / "cluster").
const char* mode_string(Mode mode);

// What --quota-bytes counts now: the larger of the state machine's size and the WAL's
// (read from keel's status at most StorageQuota::kWalBytesMaxAge ago, or
// now when `fresh`).  REQUIRES: context.quota.
std::uint64_t storage_usage_bytes(const HandlerContext& context, bool fresh);

}  // namespace keel::daemon
