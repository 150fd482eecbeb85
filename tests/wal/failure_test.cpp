// Fail-stop on fdatasync errors; crash safety of truncation, compaction and
// reset (a crash at every mutating instant recovers to before or after).
#include <catch2/catch.hpp>

#include <condition_variable>

#include "keel/wal/wal.hpp"
#include "test_util.hpp"

using namespace keel;
using namespace keel::wal;
using namespace keel::wal::test;

TEST_CASE("an fdatasync failure puts the WAL in the failed state for good") {
    TempDir dir;
    FaultFs fs;
    auto opened = Wal::open(dir.path(), small_options(&fs));
    REQUIRE(opened.ok());
    auto& wal = **opened;
    REQUIRE(append_sync(wal, make_records(1, 3)).ok());

    fs.datasyncs_until_failure = 0;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Status> results;
    for (std::uint64_t i = 4; i < 9; ++i) {
        Status s = wal.append(make_record(i), [&](Status st) {
            std::lock_guard lock(mu);
            results.push_back(st);
            cv.notify_all();
        });
        if (!s.ok()) {  // refused because it already failed: equally fine
            REQUIRE(s.code() == ErrorCode::failed);
            std::lock_guard lock(mu);
            results.push_back(s);
        }
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return results.size() == 5; });
    for (const Status& s : results) REQUIRE_FALSE(s.ok());
    REQUIRE(wal.failed());
    fs.datasyncs_until_failure = -1;  // even once the disk "recovers"
    REQUIRE(wal.append(make_record(9), nullptr).code() == ErrorCode::failed);
    REQUIRE(wal.save_metadata(Metadata{}).code() == ErrorCode::failed);
    REQUIRE(wal.truncate_after(1, nullptr).code() == ErrorCode::failed);
    REQUIRE(wal.last_index() == 3);
}

namespace {

struct CrashRun {
    std::vector<std::string> snapshots;
};

// Builds a 400-record WAL, then runs `op` with a snapshot of the directory
// taken before every mutating file operation, and once after.
template <typename Op>
CrashRun crash_everywhere(const TempDir& base, Op op) {
    FaultFs fs;
    const std::string dir = base.sub("wal");
    CrashRun run;
    auto wal = Wal::open(dir, small_options(&fs));
    REQUIRE(wal.ok());
    REQUIRE(append_sync(**wal, make_records(1, 400)).ok());
    int n = 0;
    fs.set_before_mutation([&](const std::string&) {
        const std::string snap = base.sub("snap" + std::to_string(n++));
        copy_dir(dir, snap);
        run.snapshots.push_back(snap);
    });
    op(**wal);
    wal->reset();  // joins the background thread: deletions are done
    fs.set_before_mutation(nullptr);
    const std::string snap = base.sub("snap-final");
    copy_dir(dir, snap);
    run.snapshots.push_back(snap);
    return run;
}

void require_range(Wal& wal, std::uint64_t first, std::uint64_t last) {
    REQUIRE(wal.first_index() == first);
    REQUIRE(wal.last_index() == last);
    if (last >= first) {
        auto got = wal.read(first, last + 1);
        REQUIRE(got.ok());
        for (std::uint64_t i = first; i <= last; ++i) REQUIRE((*got)[i - first] == make_record(i));
    }
}

}  // namespace

TEST_CASE("a crash at any instant of truncate_after recovers to before or after") {
    TempDir base;
    auto run =
        crash_everywhere(base, [](Wal& wal) { REQUIRE(truncate_after_sync(wal, 150).ok()); });
    REQUIRE(run.snapshots.size() > 5);
    int before = 0, after = 0;
    for (const auto& snap : run.snapshots) {
        INFO(snap);
        auto wal = Wal::open(snap, small_options());
        REQUIRE(wal.ok());
        const std::uint64_t last = (*wal)->last_index();
        REQUIRE((last == 400 || last == 150));
        require_range(**wal, 1, last);
        (last == 400 ? before : after)++;
        REQUIRE(append_sync(**wal, {make_record(last + 1)}).ok());
    }
    REQUIRE(before > 0);
    REQUIRE(after > 0);
}

TEST_CASE("a crash at any instant of compact_before recovers to before or after") {
    TempDir base;
    auto run = crash_everywhere(base, [](Wal& wal) { REQUIRE(wal.compact_before(300).ok()); });
    int after = 0;
    for (const auto& snap : run.snapshots) {
        INFO(snap);
        auto wal = Wal::open(snap, small_options());
        REQUIRE(wal.ok());
        const std::uint64_t first = (*wal)->first_index();
        REQUIRE((first == 1 || first == 300));
        require_range(**wal, first, 400);
        after += first == 300;
    }
    REQUIRE(after > 0);
}

TEST_CASE("a crash at any instant of reset recovers to before or after") {
    TempDir base;
    auto run = crash_everywhere(base, [](Wal& wal) { REQUIRE(reset_sync(wal, 1000).ok()); });
    int after = 0;
    for (const auto& snap : run.snapshots) {
        INFO(snap);
        auto wal = Wal::open(snap, small_options());
        REQUIRE(wal.ok());
        if ((*wal)->first_index() == 1000) {
            require_range(**wal, 1000, 999);
            ++after;
            REQUIRE(append_sync(**wal, {make_record(1000)}).ok());
        } else {
            require_range(**wal, 1, 400);
        }
    }
    REQUIRE(after > 0);
}

TEST_CASE("every completed append survives a crash that drops all unsynced writes") {
    TempDir base;
    FaultFs fs;
    const std::string dir = base.sub("wal");
    Options o = small_options(&fs);
    // The direct path gives each batch a block: four segments, not twenty.
    if (o.write_path == WritePath::direct) o.segment_bytes = 64 * 1024;
    auto opened = Wal::open(dir, o);
    REQUIRE(opened.ok());
    Wal& wal = **opened;
    std::atomic<std::uint64_t> acked{0};
    std::vector<std::pair<std::string, std::uint64_t>> snapshots;  // dir, acked then
    int n = 0;
    fs.set_before_mutation([&](const std::string& what) {
        if (what.rfind("datasync", 0) != 0 && what.rfind("write", 0) != 0) return;
        const std::string snap = base.sub("crash" + std::to_string(n++));
        fs.copy_dropping_unsynced(dir, snap);
        snapshots.emplace_back(snap, acked.load());
    });
    // Batches of varying size, rolling over several small segments.
    std::uint64_t next = 1;
    for (int i = 0; i < 60; ++i) {
        const std::uint64_t count = 1 + static_cast<std::uint64_t>(i % 7);
        REQUIRE(append_sync(wal, make_records(next, count)).ok());
        next += count;
        acked = next - 1;
    }
    opened->reset();
    fs.set_before_mutation(nullptr);
    REQUIRE(snapshots.size() > 60);
    o.fs = nullptr;
    for (const auto& [snap, acked_then] : snapshots) {
        INFO(snap << " acked " << acked_then);
        auto wal_after = Wal::open(snap, o);
        REQUIRE(wal_after.ok());
        const std::uint64_t last = (*wal_after)->last_index();
        REQUIRE(last >= acked_then);
        auto got = (*wal_after)->read(1, last + 1);
        REQUIRE(got.ok());
        for (std::uint64_t i = 1; i <= last; ++i) REQUIRE((*got)[i - 1] == make_record(i));
    }
}
