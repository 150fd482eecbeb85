// Large snapshot files and the log's durable writes (runtime/snapshot_store.hpp;
// docs/decisions/0052): a snapshot is written back a buffer at a time as it
// is written; a pruned file larger than one removal step is renamed away at
// once and deleted in steps by the remover, never as one unlink whose
// discard would stall the log; a small one, or one being read (pinned), is
// unlinked at once.  A crash at any step of a stepped deletion leaves the
// kept snapshots intact and no damaged file.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../common/fault_fs.hpp"
#include "../common/temp_dir.hpp"
#include "../common/thread_name.hpp"
#include "../common/write_back_trace.hpp"
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

SnapshotFile publish(SnapshotStore& store, raft::Index index, std::size_t padding) {
    auto published = keel::test::write_and_publish(store, index, Durability::now, padding);
    REQUIRE(published.ok());
    return *published;
}

// A snapshot store on a FaultFs whose remover holds the deletions it is
// handed until the test runs them.
struct HeldStore {
    TempDir tmp;
    FaultFs fs;
    const std::string dir = tmp.sub("snapshots");
    std::unique_ptr<SnapshotStore> store;
    std::vector<std::function<void()>> held;

    HeldStore() {
        auto opened = SnapshotStore::open(dir, fs);
        REQUIRE(opened.ok());
        store = std::move(opened.value());
        store->set_remover([this](std::function<void()> task) {
            held.push_back(std::move(task));
            return true;
        });
    }
    SnapshotFile publish(raft::Index index, std::size_t padding = kLargePadding) {
        return ::publish(*store, index, padding);
    }
    void run_removals() {
        auto now = std::move(held);
        held.clear();
        for (auto& task : now) task();
    }
};

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
    HeldStore s;
    auto writer = s.store->begin();
    REQUIRE(writer.ok());
    std::mutex mu;
    std::vector<std::string> events;
    s.fs.set_before_mutation([&](const std::string& what) {
        std::lock_guard lock(mu);
        if (what.rfind("write_back", 0) == 0) events.push_back(what);
    });
    constexpr std::uint64_t kMiB = 1 << 20;
    // Small writes, then one of several megabytes, then small ones again.
    for (int i = 0; i < 40; ++i) REQUIRE((*writer)->write(std::string(64 * 1024, 'a')).ok());
    REQUIRE((*writer)->write(std::string(3 * kMiB + 5, 'b')).ok());
    for (int i = 0; i < 20; ++i) REQUIRE((*writer)->write(std::string(100 * 1000, 'c')).ok());
    const std::uint64_t data_bytes = (*writer)->data_bytes();
    s.fs.set_before_mutation(nullptr);

    // A buffer at a time, never the whole file at once; two in flight at most.
    const keel::test::WriteBackTrace t = keel::test::replay_write_backs(events, 2 * kMiB);
    for (std::uint64_t piece : t.pieces) CHECK(piece == kMiB);
    CHECK(t.pieces.size() >= 5);
    // What is left: less than a chunk written, and the buffer.
    CHECK(data_bytes - t.started_end < 2 * kMiB);
}

TEST_CASE("a pruned snapshot file of several steps is renamed away and deleted in steps") {
    HeldStore s;

    s.publish(10);
    s.publish(20);
    CHECK(s.held.empty());
    s.publish(30);  // prunes 10

    // At once: out of the snapshots' names, whole, and queued.
    const std::string removing = s.dir + "/" + snap_name(10) + kRemovingSuffix;
    CHECK(names_in(s.dir) ==
          std::vector<std::string>{snap_name(10) + kRemovingSuffix, snap_name(20), snap_name(30)});
    CHECK(std::filesystem::file_size(removing) > kLargePadding);
    REQUIRE(s.held.size() == 1);

    std::mutex mu;
    std::vector<std::string> steps;
    s.fs.set_before_mutation([&](const std::string& what) {
        std::lock_guard lock(mu);
        const std::string op = what.substr(0, what.find(' '));
        if (op == "truncate" || op == "remove")
            steps.push_back(op + " " + std::to_string(std::filesystem::file_size(removing)));
        else
            steps.push_back(op);
    });
    s.run_removals();
    s.fs.set_before_mutation(nullptr);

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
    CHECK(names_in(s.dir) == std::vector<std::string>{snap_name(20), snap_name(30)});
}

TEST_CASE("a pruned snapshot file of one step or less is unlinked at once") {
    HeldStore s;
    s.publish(10, 64 * 1024);
    s.publish(20, 64 * 1024);
    s.publish(30, 64 * 1024);
    CHECK(s.held.empty());
    CHECK(names_in(s.dir) == std::vector<std::string>{snap_name(20), snap_name(30)});
}

