#include <catch2/catch.hpp>

#include "client_counts.hpp"

using namespace keel::daemon;

TEST_CASE("a client holds at most max_per_client slots; a closed one frees its place",
          "[daemon][http]") {
    auto counts = std::make_shared<ClientCounts>(3);
    std::vector<ClientSlot> held;
    for (int i = 0; i < 3; ++i) {
        auto slot = counts->acquire("127.0.0.2");
        REQUIRE(slot);
        held.push_back(std::move(*slot));
    }
    CHECK_FALSE(counts->acquire("127.0.0.2"));
    CHECK(counts->acquire("127.0.0.3"));  // another client is not affected (released at once)
    CHECK(counts->count("127.0.0.2") == 3);
    held.pop_back();
    CHECK(counts->count("127.0.0.2") == 2);
    auto again = counts->acquire("127.0.0.2");
    CHECK(again);
    held.clear();
    again.reset();
    CHECK(counts->count("127.0.0.2") == 0);
    CHECK(counts->clients() == 0);
}

TEST_CASE("a moved slot is released once", "[daemon][http]") {
    auto counts = std::make_shared<ClientCounts>(1);
    ClientSlot a = std::move(*counts->acquire("x"));
    ClientSlot b = std::move(a);
    CHECK(counts->count("x") == 1);
    ClientSlot c;
    c = std::move(b);
    CHECK(counts->count("x") == 1);
    c = ClientSlot();
    CHECK(counts->count("x") == 0);
}
