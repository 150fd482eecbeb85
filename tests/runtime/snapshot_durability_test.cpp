// Deferred snapshot durability (docs/decisions/0027): an automatic snapshot
// is published without flushes and made durable only when the log's
// compaction needs it.  The store's side (what is durable, kept, the
// fallback) against FaultFs's power-loss model, which drops every write not
// fdatasynced; and a node whose every step of several snapshot, flush and
// compaction cycles is cut by a power loss, each copy reopened and checked
// for every write acknowledged before it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "../common/fault_fs.hpp"
#include "../common/temp_dir.hpp"
#include "runtime/replica.hpp"
#include "runtime/snapshot_store.hpp"
#include "snapshot_support.hpp"
#include "test_state_machine.hpp"

using namespace keel;
using keel::runtime::Durability;
using keel::runtime::SnapshotStore;
using keel::test::FaultFs;
using keel::test::RecordingStateMachine;
using keel::test::TempDir;

namespace {

void publish(SnapshotStore& store, raft::Index index, Durability durability) {
    auto published = keel::test::write_and_publish(store, index, durability, 5000);
    REQUIRE(published.ok());
    CHECK(published->durable == (durability == Durability::now));
}

std::vector<raft::Index> indexes(const std::vector<runtime::SnapshotFile>& files) {
    std::vector<raft::Index> out;
    for (const auto& f : files) out.push_back(f.meta.index);
    return out;
}

// The snapshots a restart after a power loss now would find intact (the
// whole file read against its checksums, as the runtime does at start-up).
std::vector<raft::Index> intact_after_power_loss(FaultFs& fs, const std::string& dir,
                                                 const std::string& copy) {
    fs.copy_dropping_unsynced(dir, copy);
    auto listing = SnapshotStore::list(copy, *wal::default_file_system());
    REQUIRE(listing.ok());
    std::vector<raft::Index> out;
    for (const auto& f : listing->valid)
        if (SnapshotStore::verify(*wal::default_file_system(), f.path).ok())
            out.push_back(f.meta.index);
    return out;
}

}  // namespace

TEST_CASE("a deferred snapshot counts for compaction only once flushed, and survives only then") {
    TempDir tmp;
    FaultFs fs;
    const std::string dir = tmp.sub("snapshots");
    auto store = SnapshotStore::open(dir, fs);
    REQUIRE(store.ok());
    SnapshotStore& s = **store;

    publish(s, 10, Durability::now);
    publish(s, 20, Durability::now);
    CHECK(s.fallback_index() == raft::Index{10});
    CHECK(s.durable_index() == raft::Index{20});

    publish(s, 30, Durability::deferred);
    publish(s, 40, Durability::deferred);
    // The newest is offered (sent to followers, backups); the log still
    // reaches back behind the durable ones; the older unflushed one is gone.
    CHECK(s.latest()->meta.index == 40);
    CHECK(indexes(s.all()) == std::vector<raft::Index>{10, 20, 40});
    CHECK(s.fallback_index() == raft::Index{10});
    CHECK(s.durable_index() == raft::Index{20});
    CHECK(s.deferred_publishes() == 2);
    // A power loss now loses 40 (its data was never flushed); 10 and 20 stand.
    CHECK(intact_after_power_loss(fs, dir, tmp.sub("loss1")) == std::vector<raft::Index>{10, 20});

    REQUIRE(s.flush().ok());
    CHECK(s.deferred_publishes() == 0);
    CHECK(indexes(s.all()) == std::vector<raft::Index>{20, 40});
    CHECK(s.fallback_index() == raft::Index{20});
    CHECK(s.durable_index() == raft::Index{40});
    CHECK(intact_after_power_loss(fs, dir, tmp.sub("loss2")) == std::vector<raft::Index>{20, 40});
}

TEST_CASE("a deferred snapshot never replaces a durable file of the same name unflushed") {
    TempDir tmp;
    FaultFs fs;
    const std::string dir = tmp.sub("snapshots");
    auto store = SnapshotStore::open(dir, fs);
    REQUIRE(store.ok());
    publish(**store, 10, Durability::now);
    auto writer = (*store)->begin();
    REQUIRE(writer.ok());
    REQUIRE((*writer)->write("the same state again").ok());
    auto published = (*store)->publish(**writer, keel::test::lone_voter_snapshot_meta(10),
                                       Durability::deferred);
    REQUIRE(published.ok());
    CHECK(published->durable);  // made durable at once instead
    CHECK(intact_after_power_loss(fs, dir, tmp.sub("loss")) == std::vector<raft::Index>{10});
}

TEST_CASE("files found at open count as durable only once made so") {
    TempDir tmp;
    const std::string dir = tmp.sub("snapshots");
    {
        auto store = SnapshotStore::open(dir, *wal::default_file_system());
        REQUIRE(store.ok());
        publish(**store, 10, Durability::now);
        publish(**store, 20, Durability::now);
    }
    FaultFs fs;
    auto store = SnapshotStore::open(dir, fs);
    REQUIRE(store.ok());
    CHECK_FALSE((*store)->durable_index());
    CHECK_FALSE((*store)->fallback_index());
    REQUIRE((*store)->make_durable(*(*store)->latest()).ok());
    CHECK((*store)->durable_index() == raft::Index{20});
    CHECK_FALSE((*store)->fallback_index());
    // A flush makes every kept file durable.
    REQUIRE((*store)->flush().ok());
    CHECK((*store)->fallback_index() == raft::Index{10});
}

