// Large snapshot files and the log's durable writes (runtime/snapshot_store.hpp;
// docs/decisions/0052): a snapshot is written back a buffer at a time as it
// is written; a pruned file larger than one removal step is renamed away at
// once and deleted in steps by the remover, never as one unlink whose
// discard would stall the log; a small one, or one being read (pinned), is
// unlinked at once.  A crash at any step of a stepped deletion leaves the
// kept snapshots intact and no damaged file.
#include <catch2/catch.hpp>

#include <pthread.h>
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../common/fault_fs.hpp"
#include "../common/temp_dir.hpp"
#include "keel/wal/file_removal.hpp"
#include "runtime/replica.hpp"
#include "runtime/snapshot_store.hpp"
#include "snapshot_support.hpp"
#include "test_state_machine.hpp"

using namespace keel;
using keel::runtime::Durability;
using keel::runtime::SnapshotFile;
using keel::runtime::SnapshotStore;
using keel::test::FaultFs;
using keel::test::TempDir;

namespace {

// Two and a half removal steps of data: deleted in three steps.
constexpr std::size_t kLargePadding = 2 * wal::kRemovalStepBytes + wal::kRemovalStepBytes / 2;
constexpr const char* kRemovingSuffix = ".deleting.tmp";

// A remover that holds the tasks until the test runs them.
struct HeldRemovals {
    std::vector<std::function<void()>> tasks;
    SnapshotStore::Remover remover() {
        return [this](std::function<void()> task) {
            tasks.push_back(std::move(task));
            return true;
        };
    }
    void run_all() {
        auto now = std::move(tasks);
        tasks.clear();
        for (auto& task : now) task();
    }
};

SnapshotFile publish(SnapshotStore& store, raft::Index index, std::size_t padding) {
    auto published = keel::test::write_and_publish(store, index, Durability::now, padding);
    REQUIRE(published.ok());
    return *published;
}

std::vector<std::string> names_in(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

std::string snap_name(raft::Index index) {
    return fmt::format("snapshot-{:016x}-{:016x}.snap", index, std::uint64_t{1});
}

// Reads the whole data of `file` through a reader opened earlier: ok only
// if every byte is there and matches its checksum.
Status read_whole(runtime::SnapshotFileReader& reader) {
    std::string buffer(64 * 1024, '\0');
    for (;;) {
        auto n = reader.read(buffer.data(), buffer.size());
        if (!n.ok()) return n.status();
        if (*n == 0) return Status::ok_status();
    }
}

}  // namespace

TEST_CASE("a large snapshot is written back a buffer at a time as it is written") {
    TempDir tmp;
    FaultFs fs;
    auto store = SnapshotStore::open(tmp.sub("snapshots"), fs);
    REQUIRE(store.ok());
    auto writer = (*store)->begin();
    REQUIRE(writer.ok());
    std::mutex mu;
    std::vector<std::string> events;
    fs.set_before_mutation([&](const std::string& what) {
        std::lock_guard lock(mu);
        if (what.rfind("write_back", 0) == 0) events.push_back(what);
    });
    constexpr std::uint64_t kMiB = 1 << 20;
    // Small writes, then one of several megabytes, then small ones again.
    for (int i = 0; i < 40; ++i) REQUIRE((*writer)->write(std::string(64 * 1024, 'a')).ok());
    REQUIRE((*writer)->write(std::string(3 * kMiB + 5, 'b')).ok());
    for (int i = 0; i < 20; ++i) REQUIRE((*writer)->write(std::string(100 * 1000, 'c')).ok());
    const std::uint64_t data_bytes = (*writer)->data_bytes();
    fs.set_before_mutation(nullptr);

    std::uint64_t started_end = 0, done_end = 0;
    std::vector<std::uint64_t> pieces;
    for (const std::string& e : events) {
        INFO(e);
        std::istringstream in(e);
        std::string kind, path;
        std::uint64_t offset = 0, size = 0;
        in >> kind >> path >> offset >> size;
        if (kind == "write_back") {
            CHECK(offset == started_end);
            started_end = offset + size;
            pieces.push_back(size);
            // A buffer at a time: never the whole file at once.
            CHECK(size == kMiB);
            // Two pieces in flight at most.
            CHECK(started_end - done_end <= 2 * kMiB);
        } else {
            REQUIRE(kind == "write_back_wait");
            CHECK(offset == done_end);
            done_end = offset + size;
        }
    }
    CHECK(pieces.size() >= 5);
    // What is left: less than a chunk written, and the buffer.
    CHECK(data_bytes - started_end < 2 * kMiB);
}

TEST_CASE("a pruned snapshot file of several steps is renamed away and deleted in steps") {
    TempDir tmp;
    FaultFs fs;
    const std::string dir = tmp.sub("snapshots");
    auto store = SnapshotStore::open(dir, fs);
    REQUIRE(store.ok());
    HeldRemovals held;
    (*store)->set_remover(held.remover());

    publish(**store, 10, kLargePadding);
    publish(**store, 20, kLargePadding);
    CHECK(held.tasks.empty());
    publish(**store, 30, kLargePadding);  // prunes 10

    // At once: out of the snapshots' names, whole, and queued.
    const std::string removing = dir + "/" + snap_name(10) + kRemovingSuffix;
    CHECK(names_in(dir) ==
          std::vector<std::string>{snap_name(10) + kRemovingSuffix, snap_name(20), snap_name(30)});
    CHECK(std::filesystem::file_size(removing) > kLargePadding);
    REQUIRE(held.tasks.size() == 1);

    std::mutex mu;
    std::vector<std::string> steps;
    fs.set_before_mutation([&](const std::string& what) {
        std::lock_guard lock(mu);
        const std::string op = what.substr(0, what.find(' '));
        if (op == "truncate" || op == "remove")
            steps.push_back(op + " " + std::to_string(std::filesystem::file_size(removing)));
        else
            steps.push_back(op);
    });
    held.run_all();
    fs.set_before_mutation(nullptr);

    std::string all;
    for (const std::string& step : steps) all += step + "; ";
    INFO(all);
    std::size_t at = 0;
    auto next = [&] { return at < steps.size() ? steps[at++] : std::string("(end)"); };
    REQUIRE(next() == "sync_dir");  // the rename durable before any byte goes
    std::uint64_t size = std::numeric_limits<std::uint64_t>::max();
    int truncations = 0;
    for (std::string step = next(); step != "remove 0"; step = next()) {
        REQUIRE(step.rfind("truncate ", 0) == 0);
        const std::uint64_t from = std::stoull(step.substr(9));
        if (truncations > 0) REQUIRE(size - from <= wal::kRemovalStepBytes);
        REQUIRE(from < size);
        size = from;
        REQUIRE(next() == "datasync");
        ++truncations;
    }
    CHECK(truncations == 3);
    CHECK(next() == "sync_dir");
    CHECK(next() == "(end)");
    CHECK(names_in(dir) == std::vector<std::string>{snap_name(20), snap_name(30)});
}

TEST_CASE("a pruned snapshot file of one step or less is unlinked at once") {
    TempDir tmp;
    FaultFs fs;
    const std::string dir = tmp.sub("snapshots");
    auto store = SnapshotStore::open(dir, fs);
    REQUIRE(store.ok());
    HeldRemovals held;
    (*store)->set_remover(held.remover());
    publish(**store, 10, 64 * 1024);
    publish(**store, 20, 64 * 1024);
    publish(**store, 30, 64 * 1024);
    CHECK(held.tasks.empty());
    CHECK(names_in(dir) == std::vector<std::string>{snap_name(20), snap_name(30)});
}

TEST_CASE("without a remover, or when it refuses, the pruning thread deletes in steps") {
    TempDir tmp;
    FaultFs fs;
    const std::string dir = tmp.sub("snapshots");
    auto store = SnapshotStore::open(dir, fs);
    REQUIRE(store.ok());
    const bool with_refusing_remover = GENERATE(false, true);
    if (with_refusing_remover) (*store)->set_remover([](std::function<void()>) { return false; });
    std::mutex mu;
    int truncations = 0;
    fs.set_before_mutation([&](const std::string& what) {
        std::lock_guard lock(mu);
        if (what.rfind("truncate ", 0) == 0) ++truncations;
    });
    publish(**store, 10, kLargePadding);
    publish(**store, 20, kLargePadding);
    publish(**store, 30, kLargePadding);
    fs.set_before_mutation(nullptr);
    CHECK(truncations == 3);
    CHECK(names_in(dir) == std::vector<std::string>{snap_name(20), snap_name(30)});
}

TEST_CASE("a snapshot file being read is unlinked at once when pruned, and read whole") {
    TempDir tmp;
    FaultFs fs;
    const std::string dir = tmp.sub("snapshots");
    auto store = SnapshotStore::open(dir, fs);
    REQUIRE(store.ok());
    HeldRemovals held;
    (*store)->set_remover(held.remover());
    const SnapshotFile oldest = publish(**store, 10, kLargePadding);
    publish(**store, 20, kLargePadding);

    SECTION("through a reader of the store") {
        auto reader = (*store)->open_reader(oldest);
        REQUIRE(reader.ok());
        publish(**store, 30, kLargePadding);  // prunes 10 while it is read
        held.run_all();
        CHECK(names_in(dir) == std::vector<std::string>{snap_name(20), snap_name(30)});
        CHECK(read_whole(**reader).ok());
    }
    SECTION("through a pin taken before the file is opened elsewhere") {
        runtime::SnapshotPin pin = (*store)->pin(oldest);
        auto opened = fs.open(oldest.path, wal::OpenMode::read_only);
        REQUIRE(opened.ok());
        publish(**store, 30, kLargePadding);
        held.run_all();
        CHECK(names_in(dir) == std::vector<std::string>{snap_name(20), snap_name(30)});
        auto source = SnapshotStore::open_reader(std::move(*opened), oldest.path);
        REQUIRE(source.ok());
        CHECK(read_whole(**source).ok());
    }
    SECTION("a pin released before the pruning leaves the steps to the remover") {
        { runtime::SnapshotPin released = (*store)->pin(oldest); }
        runtime::SnapshotPin moved_away = (*store)->pin(oldest);
        runtime::SnapshotPin holder = std::move(moved_away);
        holder = runtime::SnapshotPin();  // released by assignment
        publish(**store, 30, kLargePadding);
        CHECK(held.tasks.size() == 1);
        held.run_all();
    }
    SECTION("a reader opened after the pruning finds nothing") {
        publish(**store, 30, kLargePadding);
        auto reader = (*store)->open_reader(oldest);
        CHECK(reader.status().code() == ErrorCode::not_found);
        held.run_all();
    }
    CHECK(names_in(dir) == std::vector<std::string>{snap_name(20), snap_name(30)});
}

TEST_CASE("snapshot files adopted from a leader are pruned through the remover too") {
    TempDir tmp;
    FaultFs fs;
    auto leader = SnapshotStore::open(tmp.sub("leader"), fs);
    REQUIRE(leader.ok());
    const std::string dir = tmp.sub("snapshots");
    auto store = SnapshotStore::open(dir, fs);
    REQUIRE(store.ok());
    HeldRemovals held;
    (*store)->set_remover(held.remover());
    std::filesystem::create_directories((*store)->staging_dir());
    std::atomic<int> truncations{0};
    fs.set_before_mutation([&](const std::string& what) {
        if (what.rfind("truncate " + dir + "/", 0) == 0) ++truncations;
    });
    for (raft::Index index : {10, 20, 30}) {
        const SnapshotFile sent = publish(**leader, index, kLargePadding);
        const std::string staged = (*store)->staging_dir() + "/staged-" + std::to_string(index);
        std::filesystem::copy_file(sent.path, staged);
        REQUIRE((*store)->adopt(staged, sent.meta).ok());
    }
    // The adopting thread (the runtime's I/O thread) only renamed.
    CHECK(truncations.load() == 0);
    REQUIRE(held.tasks.size() == 1);
    held.run_all();
    fs.set_before_mutation(nullptr);
    CHECK(truncations.load() == 3);
    CHECK(names_in(dir) == std::vector<std::string>{"incoming", snap_name(20), snap_name(30)});
}

// A power loss at every step of the stepped deletion: each copy opens with
// the kept snapshots intact, nothing damaged, and no leftover.
TEST_CASE("a crash at any step of a snapshot file's deletion damages nothing") {
    TempDir tmp;
    FaultFs fs;
    const std::string dir = tmp.sub("snapshots");
    auto store = SnapshotStore::open(dir, fs);
    REQUIRE(store.ok());
    HeldRemovals held;
    (*store)->set_remover(held.remover());
    publish(**store, 10, kLargePadding);
    publish(**store, 20, kLargePadding);
    std::vector<std::string> crashes;
    fs.set_before_mutation([&](const std::string&) {
        const std::string copy = tmp.sub("crash" + std::to_string(crashes.size()));
        fs.copy_dropping_unsynced(dir, copy);
        crashes.push_back(copy);
    });
    publish(**store, 30, kLargePadding);
    held.run_all();
    fs.set_before_mutation(nullptr);
    REQUIRE(crashes.size() >= 10);
    for (const std::string& copy : crashes) {
        INFO(copy);
        auto reopened = SnapshotStore::open(copy, *wal::default_file_system());
        REQUIRE(reopened.ok());
        CHECK((*reopened)->damaged().empty());
        std::vector<raft::Index> verified;
        for (const SnapshotFile& f : (*reopened)->all()) {
            REQUIRE(SnapshotStore::verify(*wal::default_file_system(), f.path).ok());
            verified.push_back(f.meta.index);
        }
        // 10 whole if the crash came before its rename; 30 once it was
        // published.
        CHECK(std::count(verified.begin(), verified.end(), raft::Index{20}) == 1);
        for (const std::string& name : names_in(copy))
            CHECK(name.find(".tmp") == std::string::npos);
    }
}

// A node's pruned snapshot files go to its background thread, which deletes
// them in steps: never the I/O thread (a leader's snapshot is adopted there)
// nor the apply thread.
TEST_CASE("a node deletes its large pruned snapshot files in steps on its background thread") {
    TempDir tmp;
    FaultFs fs;
    std::mutex mu;
    std::set<std::string> truncating_threads;  // guarded by mu
    int truncations = 0;                       // guarded by mu
    fs.set_before_mutation([&](const std::string& what) {
        if (what.rfind("truncate ", 0) != 0 || what.find("/snapshots/") == std::string::npos)
            return;
        char name[16] = {};
        pthread_getname_np(pthread_self(), name, sizeof name);
        std::lock_guard lock(mu);
        truncating_threads.insert(name);
        ++truncations;
    });
    NodeOptions options;
    options.id = 1;
    options.data_dir = tmp.sub("node");
    options.snapshot_every_entries = 8;
    {
        auto opened = runtime::Replica::open(
            options, std::make_shared<keel::test::RecordingStateMachine>(), &fs);
        REQUIRE(opened.ok());
        // Snapshots of every write so far: 8 writes of 200 KB make 1.6 MB,
        // more than a removal step from the first snapshot on.
        for (int i = 0; i < 40; ++i)
            REQUIRE((*opened)->propose(std::string(200 * 1000, 'a' + i % 26)).get().status.ok());
        (*opened)->stop();  // the background thread finishes its deletions
    }
    fs.set_before_mutation(nullptr);
    std::lock_guard lock(mu);
    CHECK(truncations >= 2);
    CHECK(truncating_threads == std::set<std::string>{"keel-background"});
    for (const std::string& name : names_in(options.data_dir + "/snapshots"))
        CHECK(name.find(".tmp") == std::string::npos);
}
