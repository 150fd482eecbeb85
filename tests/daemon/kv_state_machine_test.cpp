#include <cstdlib>
#include <cstring>
#include <random>

#include <catch2/catch.hpp>

#include "../common/test_seed.hpp"
#include "kv_state_machine.hpp"

using keel::CommittedEntry;
using keel::Result;
using keel::Status;
using namespace keel::daemon;

namespace {

class StringWriter : public keel::SnapshotWriter {
public:
    Status write(std::string_view bytes) override {
        out.append(bytes);
        return Status();
    }
    std::string out;
};

class StringReader : public keel::SnapshotReader {
public:
    explicit StringReader(std::string bytes, std::size_t chunk = 7)
        : bytes_(std::move(bytes)), chunk_(chunk) {}
    Result<std::size_t> read(char* buffer, std::size_t capacity) override {
        std::size_t n = std::min({capacity, chunk_, bytes_.size() - pos_});
        std::memcpy(buffer, bytes_.data() + pos_, n);
        pos_ += n;
        return n;
    }
    std::uint64_t size_bytes() const override { return bytes_.size(); }

private:
    std::string bytes_;
    std::size_t chunk_;
    std::size_t pos_ = 0;
};

KvResult apply(KvStateMachine& sm, std::uint64_t index, const KvCommand& command) {
    std::string data = encode_command(command);
    std::vector<CommittedEntry> entries{{index, 1, data}};
    std::vector<std::string> results;
    sm.apply(entries, results);
    REQUIRE(results.size() == 1);
    auto decoded = decode_result(results[0]);
    REQUIRE(decoded.ok());
    return *decoded;
}

// (Appending, not "k" + std::to_string(i): GCC 12 warns -Wrestrict there.)
std::string numbered(const char* prefix, int i) {
    std::string out = prefix;
    out += std::to_string(i);
    return out;
}

KvCommand put(std::string key, std::string value) {
    return {KvOp::put, std::move(key), std::move(value), std::nullopt, std::nullopt};
}

std::string snapshot_of(KvStateMachine& sm) {
    StringWriter writer;
    REQUIRE(sm.snapshot()(writer).ok());
    return writer.out;
}

}  // namespace

TEST_CASE("apply puts, deletes and compares, with revisions from the log index",
          "[daemon][kv_sm]") {
    KvStateMachine sm;
    CHECK(apply(sm, 1, put("a", "1")).revision == 1);
    CHECK(apply(sm, 2, put("a", "2")).revision == 2);
    CHECK(sm.get("a") == KvValue{"2", 2});
    KvCommand cas = put("a", "3");
    cas.prev_value.emplace("1");  // not = "1": GCC 12 -O2 warns falsely (-Wrestrict)
    KvResult failed = apply(sm, 3, cas);
    CHECK(failed.outcome == KvOutcome::compare_failed);
    CHECK(failed.current == KvValue{"2", 2});
    CHECK(apply(sm, 4, {KvOp::del, "a", "", std::nullopt, std::uint64_t{2}}).outcome ==
          KvOutcome::ok);
    CHECK_FALSE(sm.get("a"));
    CHECK(apply(sm, 5, {KvOp::del, "a", "", std::nullopt, std::nullopt}).outcome ==
          KvOutcome::not_found);
    CHECK(sm.last_applied_index() == 5);
}

TEST_CASE("a garbage entry is answered 'invalid' and changes nothing", "[daemon][kv_sm]") {
    KvStateMachine sm;
    apply(sm, 1, put("a", "1"));
    std::vector<CommittedEntry> entries{{2, 1, "\x01\x07garbage"}};
    std::vector<std::string> results;
    sm.apply(entries, results);
    CHECK(decode_result(results[0])->outcome == KvOutcome::invalid);
    CHECK(sm.size() == 1);
    CHECK(sm.last_applied_index() == 2);
}

