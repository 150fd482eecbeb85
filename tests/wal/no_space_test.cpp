// A full disk is a state of the WAL, not a failure: the next segment or a
// metadata update that finds no room is retried until space comes back,
// with nothing lost; only a failed write or fdatasync of data is fail-stop.
// (FaultFs::full: writes past a file's end and preallocation get ENOSPC.)
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <thread>

#include "keel/wal/wal.hpp"
#include "test_util.hpp"

using namespace keel;
using namespace keel::wal;
using namespace keel::wal::test;

namespace {

// Polls `pred` until it holds or 10 s pass (a bound, not a timing assertion).
template <typename Pred>
bool eventually(Pred pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

// Completions of asynchronous appends, in order.
struct Completions {
    std::mutex mu;
    std::vector<Status> results;
    Wal::Callback callback() {
        return [this](Status s) {
            std::lock_guard lock(mu);
            results.push_back(std::move(s));
        };
    }
    std::size_t count() {
        std::lock_guard lock(mu);
        return results.size();
    }
    bool all_ok() {
        std::lock_guard lock(mu);
        for (const Status& s : results)
            if (!s.ok()) return false;
        return true;
    }
};

// Counts the failed attempts to preallocate the next segment.
struct PreparationAttempts {
    std::atomic<int> refused{0};
    void install(FaultFs& fs) {
        fs.set_inject([this, &fs](const std::string& op, const std::string& path) {
            if (op == "allocate" && fs.full.load() && path.ends_with("next-segment.tmp"))
                refused.fetch_add(1);
            return Status();
        });
    }
};

}  // namespace

TEST_CASE("a full disk at segment preparation is a state: writes wait at the roll, then resume") {
    TempDir base;
    const std::string dir = base.sub("wal");
    FaultFs fs;
    PreparationAttempts attempts;
    attempts.install(fs);
    std::atomic<int> health_changes{0};
    Options o = small_options(&fs);  // small segments (test_util.hpp)
    o.on_health_change = [&] { health_changes.fetch_add(1); };
    auto wal = Wal::open(dir, o);
    REQUIRE(wal.ok());
    Wal& w = **wal;
    REQUIRE(append_sync(w, make_records(1, 10)).ok());

    fs.full = true;
    // Past half of the segment the next one is prepared in the background:
    // refused, so no_space() turns true; the active segment still has room.
    // Appends stop once the segment is half full: the next one would need
    // the roll on the direct path, whose batches take a block each.
    std::uint64_t next = 11;
    while (w.stats().disk_bytes < o.segment_bytes / 2) {
        REQUIRE(append_sync(w, make_records(next, 10)).ok());
        next += 10;
    }
    REQUIRE(eventually([&] { return w.no_space(); }));
    CHECK(health_changes.load() >= 1);
    CHECK_FALSE(w.failed());

    // More than the segment holds: the flusher writes what fits, then waits
    // for the next segment.  Appends are still taken meanwhile.
    Completions done;
    const std::uint64_t first_waiting = next;
    for (int i = 0; i < 40; ++i, next += 10)
        REQUIRE(w.append(make_records(next, 10), done.callback()).ok());
    const int refused_then = attempts.refused.load();
    REQUIRE(eventually([&] { return attempts.refused.load() >= refused_then + 2; }));
    CHECK(done.count() < 40);  // the roll cannot have happened
    CHECK(w.last_index() < next - 1);

    fs.full = false;  // space is back: the retry prepares the segment
    REQUIRE(eventually([&] { return done.count() == 40; }));
    CHECK(done.all_ok());
    REQUIRE(eventually([&] { return !w.no_space(); }));
    CHECK(health_changes.load() >= 2);
    require_log_is(w, 1, next - 1);
    CHECK(first_waiting < next);
    wal->reset();
    auto reopened = Wal::open(dir, small_options());
    REQUIRE(reopened.ok());
    require_log_is(**reopened, 1, next - 1);
}

TEST_CASE("save_metadata and compact_before on a full disk answer no_space and change nothing") {
    TempDir dir;
    FaultFs fs;
    auto wal = Wal::open(dir.path(), small_options(&fs));
    REQUIRE(wal.ok());
    Wal& w = **wal;
    REQUIRE(append_sync(w, make_records(1, 600)).ok());  // several segments
    const Metadata before{2, 1, 5, 0, 0, "x"};
    REQUIRE(w.save_metadata(before).ok());

    fs.full = true;
    Status saved = w.save_metadata(Metadata{3, 2, 5, 0, 0, "y"});
    CHECK(saved.code() == ErrorCode::no_space);
    Status compacted = w.compact_before(400);
    CHECK(compacted.code() == ErrorCode::no_space);
    CHECK_FALSE(w.failed());
    CHECK(w.metadata() == before);
    CHECK(w.first_index() == 1);
    CHECK_FALSE(std::filesystem::exists(dir.sub("meta.tmp")));  // its space given back

    fs.full = false;
    REQUIRE(w.save_metadata(Metadata{3, 2, 5, 0, 0, "y"}).ok());
    REQUIRE(w.compact_before(400).ok());
    CHECK(w.first_index() == 400);
    wal->reset();
    auto reopened = Wal::open(dir.path(), small_options());
    REQUIRE(reopened.ok());
    CHECK((*reopened)->metadata() == Metadata{3, 2, 5, 0, 0, "y"});
    require_log_is(**reopened, 400, 600);
}

TEST_CASE("a truncation that finds the disk full waits for space, then completes in order") {
    TempDir dir;
    FaultFs fs;
    auto wal = Wal::open(dir.path(), small_options(&fs));
    REQUIRE(wal.ok());
    Wal& w = **wal;
    REQUIRE(append_sync(w, make_records(1, 300)).ok());

    fs.full = true;  // the fence cannot be written: meta.tmp finds no room
    Completions done;
    REQUIRE(w.truncate_after(150, done.callback()).ok());
    REQUIRE(w.append(make_records(151, 5, 2), done.callback()).ok());
    REQUIRE(eventually([&] { return w.no_space(); }));
    CHECK(done.count() == 0);
    CHECK(w.last_index() == 300);  // nothing changed yet

    fs.full = false;
    REQUIRE(eventually([&] { return done.count() == 2; }));
    CHECK(done.all_ok());
    REQUIRE(eventually([&] { return !w.no_space(); }));
    CHECK(w.last_index() == 155);
    wal->reset();
    auto reopened = Wal::open(dir.path(), small_options());
    REQUIRE(reopened.ok());
    REQUIRE((*reopened)->last_index() == 155);
    CHECK((*reopened)->term_at(151).value() == 2);
    CHECK((*reopened)->term_at(150).value() == 1);
}

TEST_CASE("a WAL closed while it waits for space aborts what waits; what completed survives") {
    TempDir dir;
    FaultFs fs;
    auto wal = Wal::open(dir.path(), small_options(&fs));
    REQUIRE(wal.ok());
    REQUIRE(append_sync(**wal, make_records(1, 100)).ok());
    fs.full = true;
    Completions done;
    REQUIRE((*wal)->append(make_records(101, 400), done.callback()).ok());  // needs a roll
    REQUIRE(eventually([&] { return (*wal)->no_space(); }));
    wal->reset();  // the destructor completes every operation
    REQUIRE(done.count() == 1);
    CHECK(done.results[0].code() == ErrorCode::aborted);
    fs.full = false;
    auto reopened = Wal::open(dir.path(), small_options());
    REQUIRE(reopened.ok());
    CHECK((*reopened)->last_index() >= 100);
    require_log_is(**reopened, 1, (*reopened)->last_index());
}

TEST_CASE("a failed fdatasync of the metadata file is fail-stop, even one that says no space") {
    TempDir dir;
    FaultFs fs;
    auto wal = Wal::open(dir.path(), small_options(&fs));
    REQUIRE(wal.ok());
    fs.set_inject(fail_on("datasync", "meta.tmp", ErrorCode::no_space, "injected ENOSPC"));
    Status s = (*wal)->save_metadata(Metadata{1, 1, 0, 0, 0, {}});
    CHECK(s.code() == ErrorCode::io_error);
    CHECK((*wal)->failed());
    CHECK_FALSE((*wal)->no_space());
    CHECK_THAT((*wal)->failure().message(), Catch::Contains("meta.tmp"));
}

TEST_CASE("without preallocation a full disk fails the write of data: fail-stop") {
    TempDir dir;
    FaultFs fs;
    Options o = small_options(&fs);
    o.preallocate = false;
    auto wal = Wal::open(dir.path(), o);
    REQUIRE(wal.ok());
    REQUIRE(append_sync(**wal, make_records(1, 10)).ok());
    fs.full = true;  // appends extend the file: the write itself finds no room
    Status s = append_sync(**wal, make_records(11, 10));
    CHECK(s.code() == ErrorCode::failed);
    CHECK((*wal)->failed());
    CHECK_THAT((*wal)->failure().message(), Catch::Contains("No space left"));
}

TEST_CASE("a WAL that has no room for its first segment does not open, and says why") {
    TempDir base;
    FaultFs fs;
    fs.full = true;
    auto wal = Wal::open(base.sub("wal"), small_options(&fs));
    REQUIRE_FALSE(wal.ok());
    CHECK(wal.status().code() == ErrorCode::no_space);
    CHECK_THAT(wal.status().message(), Catch::Contains("No space left"));
}
