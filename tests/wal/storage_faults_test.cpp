// What the WAL does with an unreliable disk: records recovered from the page
// cache are made durable at open, a read error at open is an error naming
// the file and offset (never a signal), files are private to their user.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "keel/wal/wal.hpp"
#include "test_util.hpp"

using namespace keel;
using namespace keel::wal;
using namespace keel::wal::test;

namespace {

unsigned mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("open makes the records it recovers durable before counting them") {
    TempDir base;
    FaultFs fs;
    const std::string dir = base.sub("wal");
    // A process that wrote 1..120 and was killed before any of its
    // fdatasyncs reached the disk: the records are in the page cache only.
    fs.lie_about_datasync = true;
    {
        auto wal = Wal::open(dir, small_options(&fs));
        REQUIRE(wal.ok());
        for (std::uint64_t i = 1; i <= 120; i += 10)
            REQUIRE(append_sync(**wal, make_records(i, 10)).ok());
    }
    fs.lie_about_datasync = false;
    // The next process recovers them ...
    auto reopened = Wal::open(dir, small_options(&fs));
    REQUIRE(reopened.ok());
    REQUIRE((*reopened)->last_index() == 120);
    // ... and a power loss right after its open keeps them: they may now be
    // acknowledged (a Raft follower answers a leader that re-sends them).
    const std::string crash = base.sub("power-loss");
    fs.copy_dropping_unsynced(dir, crash);
    auto after = Wal::open(crash, small_options());
    REQUIRE(after.ok());
    require_log_is(**after, 1, 120);
}

TEST_CASE("a read error while recovering fails open with the file and offset") {
    TempDir dir;
    {
        auto wal = Wal::open(dir.path(), small_options());
        REQUIRE(wal.ok());
        REQUIRE(append_sync(**wal, make_records(1, 50)).ok());
    }
    FaultFs fs;
    fs.set_inject([](const std::string& op, const std::string& path) {
        if (op == "pread" && path.ends_with(".wal"))
            return Status(ErrorCode::io_error,
                          "pread " + path + " at offset 0: Input/output error");
        return Status();
    });
    auto wal = Wal::open(dir.path(), small_options(&fs));
    REQUIRE_FALSE(wal.ok());
    CHECK(wal.status().code() == ErrorCode::io_error);
    CHECK_THAT(wal.status().message(), Catch::Contains(".wal at offset 0"));
}

TEST_CASE("a real read error names the file and the offset") {
    TempDir dir;
    auto file = default_file_system()->open(dir.sub("f"), OpenMode::create_new);
    REQUIRE(file.ok());
    // A directory descriptor cannot be read: EISDIR from pread(2).
    auto d = default_file_system()->open(dir.path(), OpenMode::read_only);
    REQUIRE(d.ok());
    char buf[16];
    auto got = (*d)->pread(buf, sizeof buf, 4096);
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().code() == ErrorCode::io_error);
    CHECK_THAT(got.status().message(), Catch::Contains(dir.path() + " at offset 4096"));
}

TEST_CASE("the WAL's files are readable by their user only") {
    TempDir base;
    const std::string dir = base.sub("wal");
    auto wal = Wal::open(dir, small_options());
    REQUIRE(wal.ok());
    REQUIRE(append_sync(**wal, make_records(1, 500)).ok());  // several segments
    REQUIRE((*wal)->save_metadata(Metadata{3, 1, 0, 0, 0, {}}).ok());
    CHECK(mode_of(dir) == 0700);
    int files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        INFO(e.path());
        CHECK(mode_of(e.path()) == 0600);
        ++files;
    }
    CHECK(files >= 4);  // segments, meta, LOCK
}