TEST_CASE("a failed flush is an I/O error") {
    TempDir tmp;
    FaultFs fs;
    const std::string dir = tmp.sub("snapshots");
    auto store = SnapshotStore::open(dir, fs);
    REQUIRE(store.ok());
    publish(**store, 10, Durability::deferred);
    fs.set_inject(keel::test::fail_on("datasync", "snapshot-", ErrorCode::io_error));
    Status flushed = (*store)->flush();
    CHECK(flushed.code() == ErrorCode::io_error);
    CHECK_FALSE((*store)->durable_index());
}

namespace {

NodeOptions power_loss_options(const std::string& dir, std::uint64_t segment_bytes) {
    NodeOptions o;
    o.id = 1;
    o.data_dir = dir;
    o.snapshot_every_entries = 16;
    o.wal_segment_bytes = segment_bytes;
    return o;
}

// A node proposing one write at a time; before each change to its
// snapshots or to the WAL's files (not the appends: a snapshot's cycle is
// what is tested), the data dir is copied as a power loss would leave it,
// with the writes acknowledged by then.  Every copy must reopen with every
// one of those writes.
void power_loss_at_every_step(std::uint64_t segment_bytes, int writes) {
    TempDir tmp;
    const std::string data_dir = tmp.sub("node");
    FaultFs fs;
    std::mutex mu;
    std::map<std::uint64_t, std::string> acked;  // guarded by mu
    struct Cut {
        std::string dir;
        std::string step;
        std::map<std::uint64_t, std::string> acked;
    };
    std::vector<Cut> cuts;  // guarded by fs's mutation order (one at a time)
    std::atomic<int> snapshot_steps{0}, wal_file_steps{0};
    {
        auto opened = runtime::Replica::open(power_loss_options(data_dir, segment_bytes),
                                             std::make_shared<RecordingStateMachine>(), &fs);
        REQUIRE(opened.ok());
        std::unique_ptr<Node> node = std::move(opened.value());
        fs.set_before_mutation([&](const std::string& what) {
            const bool snapshot = what.find("/snapshots/") != std::string::npos;
            // The WAL's metadata and segment deletions (compaction), not
            // its appends, fsyncs and segment preparation.
            const bool wal_file = what.find("/wal/") != std::string::npos &&
                                  (what.rfind("remove ", 0) == 0 || what.rfind("rename ", 0) == 0 ||
                                   what.find("meta") != std::string::npos);
            if (!snapshot && !wal_file) return;
            (snapshot ? snapshot_steps : wal_file_steps).fetch_add(1);
            Cut cut;
            cut.dir = tmp.sub("cut" + std::to_string(cuts.size()));
            cut.step = what;
            {
                std::lock_guard lock(mu);
                cut.acked = acked;
            }
            fs.copy_dropping_unsynced(data_dir, cut.dir);
            cuts.push_back(std::move(cut));
        });
        for (int i = 0; i < writes; ++i) {
            std::string data = "w" + std::to_string(i) + std::string(300, 'x');
            ProposeResult r = node->propose(data).get();
            REQUIRE(r.status.ok());
            std::lock_guard lock(mu);
            acked[r.index] = data;
        }
        node->stop();
        fs.set_before_mutation(nullptr);
    }
    INFO("steps cut: " << cuts.size() << " (snapshots " << snapshot_steps.load() << ", WAL files "
                       << wal_file_steps.load() << ")");
    REQUIRE(snapshot_steps.load() > 0);
    REQUIRE(wal_file_steps.load() > 0);
    for (const Cut& cut : cuts) {
        INFO("power loss before: " << cut.step << " (copy " << cut.dir << ")");
        auto sm = std::make_shared<RecordingStateMachine>();
        auto node = Node::open(power_loss_options(cut.dir, segment_bytes), sm);
        INFO(node.status().to_string());
        REQUIRE(node.ok());
        REQUIRE(node.value()->read_index(true).get().status.ok());
        const auto applied = sm->applied();
        for (const auto& [index, data] : cut.acked) {
            INFO("index " << index);
            REQUIRE(applied.count(index) == 1);
            REQUIRE(applied.at(index) == data);
        }
        node.value().reset();  // its threads gone before its files
        std::error_code ignored;
        std::filesystem::remove_all(cut.dir, ignored);
    }
}

}  // namespace

TEST_CASE("a power loss at any step of snapshot, flush and compaction loses no acknowledged write",
          "[power_loss]") {
    SECTION("flushed when compaction would free a segment") {
        power_loss_at_every_step(/*segment_bytes=*/16 * 1024, /*writes=*/400);
    }
    SECTION("flushed after kMaxDeferredSnapshots") {
        power_loss_at_every_step(/*segment_bytes=*/1 << 20, /*writes=*/16 * 40);
    }
}