TEST_CASE("without a remover, or when it refuses, the pruning thread deletes in steps") {
    HeldStore s;
    const bool with_refusing_remover = GENERATE(false, true);
    if (with_refusing_remover)
        s.store->set_remover([](std::function<void()>) { return false; });
    else
        s.store->set_remover(nullptr);
    std::mutex mu;
    int truncations = 0;
    s.fs.set_before_mutation([&](const std::string& what) {
        std::lock_guard lock(mu);
        if (what.rfind("truncate ", 0) == 0) ++truncations;
    });
    s.publish(10);
    s.publish(20);
    s.publish(30);
    s.fs.set_before_mutation(nullptr);
    CHECK(truncations == 3);
    CHECK(names_in(s.dir) == std::vector<std::string>{snap_name(20), snap_name(30)});
}

TEST_CASE("a snapshot file being read is unlinked at once when pruned, and read whole") {
    HeldStore s;
    const SnapshotFile oldest = s.publish(10);
    s.publish(20);

    SECTION("through a reader of the store") {
        auto reader = s.store->open_reader(oldest);
        REQUIRE(reader.ok());
        s.publish(30);  // prunes 10 while it is read
        s.run_removals();
        CHECK(names_in(s.dir) == std::vector<std::string>{snap_name(20), snap_name(30)});
        CHECK(read_whole(**reader).ok());
    }
    SECTION("through a pin taken before the file is opened elsewhere") {
        runtime::SnapshotPin pin = s.store->pin(oldest);
        auto opened = s.fs.open(oldest.path, wal::OpenMode::read_only);
        REQUIRE(opened.ok());
        s.publish(30);
        s.run_removals();
        CHECK(names_in(s.dir) == std::vector<std::string>{snap_name(20), snap_name(30)});
        auto source = SnapshotStore::open_reader(std::move(*opened), oldest.path);
        REQUIRE(source.ok());
        CHECK(read_whole(**source).ok());
    }
    SECTION("a pin released before the pruning leaves the steps to the remover") {
        { runtime::SnapshotPin released = s.store->pin(oldest); }
        runtime::SnapshotPin moved_away = s.store->pin(oldest);
        runtime::SnapshotPin holder = std::move(moved_away);
        holder = runtime::SnapshotPin();  // released by assignment
        s.publish(30);
        CHECK(s.held.size() == 1);
        s.run_removals();
    }
    SECTION("a reader opened after the pruning finds nothing") {
        s.publish(30);
        auto reader = s.store->open_reader(oldest);
        CHECK(reader.status().code() == ErrorCode::not_found);
        s.run_removals();
    }
    CHECK(names_in(s.dir) == std::vector<std::string>{snap_name(20), snap_name(30)});
}

TEST_CASE("snapshot files adopted from a leader are pruned through the remover too") {
    HeldStore s;
    auto leader = SnapshotStore::open(s.tmp.sub("leader"), s.fs);
    REQUIRE(leader.ok());
    std::filesystem::create_directories(s.store->staging_dir());
    std::atomic<int> truncations{0};
    s.fs.set_before_mutation([&](const std::string& what) {
        if (what.rfind("truncate " + s.dir + "/", 0) == 0) ++truncations;
    });
    for (raft::Index index : {10, 20, 30}) {
        const SnapshotFile sent = publish(**leader, index, kLargePadding);
        const std::string staged = s.store->staging_dir() + "/staged-" + std::to_string(index);
        std::filesystem::copy_file(sent.path, staged);
        REQUIRE(s.store->adopt(staged, sent.meta).ok());
    }
    // The adopting thread (the runtime's I/O thread) only renamed.
    CHECK(truncations.load() == 0);
    REQUIRE(s.held.size() == 1);
    s.run_removals();
    s.fs.set_before_mutation(nullptr);
    CHECK(truncations.load() == 3);
    CHECK(names_in(s.dir) == std::vector<std::string>{"incoming", snap_name(20), snap_name(30)});
}

// A power loss at every step of the stepped deletion: each copy opens with
// the kept snapshots intact, nothing damaged, and no leftover.
TEST_CASE("a crash at any step of a snapshot file's deletion damages nothing") {
    HeldStore s;
    s.publish(10);
    s.publish(20);
    std::vector<std::string> crashes;
    s.fs.set_before_mutation([&](const std::string&) {
        const std::string copy = s.tmp.sub("crash" + std::to_string(crashes.size()));
        s.fs.copy_dropping_unsynced(s.dir, copy);
        crashes.push_back(copy);
    });
    s.publish(30);
    s.run_removals();
    s.fs.set_before_mutation(nullptr);
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
        std::lock_guard lock(mu);
        truncating_threads.insert(keel::test::thread_name());
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
