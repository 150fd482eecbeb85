// daemon/metrics.hpp — GET /metrics: a keel::NodeStatus in the Prometheus
// text exposition format (version 0.0.4).  Latencies are exported in seconds,
// as Prometheus convention asks, from keel's microsecond histograms.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "groups_summary.hpp"
#include "keel/status_report.hpp"

namespace keel::daemon {

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// The q-quantile (0 < q < 1) of a latency histogram in microseconds,
// interpolated linearly inside its bucket as Prometheus's
// histogram_quantile does; 0 when empty.  A quantile in the last (+inf)
// bucket is reported as the largest finite bound.
double histogram_quantile_us(const LatencyHistogram& h, double q);

// raftd's own figures: its HTTP server, request guard and storage quota.
struct DaemonFigures {
    std::uint64_t connections = 0;  // open now
    std::uint64_t requests = 0;     // handed to the routes
    // Requests refused before their body was read (request_guard.hpp), and
    // connections closed at once (over the global or the per-client cap),
    // by reason.
    std::map<std::string, std::uint64_t> requests_refused;
    std::map<std::string, std::uint64_t> connections_refused;
    // Times the acceptor paused because the process or system ran out of
    // file descriptors (EMFILE/ENFILE) instead of retrying at once.
    std::uint64_t accept_backoffs = 0;
    // Connections closed for a timeout, by phase: header, body, idle, ...
    std::map<std::string, std::uint64_t> timeouts;
    std::uint64_t tls_handshake_failures = 0;
    // This member's TLS handshakes with the other members' HTTPS
    // (member_client.hpp), and those that resumed a session.
    std::uint64_t member_tls_handshakes = 0;
    std::uint64_t member_tls_resumed = 0;
    std::uint64_t state_bytes = 0;  // the state machine's size (KvStateMachine::size_bytes)
    std::uint64_t quota_bytes = 0;  // --quota-bytes; 0: none
    // raftd --groups: the groups seen whole (keel_groups*); nullopt: none.
    std::optional<GroupsSummary> groups;
};

// `alarms`: those raised now (keel's and raftd's, see alarms.hpp); each of
// known_alarms() is listed as keel_alarm{alarm="NAME"} 0 or 1.  `daemon`:
// raftd's own figures (raftd_*), if any.
std::string render_metrics(const NodeStatus& status, const std::vector<std::string>& alarms = {},
                           const DaemonFigures* daemon = nullptr);

}  // namespace keel::daemon
