// A group's snapshot directory is made when its first snapshot is written
// (docs/decisions/0047), not when the group opens: a new group on a Host
// creates its directory and its cluster id file only.  The directory's name
// is durable (its parent fsynced) before any file in it is; a directory a
// crash left between its mkdir and that fsync is made durable again before
// its first snapshot; a data dir made by an older keel (the directories
// made at open, with leftovers in them) keeps opening; and a power loss at
// any step of a group's open and of its first snapshots and compaction
// loses no acknowledged write.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "../common/fault_fs.hpp"
#include "../common/temp_dir.hpp"
#include "runtime/host.hpp"
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

void publish(SnapshotStore& store, raft::Index index) {
    REQUIRE(keel::test::write_and_publish(store, index, Durability::now).ok());
}

// The file system's mutations, in order.
struct Steps {
    std::mutex mu;
    std::vector<std::string> seen;  // guarded by mu

    void watch(FaultFs& fs) {
        fs.set_before_mutation([this](const std::string& what) {
            std::lock_guard lock(mu);
            seen.push_back(what);
        });
    }
    // Where `what` was first seen (seen.size() if never).
    std::size_t first(const std::string& what) {
        std::lock_guard lock(mu);
        return static_cast<std::size_t>(std::find(seen.begin(), seen.end(), what) - seen.begin());
    }
    std::size_t first_prefixed(const std::string& prefix) {
        std::lock_guard lock(mu);
        return static_cast<std::size_t>(
            std::find_if(seen.begin(), seen.end(),
                         [&](const std::string& s) { return s.rfind(prefix, 0) == 0; }) -
            seen.begin());
    }
};

std::set<std::string> names_in(const std::string& dir) {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        out.insert(e.path().filename().string());
    return out;
}

NodeOptions lone_voter(std::uint64_t snapshot_every_entries) {
    NodeOptions o;
    o.id = 1;
    o.snapshot_every_entries = snapshot_every_entries;
    o.wal_direct_io = false;
    return o;
}

HostOptions host_options(const std::string& dir) {
    HostOptions h;
    h.data_dir = dir;
    h.wal_direct_io = false;
    h.wal_segment_bytes = 16 * 1024;
    return h;
}

struct Groups {
    std::vector<std::unique_ptr<Node>> nodes;  // group g at g - 1
    std::vector<std::shared_ptr<RecordingStateMachine>> sms;
};

Groups open_groups(runtime::HostImpl& host, GroupId count, std::uint64_t snapshot_every_entries) {
    Groups out;
    std::vector<GroupToOpen> batch;
    for (GroupId g = 1; g <= count; ++g) {
        out.sms.push_back(std::make_shared<RecordingStateMachine>());
        batch.push_back(GroupToOpen{g, lone_voter(snapshot_every_entries), out.sms.back()});
    }
    for (auto& opened : host.open_groups(std::move(batch))) {
        INFO(opened.status().to_string());
        REQUIRE(opened.ok());
        out.nodes.push_back(std::move(opened.value()));
    }
    return out;
}

std::unique_ptr<runtime::HostImpl> open_host(const std::string& dir, FaultFs* fs = nullptr) {
    auto host = runtime::HostImpl::open(host_options(dir), fs);
    INFO(host.status().to_string());
    REQUIRE(host.ok());
    return std::move(host.value());
}

}  // namespace

TEST_CASE("a snapshot store makes its directory for its first snapshot, durable before any file",
          "[snapshot_dir]") {
    TempDir tmp;
    FaultFs fs;
    const std::string group = tmp.sub("group");
    const std::string dir = group + "/snapshots";
    REQUIRE(std::filesystem::create_directory(group));
    auto store = SnapshotStore::open(dir, fs);
    REQUIRE(store.ok());
    CHECK_FALSE(std::filesystem::exists(dir));
    CHECK_FALSE((*store)->latest());
    CHECK((*store)->flush().ok());  // nothing to flush, and no directory to sync
    CHECK_FALSE(std::filesystem::exists(dir));
    CHECK((*store)->available_bytes().ok());  // the parent's file system

    Steps steps;
    steps.watch(fs);
    publish(**store, 5);
    fs.set_before_mutation(nullptr);
    const std::size_t made = steps.first("mkdir " + dir);
    const std::size_t synced = steps.first("sync_dir " + group);
    const std::size_t created = steps.first_prefixed("create " + dir + "/");
    REQUIRE(created < steps.seen.size());
    CHECK(made < synced);
    CHECK(synced < created);
    // A power loss now keeps the directory, and the snapshot in it.
    fs.copy_dropping_unsynced(group, tmp.sub("cut"));
    auto listing = SnapshotStore::list(tmp.sub("cut") + "/snapshots", *wal::default_file_system());
    REQUIRE(listing.ok());
    REQUIRE(listing->valid.size() == 1);
    CHECK(listing->valid.front().meta.index == 5);
    // The parent is synced once per store, not per snapshot.
    steps.seen.clear();
    steps.watch(fs);
    publish(**store, 6);
    fs.set_before_mutation(nullptr);
    CHECK(steps.first("sync_dir " + group) == steps.seen.size());
}

