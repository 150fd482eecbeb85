// tools/bench_windows.hpp — what the completions per slice of a benchmark's
// window say about stalls (raft-bench's window_ops_per_s_p50 and
// stalled_window_share; docs/decisions/0051-disk-stalls.md).
//
// A mean throughput hides a write path that stops: 10% of the time stalled
// and the rest fast averages to "a bit slower".  Counting completions per
// short slice separates the two: the median slice is the steady pace, and
// slices with almost nothing are stalls.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace raft_bench {

struct WindowFigures {
    double ops_per_s_p50 = 0;  // the median slice's throughput
    double stalled_share = 0;  // slices with under a fifth of the median's operations
};

// slices: operations completed in each slice_ms of the window (any order).
// No slices, or a slice length of 0, give zeros.  A run stalled for more
// than half its slices has a median of nothing and so no stalled share: read
// the figures beside the mean throughput, as the rows print them.
inline WindowFigures window_figures(std::vector<std::uint32_t> slices, int slice_ms) {
    WindowFigures f;
    if (slices.empty() || slice_ms <= 0) return f;
    std::sort(slices.begin(), slices.end());
    const std::uint64_t median = slices[slices.size() / 2];
    // Under a fifth: 5 * count < median, in integers.
    const auto stalled = std::partition_point(
        slices.begin(), slices.end(),
        [median](std::uint32_t count) { return 5 * std::uint64_t{count} < median; });
    f.ops_per_s_p50 = static_cast<double>(median) * (1000.0 / slice_ms);
    f.stalled_share =
        static_cast<double>(stalled - slices.begin()) / static_cast<double>(slices.size());
    return f;
}

}  // namespace raft_bench
