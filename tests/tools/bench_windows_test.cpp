// raft-bench's window figures (tools/bench_windows.hpp): the median slice's
// throughput, and the share of slices with under a fifth of the median's
// operations.
#include <catch2/catch.hpp>

#include "bench_windows.hpp"

using raft_bench::window_figures;

TEST_CASE("a steady pace has no stalled slices") {
    const auto f = window_figures(std::vector<std::uint32_t>(100, 2000), 10);
    CHECK(f.ops_per_s_p50 == Approx(200000.0));
    CHECK(f.stalled_share == 0.0);
}

TEST_CASE("slices with under a fifth of the median's operations are stalls, in any order") {
    // 80 slices at 1000, 10 at 199 (under a fifth), 10 at 200 (exactly a fifth: not a stall).
    std::vector<std::uint32_t> slices;
    for (int i = 0; i < 10; ++i) {
        for (int j = 0; j < 8; ++j) slices.push_back(1000);
        slices.push_back(199);
        slices.push_back(200);
    }
    const auto f = window_figures(slices, 10);
    CHECK(f.ops_per_s_p50 == Approx(100000.0));
    CHECK(f.stalled_share == Approx(0.10));
}

TEST_CASE("a write path stopped most of the time has a median of nothing") {
    // 60% of the slices empty: the median slice is empty and nothing is
    // under a fifth of it; the mean would still say 40% of the pace.
    std::vector<std::uint32_t> slices(60, 0);
    slices.insert(slices.end(), 40, 500);
    const auto f = window_figures(slices, 10);
    CHECK(f.ops_per_s_p50 == 0.0);
    CHECK(f.stalled_share == 0.0);
}

TEST_CASE("the slice length scales the throughput; no slices give zeros") {
    CHECK(window_figures({7, 7, 7}, 100).ops_per_s_p50 == Approx(70.0));
    CHECK(window_figures({}, 10).ops_per_s_p50 == 0.0);
    CHECK(window_figures({5}, 0).stalled_share == 0.0);
}
