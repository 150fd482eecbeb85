// The replica's stage of received snapshots (runtime/snapshot_staging.hpp):
// which files it keeps, hands over and deletes.  No thread; real files.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "../common/temp_dir.hpp"
#include "runtime/snapshot_staging.hpp"

using keel::runtime::kMaxStagedSnapshots;
using keel::runtime::SnapshotStaging;
using keel::test::TempDir;

namespace {

std::string make_file(const TempDir& dir, const std::string& name) {
    const std::string path = dir.sub(name);
    std::ofstream(path) << name;
    return path;
}

bool exists(const std::string& path) {
    return std::filesystem::exists(path);
}

}  // namespace

TEST_CASE("taking a staged snapshot hands its file over and deletes the older ones' files") {
    TempDir dir;
    SnapshotStaging staging;
    const std::string older = make_file(dir, "older");
    const std::string newer = make_file(dir, "newer");
    staging.stage(10, 1, older);
    staging.stage(20, 1, newer);
    REQUIRE(staging.size() == 2);

    const auto taken = staging.take(20, 1);
    REQUIRE(taken);
    CHECK(*taken == newer);
    CHECK(exists(newer));  // the caller owns it now
    CHECK_FALSE(exists(older));
    CHECK(staging.size() == 0);
}

TEST_CASE("taking a snapshot keeps newer staged ones; staging past the limit deletes the oldest") {
    TempDir dir;
    SnapshotStaging staging;
    const std::string a = make_file(dir, "a");
    const std::string b = make_file(dir, "b");
    staging.stage(10, 1, a);
    staging.stage(20, 1, b);
    CHECK_FALSE(staging.take(15, 1));
    const auto taken = staging.take(10, 1);
    REQUIRE(taken);
    CHECK(exists(b));
    CHECK(staging.size() == 1);

    std::vector<std::string> paths;
    for (std::size_t i = 0; i < kMaxStagedSnapshots + 1; ++i) {
        paths.push_back(make_file(dir, "s" + std::to_string(i)));
        staging.stage(30 + i, 2, paths.back());
    }
    CHECK_FALSE(exists(b));  // the oldest of the full stage
    CHECK(staging.size() == kMaxStagedSnapshots);
    staging.clear();
    for (const std::string& p : paths) CHECK_FALSE(exists(p));
}
