#include <catch2/catch.hpp>

#include "metrics.hpp"

using namespace keel::daemon;

TEST_CASE("metrics render in Prometheus text format with cumulative buckets", "[daemon][metrics]") {
    keel::NodeStatus s;
    s.role = keel::Role::leader;
    s.term = 5;
    s.timer_wakeups = 0;
    s.wal.bytes = 4096;
    s.fsync_latency.upper_bounds_us = {100, 1000, 1.0 / 0.0};
    s.fsync_latency.counts = {3, 2, 1};
    s.fsync_latency.count = 6;
    s.fsync_latency.sum_us = 2500;
    std::string text = render_metrics(s);
    CHECK(text.find("# TYPE keel_term gauge\nkeel_term 5\n") != std::string::npos);
    CHECK(text.find("keel_role{role=\"leader\"} 1\n") != std::string::npos);
    CHECK(text.find("keel_role{role=\"follower\"} 0\n") != std::string::npos);
    CHECK(text.find("keel_timer_wakeups_total 0\n") != std::string::npos);
    CHECK(text.find("keel_wal_bytes 4096\n") != std::string::npos);
    CHECK(text.find("keel_fsync_latency_seconds_bucket{le=\"0.0001\"} 3\n") != std::string::npos);
    CHECK(text.find("keel_fsync_latency_seconds_bucket{le=\"0.001\"} 5\n") != std::string::npos);
    CHECK(text.find("keel_fsync_latency_seconds_bucket{le=\"+Inf\"} 6\n") != std::string::npos);
    CHECK(text.find("keel_fsync_latency_seconds_count 6\n") != std::string::npos);
    CHECK(text.find("keel_commit_latency_seconds_count 0\n") != std::string::npos);
}

TEST_CASE("refused peer messages are exported by reason", "[daemon][metrics]") {
    keel::NodeStatus s;
    s.peer_messages_rejected = {{"not_a_member", 3}, {"term_out_of_range", 1}};
    std::string text = render_metrics(s);
    CHECK(text.find("# TYPE keel_peer_messages_rejected_total counter\n") != std::string::npos);
    CHECK(text.find("keel_peer_messages_rejected_total{reason=\"not_a_member\"} 3\n") !=
          std::string::npos);
    CHECK(text.find("keel_peer_messages_rejected_total{reason=\"term_out_of_range\"} 1\n") !=
          std::string::npos);
}

TEST_CASE("latency quantiles are interpolated inside their bucket", "[daemon][metrics]") {
    keel::LatencyHistogram h;
    h.upper_bounds_us = {100, 1000, 1e300};
    h.counts = {0, 0, 0};
    CHECK(histogram_quantile_us(h, 0.5) == 0);
    h.counts = {2, 2, 0};
    h.count = 4;
    CHECK(histogram_quantile_us(h, 0.5) == Approx(100));   // the 2nd of 4 ends the first bucket
    CHECK(histogram_quantile_us(h, 0.75) == Approx(550));  // halfway through 100..1000
    h.counts = {0, 1, 3};
    CHECK(histogram_quantile_us(h, 0.99) == Approx(1000));  // +inf: the largest finite bound
}
