// BlockQueue, the WAL's in-memory index container: checked against std::deque
// under random operations, and at its block edges (a block freed once its
// last element is erased, none held when empty).
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <random>

#include "block_queue.hpp"

using keel::wal::detail::BlockQueue;

TEST_CASE("block queue: grows a block at a time and frees blocks emptied at the front") {
    BlockQueue<std::uint64_t, 4> q;
    REQUIRE(q.empty());
    REQUIRE(q.blocks() == 0);
    for (std::uint64_t i = 0; i < 9; ++i) q.push_back(i);
    REQUIRE(q.size() == 9);
    REQUIRE(q.blocks() == 3);
    q.erase_front(3);  // the first block still holds one
    REQUIRE(q.blocks() == 3);
    REQUIRE(q[0] == 3);
    q.erase_front(1);  // now it is empty: freed
    REQUIRE(q.blocks() == 2);
    REQUIRE(q[0] == 4);
    REQUIRE(q[4] == 8);
    q.resize(2);  // 4, 5: the last block freed
    REQUIRE(q.blocks() == 1);
    REQUIRE(q[1] == 5);
    q.resize(6);  // grows with zeros
    REQUIRE(q.size() == 6);
    REQUIRE(q[2] == 0);
    REQUIRE(q.blocks() == 2);
    q.erase_front(6);
    REQUIRE(q.empty());
    REQUIRE(q.blocks() == 0);
    q.push_back(42);
    REQUIRE(q[0] == 42);
    BlockQueue<std::uint64_t, 4> moved(std::move(q));
    REQUIRE(moved.size() == 1);
    REQUIRE(moved[0] == 42);
}

TEST_CASE("block queue: random operations match std::deque") {
    const char* env = std::getenv("KEEL_SEED");
    const std::uint64_t seed =
        env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device{}();
    INFO("KEEL_SEED=" << seed);
    std::mt19937_64 rng(seed);
    BlockQueue<std::uint64_t, 8> q;
    std::deque<std::uint64_t> model;
    std::uint64_t next = 1;
    for (int step = 0; step < 20000; ++step) {
        const unsigned op = rng() % 10;
        if (op < 6) {
            q.push_back(next);
            model.push_back(next);
            ++next;
        } else if (op < 8 && !model.empty()) {
            const std::size_t n = rng() % (model.size() + 1);
            q.erase_front(n);
            model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
        } else if (op == 8) {
            const std::size_t n = rng() % (model.size() + 3);
            q.resize(n);
            model.resize(n);
        } else if (rng() % 50 == 0) {
            q.clear();
            model.clear();
        }
        REQUIRE(q.size() == model.size());
        // Never more blocks than the elements need, plus the partial first one.
        REQUIRE(q.blocks() <= (model.size() + 7) / 8 + 1);
        if (!model.empty()) {
            const std::size_t i = rng() % model.size();
            REQUIRE(q[i] == model[i]);
            REQUIRE(q[0] == model.front());
            REQUIRE(q[model.size() - 1] == model.back());
        }
    }
}