TEST_CASE("snapshot and restore round-trip the whole map", "[daemon][kv_sm]") {
    KvStateMachine sm;
    for (int i = 0; i < 2000; ++i)
        apply(sm, i + 1, put(numbered("key", i), std::string(i % 300, 'x')));
    apply(sm, 2001, put("", ""));  // the empty key survives too
    std::string bytes = snapshot_of(sm);
    CHECK(bytes == KvStateMachine::serialize(
                       [&] {
                           KvStateMachine::Map m;
                           for (const auto& [k, v] : sm.list("", 5000).items) m.emplace(k, v);
                           return m;
                       }(),
                       2001));
    KvStateMachine restored;
    apply(restored, 1, put("stale", "gone"));
    StringReader reader(bytes, 1000);
    REQUIRE(restored.restore(reader).ok());
    CHECK(restored.size() == 2001);
    CHECK(restored.last_applied_index() == 2001);
    CHECK(restored.get("key1999") == sm.get("key1999"));
    CHECK_FALSE(restored.get("stale"));
}

TEST_CASE("the snapshot function writes the state as of snapshot(), not later", "[daemon][kv_sm]") {
    KvStateMachine sm;
    apply(sm, 1, put("a", "before"));
    keel::SnapshotFunction write = sm.snapshot();
    apply(sm, 2, put("a", "after"));
    apply(sm, 3, put("b", "new"));
    StringWriter writer;
    REQUIRE(write(writer).ok());
    KvStateMachine restored;
    StringReader reader(writer.out);
    REQUIRE(restored.restore(reader).ok());
    CHECK(restored.get("a") == KvValue{"before", 1});
    CHECK_FALSE(restored.get("b"));
}

TEST_CASE("a corrupt or truncated snapshot is refused and leaves the state alone",
          "[daemon][kv_sm]") {
    KvStateMachine sm;
    for (int i = 0; i < 10; ++i) apply(sm, i + 1, put(numbered("k", i), "v"));
    const std::string good = snapshot_of(sm);
    KvStateMachine target;
    apply(target, 1, put("mine", "kept"));
    auto refused = [&](std::string bytes) {
        StringReader reader(std::move(bytes));
        Status s = target.restore(reader);
        return !s.ok() && target.get("mine") == KvValue{"kept", 1} && target.size() == 1;
    };
    for (std::size_t n = 0; n < good.size(); n += 3) CHECK(refused(good.substr(0, n)));
    for (std::size_t i = 0; i < good.size(); ++i) {
        std::string flipped = good;
        flipped[i] = static_cast<char>(flipped[i] ^ 0x20);
        CHECK(refused(flipped));
    }
    std::mt19937 rng(7);
    for (int i = 0; i < 200; ++i) {
        std::string noise(rng() % 200, '\0');
        for (char& c : noise) c = static_cast<char>(rng());
        CHECK(refused(noise));
    }
}

TEST_CASE("list honours prefix and limit", "[daemon][kv_sm]") {
    KvStateMachine sm;
    int index = 0;
    for (const char* k : {"a", "ab", "abc", "b"}) apply(sm, ++index, put(k, "v"));
    CHECK(sm.list("a", 10).items.size() == 3);
    CHECK(sm.list("a", 2).truncated);
    CHECK_FALSE(sm.list("a", 3).truncated);
    CHECK(sm.list("zzz", 10).items.empty());
}

TEST_CASE("size_bytes is the size of a snapshot, through puts, overwrites, deletes and restore",
          "[daemon][kv_sm]") {
    const std::uint64_t seed = keel::test::seed_from_env().value_or(std::random_device{}());
    INFO("KEEL_SEED=" << seed);
    std::mt19937_64 rng(seed);
    KvStateMachine sm;
    CHECK(sm.size_bytes() == snapshot_of(sm).size());
    for (std::uint64_t index = 1; index <= 3000; ++index) {
        const std::string key = numbered("k", static_cast<int>(rng() % 200));
        if (rng() % 3 == 0) {
            apply(sm, index, {KvOp::del, key, "", std::nullopt, std::nullopt});
        } else {
            apply(sm, index, put(key, std::string(rng() % 500, 'v')));
        }
        if (index % 250 == 0) REQUIRE(sm.size_bytes() == snapshot_of(sm).size());
    }
    const std::string bytes = snapshot_of(sm);
    KvStateMachine restored;
    StringReader reader(bytes, 4096);
    REQUIRE(restored.restore(reader).ok());
    CHECK(restored.size_bytes() == bytes.size());
}
