// SpareVectors: emptied vectors kept with their capacity, bounded.
#include <catch2/catch.hpp>

#include <memory>
#include <thread>

#include "keel/spare_vectors.hpp"

using keel::SpareVectors;

TEST_CASE("spare vectors: a given vector comes back empty with its capacity") {
    SpareVectors<int> spares;
    REQUIRE(spares.take().capacity() == 0);  // none yet
    std::vector<int> v(100, 7);
    const int* storage = v.data();
    spares.give(std::move(v));
    REQUIRE(spares.spares() == 1);
    std::vector<int> again = spares.take();
    REQUIRE(again.empty());
    REQUIRE(again.capacity() >= 100);
    REQUIRE(again.data() == storage);  // the same block, not a new one
    REQUIRE(spares.spares() == 0);
}

TEST_CASE("spare vectors: elements are destroyed when given, not when taken again") {
    SpareVectors<std::shared_ptr<int>> spares;
    auto held = std::make_shared<int>(1);
    std::vector<std::shared_ptr<int>> v{held, held};
    REQUIRE(held.use_count() == 3);
    spares.give(std::move(v));
    REQUIRE(held.use_count() == 1);
}

TEST_CASE("spare vectors: at most max_spares kept, none over max_capacity, none empty") {
    SpareVectors<int> spares(/*max_spares=*/2, /*max_capacity=*/64);
    spares.give(std::vector<int>(10));
    spares.give(std::vector<int>(10));
    spares.give(std::vector<int>(10));  // no room: freed
    REQUIRE(spares.spares() == 2);
    (void)spares.take();
    (void)spares.take();
    spares.give(std::vector<int>(65));  // too large to keep
    spares.give(std::vector<int>());    // no capacity: nothing to keep
    REQUIRE(spares.spares() == 0);
}

TEST_CASE("spare vectors: given on one thread, taken on another") {
    SpareVectors<int> spares(4);
    std::thread giver([&] {
        for (int i = 0; i < 1000; ++i) spares.give(std::vector<int>(8, i));
    });
    std::size_t with_capacity = 0;
    for (int i = 0; i < 1000; ++i) {
        std::vector<int> v = spares.take();
        REQUIRE(v.empty());
        if (v.capacity() != 0) ++with_capacity;
        v.push_back(i);
    }
    giver.join();
    REQUIRE(spares.spares() <= 4);
    (void)with_capacity;  // how many were reused depends on scheduling
}
