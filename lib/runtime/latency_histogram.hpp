// runtime/latency_histogram.hpp — a lock-free fixed-bucket latency recorder
// (microseconds) behind NodeStatus's histograms.  record_ns() and add() may
// be called from any thread; each costs a few relaxed atomic additions.
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
    static constexpr std::array<double, 17> kUpperBoundsUs = {
        10,    25,    50,    100,    250,    500,    1000,    2500, 5000,
        10000, 25000, 50000, 100000, 250000, 500000, 1000000, 1e300};

    // Counts gathered by one thread over a batch, added to the recorder at
    // once: a few atomic additions per batch instead of three per sample
    // (with 256 answers per fsync, those three were two thirds of the
    // samples in ApplyWorker::apply_entries).
    class Tally {
    public:
        void record_ns(std::uint64_t ns) {
            ++counts_[bucket(ns)];
            ++count_;
            sum_ns_ += ns;
        }

    private:
        friend class LatencyHistogramRecorder;
        std::array<std::uint64_t, kUpperBoundsUs.size()> counts_{};
        std::uint64_t count_ = 0;
        std::uint64_t sum_ns_ = 0;
    };

    void record_ns(std::uint64_t ns) {
        counts_[bucket(ns)].fetch_add(1, std::memory_order_relaxed);
        count_.fetch_add(1, std::memory_order_relaxed);
        sum_ns_.fetch_add(ns, std::memory_order_relaxed);
    }

    void add(const Tally& t) {
        if (t.count_ == 0) return;
        for (std::size_t b = 0; b < counts_.size(); ++b)
            if (t.counts_[b] != 0) counts_[b].fetch_add(t.counts_[b], std::memory_order_relaxed);
        count_.fetch_add(t.count_, std::memory_order_relaxed);
        sum_ns_.fetch_add(t.sum_ns_, std::memory_order_relaxed);
    }

    LatencyHistogram snapshot() const {
        LatencyHistogram h;
        h.upper_bounds_us.assign(kUpperBoundsUs.begin(), kUpperBoundsUs.end());
        h.upper_bounds_us.back() = std::numeric_limits<double>::infinity();
        for (const auto& c : counts_) h.counts.push_back(c.load(std::memory_order_relaxed));
        h.count = count_.load(std::memory_order_relaxed);
        h.sum_us = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1000.0;
        return h;
    }

private:
    static std::size_t bucket(std::uint64_t ns) {
        const double us = static_cast<double>(ns) / 1000.0;
        std::size_t b = 0;
        while (us > kUpperBoundsUs[b]) ++b;  // the last bound is "infinite"
        return b;
    }

    std::array<std::atomic<std::uint64_t>, kUpperBoundsUs.size()> counts_{};
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace keel::runtime
