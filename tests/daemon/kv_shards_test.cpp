// raftd --groups: which group holds a key (a data dir's format, pinned
// here), the group count kept in the data dir, and the groups seen whole.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "groups_summary.hpp"
#include "identity.hpp"
#include "kv_shards.hpp"

using namespace keel;
using namespace keel::daemon;

TEST_CASE("a key's group is 1 + FNV-1a 64 of its bytes mod N, forever", "[daemon][groups]") {
    // Changing these changes where existing data dirs look for their keys.
    CHECK(group_of_key("a", 4) == 1);
    CHECK(group_of_key("b", 4) == 2);
    CHECK(group_of_key("greeting", 4) == 3);
    CHECK(group_of_key("user/1", 16) == 3);
    CHECK(group_of_key("a", 1000) == 997);
    CHECK(group_of_key("", 16) == 6);
    for (std::size_t n : {1, 2, 7, 1000}) CHECK(group_of_key("anything", n) <= n);
    CHECK(group_of_key("anything", 1) == 1);
}

TEST_CASE("keys spread evenly over the groups", "[daemon][groups]") {
    constexpr std::size_t kGroups = 16, kKeys = 16000;
    std::vector<std::size_t> per_group(kGroups + 1, 0);
    for (std::size_t i = 0; i < kKeys; ++i)
        ++per_group[group_of_key("user/" + std::to_string(i), kGroups)];
    CHECK(per_group[0] == 0);
    for (std::size_t g = 1; g <= kGroups; ++g) {
        INFO("group " << g);
        CHECK(per_group[g] > kKeys / kGroups * 3 / 4);
        CHECK(per_group[g] < kKeys / kGroups * 5 / 4);
    }
}

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::random_device random;
        path = std::filesystem::temp_directory_path() /
               ("raftd-groups-test-" + std::to_string(random()));
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("the group count is kept in the data dir and checked when read", "[daemon][groups]") {
    TempDir dir;
    Result<std::optional<std::size_t>> none = read_group_count(dir.path.string());
    REQUIRE(none.ok());
    CHECK(!none->has_value());
    REQUIRE(write_group_count(dir.path.string(), 16).ok());
    Result<std::optional<std::size_t>> back = read_group_count(dir.path.string());
    REQUIRE(back.ok());
    CHECK(**back == 16);
    for (const char* bad : {"0\n", "abc\n", "10001\n", "\n", "-1\n"}) {
        std::ofstream(dir.path / kGroupsFileName) << bad;
        INFO(bad);
        CHECK(read_group_count(dir.path.string()).status().code() == ErrorCode::corruption);
    }
    std::ofstream(dir.path / kGroupsFileName) << kGroupsMax << "\n";
    CHECK(**read_group_count(dir.path.string()) == kGroupsMax);
}

TEST_CASE("the groups' summary counts leaders, quiet groups and alarms", "[daemon][groups]") {
    std::vector<NodeStatus> groups(3);
    groups[0].role = Role::leader;
    groups[0].leader_id = 1;
    groups[0].proposals = 5;
    groups[0].alarms = {"no_space"};
    groups[1].leader_id = 2;
    groups[1].quiescent = true;
    groups[1].proposals = 7;
    groups[1].alarms = {"no_space"};
    groups[2].failure = "disk";
    GroupsSummary summary = summarize_groups(groups);
    CHECK(summary.count == 3);
    CHECK(summary.led_here == 1);
    CHECK(summary.quiescent == 1);
    CHECK(summary.without_leader == 1);
    CHECK(summary.failed == 1);
    CHECK(summary.alarms == std::map<std::string, std::uint64_t>{{"no_space", 2}});
    NodeStatus all = combined_status(groups);
    CHECK(all.role == Role::leader);  // group 1's
    CHECK(all.proposals == 12);
    CHECK(all.alarms == std::vector<std::string>{"no_space"});
    CHECK(all.failure == "disk");
}