TEST_CASE("a snapshot dir left before its parent's fsync is made durable before its first file",
          "[snapshot_dir]") {
    TempDir tmp;
    FaultFs fs;
    const std::string group = tmp.sub("group");
    const std::string dir = group + "/snapshots";
    // What a crash between the mkdir and the parent's fsync leaves (or the
    // transport, making incoming/ for a stream): a directory without a
    // .snap, here with a stale staged file.
    REQUIRE(std::filesystem::create_directories(dir + "/incoming"));
    std::ofstream(dir + "/incoming/snapshot-2-1-0.snap") << "staged";
    auto store = SnapshotStore::open(dir, fs);
    REQUIRE(store.ok());
    CHECK(std::filesystem::is_empty(dir + "/incoming"));
    Steps steps;
    steps.watch(fs);
    publish(**store, 5);
    fs.set_before_mutation(nullptr);
    const std::size_t synced = steps.first("sync_dir " + group);
    CHECK(synced < steps.first_prefixed("create " + dir + "/"));

    // A directory holding a snapshot was made durable by the run that put
    // it there: reopened, no fsync of the parent again.
    auto reopened = SnapshotStore::open(dir, fs);
    REQUIRE(reopened.ok());
    steps.seen.clear();
    steps.watch(fs);
    publish(**reopened, 6);
    fs.set_before_mutation(nullptr);
    CHECK(steps.first("sync_dir " + group) == steps.seen.size());
}

TEST_CASE("a new group on a Host creates its directory and its cluster id only",
          "[snapshot_dir][host]") {
    TempDir tmp;
    auto host = open_host(tmp.path());
    Groups groups = open_groups(*host, 3, /*snapshot_every_entries=*/8);
    for (GroupId g = 1; g <= 3; ++g) {
        INFO("group " << g);
        CHECK(names_in(tmp.sub("groups/" + std::to_string(g))) ==
              std::set<std::string>{"cluster_id"});
    }
    // Group 2's first snapshot makes its snapshot directory, and no other's.
    for (int i = 0; i < 12; ++i) REQUIRE(groups.nodes[1]->propose("w").get().status.ok());
    REQUIRE(groups.nodes[1]->snapshot_now().get().ok());
    CHECK(names_in(tmp.sub("groups/2")) == std::set<std::string>{"cluster_id", "snapshots"});
    CHECK_FALSE(std::filesystem::exists(tmp.sub("groups/2/snapshots/incoming")));
    CHECK(names_in(tmp.sub("groups/1")) == std::set<std::string>{"cluster_id"});
}

TEST_CASE("a group's data dir made with its snapshot directories at open keeps opening",
          "[snapshot_dir][host]") {
    TempDir tmp;
    {
        auto host = open_host(tmp.path());
        Groups groups = open_groups(*host, 2, /*snapshot_every_entries=*/0);
        for (auto& node : groups.nodes) REQUIRE(node->propose("before").get().status.ok());
    }
    // The layout an older keel made at open, with what a crash leaves in it:
    // a staged stream and an unpublished snapshot.
    for (const char* g : {"1", "2"}) {
        const std::string snapshots = tmp.sub("groups/") + g + "/snapshots";
        REQUIRE(std::filesystem::create_directories(snapshots + "/incoming"));
        std::ofstream(snapshots + "/incoming/snapshot-2-1-0.part") << "partial";
        std::ofstream(snapshots + "/incoming-1-1.tmp") << "unpublished";
    }
    auto host = open_host(tmp.path());
    Groups groups = open_groups(*host, 2, /*snapshot_every_entries=*/0);
    for (GroupId g = 1; g <= 2; ++g) {
        INFO("group " << g);
        Node& node = *groups.nodes[g - 1];
        REQUIRE(node.read_index(true).get().status.ok());
        const auto applied = groups.sms[g - 1]->applied();
        CHECK(std::any_of(applied.begin(), applied.end(),
                          [](const auto& e) { return e.second == "before"; }));
        const std::string snapshots = tmp.sub("groups/" + std::to_string(g) + "/snapshots");
        CHECK_FALSE(std::filesystem::exists(snapshots + "/incoming-1-1.tmp"));
        REQUIRE(node.propose("after").get().status.ok());
        REQUIRE(node.snapshot_now().get().ok());
        CHECK(names_in(snapshots).size() == 2);  // incoming/ and the new .snap
    }
}

