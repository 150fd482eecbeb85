// LatencyHistogramRecorder: a Tally added at once counts exactly what
// recording each sample would, bucket by bucket.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <vector>

#include "runtime/latency_histogram.hpp"

using keel::runtime::LatencyHistogramRecorder;

TEST_CASE("a tally added at once equals recording each sample", "[latency_histogram]") {
    // On the bounds, just over them, zero and far past the last finite bound.
    const std::vector<std::uint64_t> samples_ns = {0,
                                                   1,
                                                   10'000,
                                                   10'001,
                                                   25'000,
                                                   99'999,
                                                   1'000'000'000,
                                                   1'000'000'001,
                                                   5'000'000,
                                                   77'777'777,
                                                   std::numeric_limits<std::uint64_t>::max() / 2};
    LatencyHistogramRecorder one_by_one;
    LatencyHistogramRecorder batched;
    LatencyHistogramRecorder::Tally tally;
    for (std::uint64_t ns : samples_ns) {
        one_by_one.record_ns(ns);
        tally.record_ns(ns);
    }
    batched.add(tally);
    const keel::LatencyHistogram a = one_by_one.snapshot();
    const keel::LatencyHistogram b = batched.snapshot();
    CHECK(a.counts == b.counts);
    CHECK(a.count == samples_ns.size());
    CHECK(b.count == a.count);
    CHECK(b.sum_us == a.sum_us);
    // A bound belongs to its own bucket; one nanosecond more to the next.
    CHECK(a.counts[0] == 3);      // 0, 1 ns, 10 us
    CHECK(a.counts[1] == 2);      // 10.001 us, 25 us
    CHECK(a.counts.back() == 2);  // beyond 1 s
}

TEST_CASE("adding an empty tally changes nothing", "[latency_histogram]") {
    LatencyHistogramRecorder r;
    r.record_ns(5'000);
    r.add(LatencyHistogramRecorder::Tally{});
    const keel::LatencyHistogram h = r.snapshot();
    CHECK(h.count == 1);
    CHECK(h.counts[0] == 1);
}
