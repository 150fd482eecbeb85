// RingQueue: a deque in one block that allocates nothing while never used,
// checked against std::deque and at its edges (empty, wrap-around, growth,
// shrinking, the smallest block).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <random>
#include <string>

#include "keel/ring_queue.hpp"

using keel::RingQueue;

namespace {

template <typename T>
std::deque<T> contents(const RingQueue<T>& q) {
    return std::deque<T>(q.begin(), q.end());
}

}  // namespace

TEST_CASE("ring queue: an empty queue holds no block") {
    RingQueue<int> q;
    REQUIRE(q.empty());
    REQUIRE(q.size() == 0);
    REQUIRE(q.capacity() == 0);
    REQUIRE(q.begin() == q.end());
    q.clear();
    REQUIRE(q.capacity() == 0);
    RingQueue<int> moved(std::move(q));
    REQUIRE(moved.capacity() == 0);
    RingQueue<int> copied(moved);
    REQUIRE(copied.capacity() == 0);
}

TEST_CASE(
    "ring queue: the first push allocates the smallest block, which popping keeps and clear "
    "frees") {
    RingQueue<int> q;
    q.push_back(1);
    REQUIRE(q.capacity() == RingQueue<int>::kMinCapacity);
    REQUIRE(q.front() == 1);
    REQUIRE(q.back() == 1);
    q.pop_front();
    REQUIRE(q.empty());
    REQUIRE(q.capacity() == RingQueue<int>::kMinCapacity);
    // Between empty and one element, round and round the block: no reallocation.
    for (int i = 0; i < 100; ++i) {
        q.push_back(i);
        REQUIRE(q.front() == i);
        q.pop_front();
    }
    REQUIRE(q.capacity() == RingQueue<int>::kMinCapacity);
    q.push_back(7);
    q.clear();
    REQUIRE(q.empty());
    REQUIRE(q.capacity() == 0);
    q.push_back(8);  // usable again after clear
    REQUIRE(q.front() == 8);
}

TEST_CASE("ring queue: wrapped around the block, order and indexing hold") {
    RingQueue<int> q;
    for (int i = 0; i < 4; ++i) q.push_back(i);  // full: 0 1 2 3
    q.pop_front();
    q.pop_front();
    q.push_back(4);
    q.push_back(5);  // 2 3 4 5, its front at slot 2: wrapped
    REQUIRE(q.capacity() == 4);
    REQUIRE(contents(q) == std::deque<int>{2, 3, 4, 5});
    REQUIRE(q[0] == 2);
    REQUIRE(q[3] == 5);
    REQUIRE(q.back() == 5);
    // Growing a wrapped block keeps the order.
    q.push_back(6);
    REQUIRE(q.capacity() == 8);
    REQUIRE(contents(q) == std::deque<int>{2, 3, 4, 5, 6});
    // Truncating and erasing across the wrap.
    q.truncate(3);
    REQUIRE(contents(q) == std::deque<int>{2, 3, 4});
    q.erase_front(2);
    REQUIRE(contents(q) == std::deque<int>{4});
}

TEST_CASE(
    "ring queue: grows by doubling and shrinks once a quarter full, not below the smallest block") {
    RingQueue<int> q;
    for (int i = 0; i < 1000; ++i) q.push_back(i);
    REQUIRE(q.capacity() == 1024);
    q.erase_front(743);  // 257 left: more than a quarter of 1024
    REQUIRE(q.capacity() == 1024);
    q.pop_front();  // 256: a quarter
    REQUIRE(q.capacity() == 512);
    REQUIRE(q.front() == 744);
    REQUIRE(q.back() == 999);
    q.truncate(5);  // halved while a quarter full or less: 512 -> 16
    REQUIRE(q.capacity() == 16);
    REQUIRE(contents(q) == std::deque<int>{744, 745, 746, 747, 748});
    q.truncate(0);
    REQUIRE(q.capacity() == RingQueue<int>::kMinCapacity);
}

TEST_CASE(
    "ring queue: erasing while keeping a block for N leaves room for N, and shrinks below it") {
    RingQueue<int> q;
    // Emptied and refilled to 256, batch after batch: one block throughout.
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 256; ++i) q.push_back(round * 1000 + i);
        REQUIRE(q.capacity() == 256);
        q.erase_front_keeping(200, 256);
        REQUIRE(q.capacity() == 256);
        REQUIRE(q.front() == round * 1000 + 200);
        q.erase_front_keeping(56, 256);
        REQUIRE(q.empty());
        REQUIRE(q.capacity() == 256);
    }
    // Fewer to keep: halved while a quarter full or less and still room for
    // `keep`, not below the smallest block.
    for (int i = 0; i < 256; ++i) q.push_back(i);
    q.erase_front_keeping(250, 20);  // 6 left: 256 -> 32 (16 would not hold 20)
    REQUIRE(q.capacity() == 32);
    REQUIRE(contents(q) == std::deque<int>{250, 251, 252, 253, 254, 255});
    q.erase_front_keeping(6, 0);
    REQUIRE(q.capacity() == RingQueue<int>::kMinCapacity);
    // More left than `keep`: the usual quarter rule.
    for (int i = 0; i < 64; ++i) q.push_back(i);
    q.erase_front_keeping(20, 1);  // 44 left of 64: kept
    REQUIRE(q.capacity() == 64);
    REQUIRE(q.front() == 20);
}