namespace {

// A Host opening kGroups groups and writing to them one entry at a time,
// snapshotting every few entries; before every change to a group's files
// and to the WAL's files (not its appends), the data dir is copied as a
// power loss would leave it, with the writes acknowledged by then.
constexpr GroupId kCutGroups = 2;
constexpr int kCutWrites = 200;

struct Cut {
    std::string dir;
    std::string step;
    std::map<GroupId, std::map<std::uint64_t, std::string>> acked;
};

bool cut_here(const std::string& data_dir, const std::string& what) {
    if (what.find(data_dir + "/groups") != std::string::npos) return true;
    if (what == "sync_dir " + data_dir) return true;
    return what.find("/wal/") != std::string::npos &&
           (what.rfind("remove ", 0) == 0 || what.rfind("rename ", 0) == 0 ||
            what.find("meta") != std::string::npos);
}

}  // namespace

TEST_CASE("a power loss in a group's open or first snapshots loses no acknowledged write",
          "[snapshot_dir][host][power_loss]") {
    TempDir tmp;
    const std::string data_dir = tmp.sub("host");
    FaultFs fs;
    std::mutex mu;
    std::map<GroupId, std::map<std::uint64_t, std::string>> acked;  // guarded by mu
    std::vector<Cut> cuts;  // appended under fs's mutation order (one at a time)
    std::atomic<int> snapshot_dir_steps{0}, wal_file_steps{0};
    {
        auto host = open_host(data_dir, &fs);
        fs.set_before_mutation([&](const std::string& what) {
            if (!cut_here(data_dir, what)) return;
            if (what.find("/snapshots") != std::string::npos) snapshot_dir_steps.fetch_add(1);
            if (what.find("/wal/") != std::string::npos) wal_file_steps.fetch_add(1);
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
        Groups groups = open_groups(*host, kCutGroups, /*snapshot_every_entries=*/16);
        for (int i = 0; i < kCutWrites; ++i) {
            for (GroupId g = 1; g <= kCutGroups; ++g) {
                std::string data = "g" + std::to_string(g) + "w" + std::to_string(i);
                ProposeResult r = groups.nodes[g - 1]->propose(data + std::string(200, 'x')).get();
                REQUIRE(r.status.ok());
                std::lock_guard lock(mu);
                acked[g][r.index] = data + std::string(200, 'x');
            }
        }
        groups.nodes.clear();
        fs.set_before_mutation(nullptr);
    }
    // And a power loss once everything is done (the log compacted behind
    // the snapshots).
    Cut last;
    last.dir = tmp.sub("cut-last");
    last.step = "(the end)";
    last.acked = acked;
    fs.copy_dropping_unsynced(data_dir, last.dir);
    cuts.push_back(std::move(last));
    INFO("steps cut: " << cuts.size() << " (in snapshot dirs " << snapshot_dir_steps.load()
                       << ", WAL files " << wal_file_steps.load() << ")");
    // Snapshots were written, and the log compacted behind them: a copy
    // that lost a snapshot directory would miss entries.
    REQUIRE(snapshot_dir_steps.load() > 0);
    REQUIRE(wal_file_steps.load() > 0);
    for (const Cut& cut : cuts) {
        INFO("power loss before: " << cut.step << " (copy " << cut.dir << ")");
        {
            auto host = open_host(cut.dir);
            Groups groups = open_groups(*host, kCutGroups, /*snapshot_every_entries=*/16);
            for (GroupId g = 1; g <= kCutGroups; ++g) {
                INFO("group " << g);
                REQUIRE(groups.nodes[g - 1]->read_index(true).get().status.ok());
                const auto applied = groups.sms[g - 1]->applied();
                auto it = cut.acked.find(g);
                if (it == cut.acked.end()) continue;
                for (const auto& [index, data] : it->second) {
                    INFO("index " << index);
                    REQUIRE(applied.count(index) == 1);
                    REQUIRE(applied.at(index) == data);
                }
            }
        }
        std::error_code ignored;
        std::filesystem::remove_all(cut.dir, ignored);
    }
}
