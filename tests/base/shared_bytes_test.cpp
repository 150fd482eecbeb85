// SharedBytes: copies share one buffer, the bytes never change, and a copy
// released on another thread frees the buffer exactly once.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "keel/shared_bytes.hpp"

using keel::SharedBytes;

TEST_CASE("SharedBytes holds a copy of the bytes it was made from", "[shared_bytes]") {
    std::string source = "payload";
    SharedBytes b = source;
    source[0] = 'X';  // the original may change; the copy does not
    CHECK(b == "payload");
    CHECK(b.size() == 7);
    CHECK(b.view() == "payload");
    CHECK(b.str() == "payload");
    CHECK(b[1] == 'a');
    CHECK(std::string(b.begin(), b.end()) == "payload");

    const std::string binary("a\0b", 3);
    SharedBytes with_nul = binary;
    CHECK(with_nul.size() == 3);
    CHECK(with_nul == binary);
    CHECK_FALSE(with_nul == "a");  // compared by length too, not as a C string
}

TEST_CASE("copies of SharedBytes share the same bytes", "[shared_bytes]") {
    SharedBytes a = std::string(1000, 'z');
    SharedBytes b = a;
    SharedBytes c;
    c = b;
    CHECK(a.data() == b.data());
    CHECK(b.data() == c.data());
    SharedBytes moved = std::move(a);
    CHECK(moved.data() == b.data());
    CHECK(a.empty());  // NOLINT(bugprone-use-after-move): a moved-from SharedBytes is empty
    CHECK(moved == std::string(1000, 'z'));
}

TEST_CASE("an empty SharedBytes reads as an empty string", "[shared_bytes]") {
    SharedBytes e;
    CHECK(e.empty());
    CHECK(e.size() == 0);
    CHECK(e.data() != nullptr);
    CHECK(e == "");
    CHECK(e == SharedBytes(std::string()));
    CHECK_FALSE(e == SharedBytes("x"));
}

// Under ThreadSanitizer or AddressSanitizer this catches a count that is not
// atomic (a race, then a double free or a leak); without them, the bytes
// must still read back intact while copies die on other threads.
TEST_CASE("copies released on other threads free the bytes once", "[shared_bytes]") {
    std::vector<SharedBytes> originals;
    for (int i = 0; i < 200; ++i) originals.push_back(SharedBytes(std::to_string(i) + "-bytes"));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([copies = originals]() mutable {
            for (int round = 0; round < 50; ++round) {
                std::vector<SharedBytes> more = copies;
                copies.swap(more);
            }
        });
    }
    originals.resize(100);  // the last 100 now live only in the threads' copies
    for (auto& t : threads) t.join();
    for (int i = 0; i < 100; ++i) CHECK(originals[i] == std::to_string(i) + "-bytes");
}
