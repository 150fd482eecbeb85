// daemon/metrics.hpp — GET /metrics: a keel::NodeStatus in the Prometheus
// text exposition format (version 0.0.4).  Latencies are exported in seconds,
// as Prometheus convention asks, from keel's microsecond histograms.
#pragma once

#include <string>

#include "keel/status_report.hpp"

namespace keel::daemon {

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string render_metrics(const NodeStatus& status);

}  // namespace keel::daemon
