// daemon/metrics.hpp — GET /metrics: a keel::NodeStatus in the Prometheus
// text exposition format (version 0.0.4).  Latencies are exported in seconds,
// as Prometheus convention asks, from keel's microsecond histograms.
#pragma once

#include <string>
#include <vector>

#include "keel/status_report.hpp"

namespace keel::daemon {

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// The q-quantile (0 < q < 1) of a latency histogram in microseconds,
// interpolated linearly inside its bucket as Prometheus's
// histogram_quantile does; 0 when empty.  A quantile in the last (+inf)
// bucket is reported as the largest finite bound.
double histogram_quantile_us(const LatencyHistogram& h, double q);

// `alarms`: those raised now (keel's and raftd's, see alarms.hpp); each of
// known_alarms() is listed as keel_alarm{alarm="NAME"} 0 or 1.
std::string render_metrics(const NodeStatus& status, const std::vector<std::string>& alarms = {});

}  // namespace keel::daemon
