// runtime/latency_histogram.hpp — a lock-free fixed-bucket latency recorder
// (microseconds) behind NodeStatus's histograms.  record() may be called
// from any thread; it costs a few relaxed atomic increments.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

#include "keel/status_report.hpp"

namespace keel::runtime {

inline std::uint64_t monotonic_ns() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

class LatencyHistogramRecorder {
public:
    static constexpr std::array<double, 17> k_upper_bounds_us = {
        10,    25,    50,    100,    250,    500,    1000,    2500, 5000,
        10000, 25000, 50000, 100000, 250000, 500000, 1000000, 1e300};

    void record_ns(std::uint64_t ns) {
        const double us = static_cast<double>(ns) / 1000.0;
        std::size_t b = 0;
        while (us > k_upper_bounds_us[b]) ++b;  // the last bound is "infinite"
        counts_[b].fetch_add(1, std::memory_order_relaxed);
        count_.fetch_add(1, std::memory_order_relaxed);
        sum_ns_.fetch_add(ns, std::memory_order_relaxed);
    }

    LatencyHistogram snapshot() const {
        LatencyHistogram h;
        h.upper_bounds_us.assign(k_upper_bounds_us.begin(), k_upper_bounds_us.end());
        h.upper_bounds_us.back() = std::numeric_limits<double>::infinity();
        for (const auto& c : counts_) h.counts.push_back(c.load(std::memory_order_relaxed));
        h.count = count_.load(std::memory_order_relaxed);
        h.sum_us = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1000.0;
        return h;
    }

private:
    std::array<std::atomic<std::uint64_t>, k_upper_bounds_us.size()> counts_{};
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace keel::runtime