TEST_CASE("ring queue: the iterator is random access (lower_bound, distances, reverse)") {
    RingQueue<int> q;
    for (int i = 0; i < 6; ++i) q.push_back(i * 10);
    q.erase_front(3);
    for (int i = 6; i < 9; ++i) q.push_back(i * 10);  // 30..80, wrapped in a block of 8
    auto it = std::lower_bound(q.begin(), q.end(), 55);
    REQUIRE(it - q.begin() == 3);
    REQUIRE(*it == 60);
    REQUIRE(it[1] == 70);
    REQUIRE(*(it - 1) == 50);
    REQUIRE(std::lower_bound(q.begin(), q.end(), 99) == q.end());
    std::deque<int> reversed(std::make_reverse_iterator(q.end()),
                             std::make_reverse_iterator(q.begin()));
    REQUIRE(reversed == std::deque<int>{80, 70, 60, 50, 40, 30});
    const RingQueue<int>& cq = q;
    RingQueue<int>::const_iterator c = q.begin();
    REQUIRE(c == cq.begin());
    for (int& v : q) v += 1;
    REQUIRE(cq.front() == 31);
}

TEST_CASE("ring queue: elements are moved, never copied, and each destroyed once") {
    RingQueue<std::unique_ptr<int>> q;
    for (int i = 0; i < 20; ++i) q.push_back(std::make_unique<int>(i));
    q.erase_front(17);  // shrinks: moves the rest
    REQUIRE(q.size() == 3);
    REQUIRE(*q.front() == 17);
    auto shared = std::make_shared<int>(0);
    {
        RingQueue<std::shared_ptr<int>> s;
        for (int i = 0; i < 9; ++i) s.push_back(shared);
        REQUIRE(shared.use_count() == 10);
        s.erase_front(2);
        s.truncate(3);
        REQUIRE(shared.use_count() == 4);
        RingQueue<std::shared_ptr<int>> copy(s);
        REQUIRE(shared.use_count() == 7);
        RingQueue<std::shared_ptr<int>> moved(std::move(copy));
        REQUIRE(shared.use_count() == 7);
        REQUIRE(copy.empty());
        s = moved;
        REQUIRE(shared.use_count() == 7);
    }
    REQUIRE(shared.use_count() == 1);
}

TEST_CASE("ring queue: swap exchanges the blocks, moving no element") {
    RingQueue<std::unique_ptr<int>> a;
    RingQueue<std::unique_ptr<int>> b;
    a.push_back(std::make_unique<int>(1));
    a.push_back(std::make_unique<int>(2));
    const int* first = a.front().get();
    a.swap(b);
    REQUIRE(a.empty());
    REQUIRE(a.capacity() == 0);
    REQUIRE(b.size() == 2);
    REQUIRE(b.front().get() == first);
    swap(a, b);
    REQUIRE(b.capacity() == 0);
    REQUIRE(*a.back() == 2);
}

TEST_CASE("ring queue: pushing an element of the full queue itself copies it before growing") {
    RingQueue<std::string> q;
    for (int i = 0; i < 4; ++i) q.push_back(std::string(40, static_cast<char>('a' + i)));
    REQUIRE(q.size() == q.capacity());
    q.push_back(q.front());  // the reference dies as the block grows
    REQUIRE(q.back() == std::string(40, 'a'));
}

TEST_CASE("ring queue: random operations match std::deque") {
    const char* env = std::getenv("KEEL_SEED");
    const std::uint64_t seed =
        env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device{}();
    INFO("KEEL_SEED=" << seed);
    std::mt19937_64 rng(seed);
    RingQueue<std::uint64_t> q;
    std::deque<std::uint64_t> model;
    for (int step = 0; step < 20000; ++step) {
        const auto op = rng() % 10;
        if (op < 5) {
            q.push_back(step);
            model.push_back(step);
        } else if (op < 7 && !model.empty()) {
            q.pop_front();
            model.pop_front();
        } else if (op == 7 && !model.empty()) {
            const std::size_t n = rng() % (model.size() + 1);
            q.erase_front(n);
            model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
        } else if (op == 8 && !model.empty()) {
            const std::size_t n = rng() % (model.size() + 1);
            q.truncate(n);
            model.resize(n);
        } else if (!model.empty()) {
            q.pop_back();
            model.pop_back();
        }
        REQUIRE(q.size() == model.size());
        if (!model.empty()) {
            REQUIRE(q.front() == model.front());
            REQUIRE(q.back() == model.back());
        }
        REQUIRE(q.capacity() >= q.size());
        // The block is at most four times what it holds, past the smallest one.
        REQUIRE(q.capacity() <= std::max<std::size_t>(RingQueue<int>::kMinCapacity, 4 * q.size()));
    }
    REQUIRE(contents(q) == model);
}
