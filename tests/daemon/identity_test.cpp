#include <sys/stat.h>

#include <fstream>

#include <catch2/catch.hpp>

#include "../common/temp_dir.hpp"
#include "identity.hpp"

using namespace keel::daemon;

namespace {

mode_t mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("the id file is written 0600, in data dirs created 0700, and read back",
          "[daemon][identity]") {
    keel::test::TempDir root("raftd-identity");
    const std::string dir = root.sub("a/b/data");
    CHECK(*read_node_id(dir) == std::nullopt);
    REQUIRE(write_node_id(dir, 42).ok());
    CHECK(read_node_id(dir)->value() == 42);
    CHECK(mode_of(dir + "/" + kIdentityFileName) == 0600);
    CHECK(mode_of(dir) == 0700);
    CHECK(mode_of(root.sub("a/b")) == 0700);
    CHECK(mode_of(root.sub("a")) == 0700);
}

TEST_CASE("a temp file left by a crash does not lend its mode to the id file",
          "[daemon][identity]") {
    keel::test::TempDir root("raftd-identity");
    const std::string temp = root.sub(std::string(kIdentityFileName) + ".tmp");
    std::ofstream(temp) << "garbage";
    ::chmod(temp.c_str(), 0644);
    REQUIRE(write_node_id(root.path(), 7).ok());
    CHECK(mode_of(root.sub(kIdentityFileName)) == 0600);
    // An existing directory keeps its mode: it is the operator's.
    CHECK(mode_of(root.path()) == 0700);  // mkdtemp's
}

TEST_CASE("a bad id file is an error, not a fresh start", "[daemon][identity]") {
    keel::test::TempDir root("raftd-identity");
    std::ofstream(root.sub(kIdentityFileName)) << "zero\n";
    CHECK_FALSE(read_node_id(root.path()).ok());
}
