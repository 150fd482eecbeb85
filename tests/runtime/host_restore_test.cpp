// keel::restore_host_data_dir (keel/host_restore.hpp): a Host's groups
// backed up into one archive come back in a new cluster of three Hosts,
// each group with exactly the state of its snapshot (no other group's, none
// of what came after), electing and taking new writes after its snapshot's
// index; a restore that cannot be done writes nothing: another group set,
// a damaged archive, a target that holds something, a leftover of a
// restore that stopped half way, or an application file that fails; and a
// power loss at any step of a restore leaves no data dir (the restore runs
// again) or one whose every group opens with its state.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../common/fault_fs.hpp"
#include "../common/memory_transport.hpp"
#include "cluster_support.hpp"
#include "keel/host_restore.hpp"
#include "runtime/host.hpp"
#include "runtime/host_restore.hpp"
#include "runtime/shared_wal.hpp"

using namespace keel;
using keel::test::confirmed_leader;
using keel::test::eventually;
using keel::test::MemoryNetwork;
using keel::test::propose_through_leader;
using keel::test::RecordingStateMachine;
using keel::test::TempDir;

namespace {

constexpr GroupId kGroups[] = {1, 2, 3};
constexpr NodeId kProcesses[] = {1, 2, 3};
constexpr std::uint64_t kSmallSegmentBytes = 64 << 10;

std::string key(GroupId g, const std::string& what) {
    return "g" + std::to_string(g) + "-" + what;
}

NodeOptions lone_group_options() {
    NodeOptions o;
    o.id = 1;
    o.initial_members = {MemberSpec{1, "127.0.0.1:7001", "", true}};
    o.snapshot_every_entries = 0;
    return o;
}

// A lone Host with groups 1..3, each holding key(g, "0".."2") in its
// snapshot and key(g, "after") after it; their snapshots in one archive.
// Copies `node`'s latest snapshot, byte for byte, to the file at `path`.
void save_latest_snapshot(Node& node, const std::string& path) {
    auto source = node.open_latest_snapshot();
    REQUIRE(source.ok());
    std::ofstream out(path, std::ios::binary);
    char buffer[4096];
    for (;;) {
        auto n = (*source)->read(buffer, sizeof buffer);
        REQUIRE(n.ok());
        if (*n == 0) break;
        out.write(buffer, static_cast<std::streamsize>(*n));
    }
    out.close();
    REQUIRE(out.good());
}

void make_backup(const TempDir& dir, const std::string& archive) {
    HostOptions ho;
    ho.data_dir = dir.sub("source");
    ho.wal_direct_io = false;
    auto host = Host::open(ho);
    REQUIRE(host.ok());
    std::map<GroupId, std::unique_ptr<Node>> groups;
    for (GroupId g : kGroups) {
        auto group =
            (*host)->open_group(g, lone_group_options(), std::make_shared<RecordingStateMachine>());
        INFO(group.status().to_string());
        REQUIRE(group.ok());
        groups[g] = std::move(group.value());
    }
    for (GroupId g : kGroups) {
        Node& node = *groups[g];
        REQUIRE(eventually([&] { return node.status().role == Role::leader; }));
        for (int i = 0; i < 3; ++i)
            REQUIRE(node.propose(key(g, std::to_string(i))).get().status.ok());
        REQUIRE(node.snapshot_now().get().ok());
        REQUIRE(node.propose(key(g, "after")).get().status.ok());
    }
    auto writer = BackupArchiveWriter::create(archive, std::size(kGroups));
    REQUIRE(writer.ok());
    for (GroupId g : kGroups) {
        const std::string path = dir.sub("group-" + std::to_string(g) + ".snap");
        save_latest_snapshot(*groups[g], path);
        REQUIRE((*writer)->add_group(g, path).ok());
    }
    REQUIRE((*writer)->finish().ok());
    groups.clear();
}

std::vector<MemberSpec> three_members() {
    std::vector<MemberSpec> members;
    for (NodeId id : kProcesses)
        members.push_back(MemberSpec{id, "memory:" + std::to_string(id), "", true});
    return members;
}

HostRestoreOptions restore_options(const std::string& data_dir, NodeId id,
                                   const std::string& cluster_id) {
    HostRestoreOptions r;
    r.node.id = id;
    r.node.data_dir = data_dir;
    r.node.initial_members = three_members();
    r.node.cluster_id = cluster_id;
    r.groups = {std::begin(kGroups), std::end(kGroups)};
    return r;
}

struct Process {
    std::unique_ptr<runtime::HostImpl> host;
    std::map<GroupId, std::shared_ptr<RecordingStateMachine>> sms;
    std::map<GroupId, std::unique_ptr<Node>> groups;
};

bool exists(const std::string& path) {
    return std::filesystem::exists(path);
}

}  // namespace

TEST_CASE("a Host's groups restored from one archive come back in a new cluster of three",
          "[runtime][backup]") {
    TempDir dir("keel-host-restore");
    const std::string archive = dir.sub("backup.keel");
    make_backup(dir, archive);

    const std::string cluster_id = keel::test::random_cluster_id();
    for (NodeId id : kProcesses) {
        const std::string data_dir = dir.sub("restored-" + std::to_string(id));
        HostRestoreOptions r = restore_options(data_dir, id, cluster_id);
        // The application's files are written into the data dir before it
        // appears: nothing is at data_dir yet, every group is.
        r.before_publish = [&](const std::string& building) {
            CHECK_FALSE(exists(data_dir));
            CHECK(exists(building + "/groups/3/cluster_id"));
            std::ofstream(building + "/app-file") << "node " << id << "\n";
            return Status::ok_status();
        };
        auto info = restore_host_data_dir(r, archive);
        INFO(info.status().to_string());
        REQUIRE(info.ok());
        CHECK(info->groups.size() == 3);
        CHECK(exists(data_dir + "/app-file"));
        CHECK_FALSE(exists(data_dir + ".restoring"));
    }

    {
        // The shared WAL holds each group's log as after its leader's
        // snapshot: it continues after the snapshot's index, with the
        // snapshot's term, no vote and commit at its index (nothing is left
        // to redo when the group opens).
        auto archived = verify_backup_archive(archive);
        REQUIRE(archived.ok());
        wal::Options wo;
        auto shared = runtime::SharedWal::open(dir.sub("restored-2/wal"), wo);
        REQUIRE(shared.ok());
        for (const BackupArchiveGroup& g : archived->groups) {
            auto store = (*shared)->open_group(g.group, {});
            REQUIRE(store.ok());
            CHECK((*store)->next_index() == g.snapshot.index + 1);
            CHECK((*store)->hard_state() ==
                  raft::HardState{g.snapshot.term, raft::kNoNode, g.snapshot.index});
        }
    }

    MemoryNetwork net;
    std::map<NodeId, Process> processes;
    net.deliver = false;  // until every group is open (host_test.cpp says why)
    for (NodeId id : kProcesses) {
        Process& p = processes[id];
        HostOptions ho;
        ho.data_dir = dir.sub("restored-" + std::to_string(id));
        ho.transport = net.endpoint(id);
        ho.wal_direct_io = false;
        auto host = runtime::HostImpl::open(ho);
        REQUIRE(host.ok());
        p.host = std::move(host.value());
        for (GroupId g : kGroups) {
            NodeOptions o;
            o.id = id;
            o.initial_members = three_members();
            o.heartbeat_interval_ms = 20;
            o.election_timeout_min_ms = 100;
            o.election_timeout_max_ms = 200;
            p.sms[g] = std::make_shared<RecordingStateMachine>();
            auto group = p.host->open_group(g, o, p.sms[g]);
            INFO(group.status().to_string());
            REQUIRE(group.ok());
            p.groups[g] = std::move(group.value());
        }
    }
    net.deliver = true;

    for (GroupId g : kGroups) {
        auto node_of = [&, g](NodeId id) { return processes.at(id).groups.at(g).get(); };
        // Every process starts from the snapshot: its three keys, nothing
        // else (no other group's, not what came after the snapshot).
        for (NodeId id : kProcesses) {
            std::vector<std::string> restored;
            for (const auto& [index, data] : processes.at(id).sms.at(g)->applied())
                if (!data.empty()) restored.push_back(data);
            INFO("process " << id << " group " << g);
            CHECK(restored == std::vector<std::string>{key(g, "0"), key(g, "1"), key(g, "2")});
            CHECK(processes.at(id).sms.at(g)->restores() == 1);
            CHECK(node_of(id)->status().members.size() == 3);
        }
        const std::uint64_t snapshot_index = node_of(1)->status().snapshot_index;
        CHECK(snapshot_index > 0);
        ProposeResult r = propose_through_leader(
            [&] {
                return confirmed_leader({1, 2, 3}, node_of);
            },
            node_of, key(g, "new"), 100);
        INFO(r.status.to_string());
        REQUIRE(r.status.ok());
        CHECK(r.index > snapshot_index);
        for (NodeId id : kProcesses)
            CHECK(eventually([&] { return processes.at(id).sms.at(g)->has_data(key(g, "new")); }));
    }
    for (auto& [id, p] : processes) {
        p.groups.clear();
        p.host.reset();
    }
}

TEST_CASE("a Host restore that cannot be done writes nothing, and can be run again",
          "[runtime][backup]") {
    TempDir dir("keel-host-restore");
    const std::string archive = dir.sub("backup.keel");
    make_backup(dir, archive);
    const std::string data_dir = dir.sub("restored");
    const std::string cluster_id = keel::test::random_cluster_id();
    auto nothing_written = [&] { return !exists(data_dir) && !exists(data_dir + ".restoring"); };

    SECTION("another set of groups than the archive's") {
        HostRestoreOptions r = restore_options(data_dir, 1, cluster_id);
        r.groups = {1, 2};
        auto info = restore_host_data_dir(r, archive);
        CHECK(info.status().code() == ErrorCode::invalid_argument);
        CHECK_THAT(info.status().message(), Catch::Contains("it holds group 3"));
        CHECK(nothing_written());
        r.groups = {1, 2, 3, 4};
        info = restore_host_data_dir(r, archive);
        CHECK_THAT(info.status().message(), Catch::Contains("group 4 is not in it"));
        CHECK(nothing_written());
    }
    SECTION("a damaged archive") {
        std::string bytes;
        {
            std::ifstream in(archive, std::ios::binary);
            bytes.assign(std::istreambuf_iterator<char>(in), {});
        }
        bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x10);
        std::ofstream(archive, std::ios::binary | std::ios::trunc) << bytes;
        auto info = restore_host_data_dir(restore_options(data_dir, 1, cluster_id), archive);
        CHECK(info.status().code() == ErrorCode::corruption);
        CHECK(nothing_written());
    }
    SECTION("a data dir that holds something") {
        std::filesystem::create_directories(data_dir);
        std::ofstream(data_dir + "/x") << "x";
        auto info = restore_host_data_dir(restore_options(data_dir, 1, cluster_id), archive);
        CHECK(info.status().code() == ErrorCode::invalid_argument);
        CHECK_FALSE(exists(data_dir + ".restoring"));
    }
    SECTION("several founders without a cluster id, or a joiner") {
        auto info = restore_host_data_dir(restore_options(data_dir, 1, ""), archive);
        CHECK(info.status().code() == ErrorCode::invalid_argument);
        CHECK(nothing_written());
        HostRestoreOptions r = restore_options(data_dir, 1, cluster_id);
        r.node.join = true;
        CHECK(restore_host_data_dir(r, archive).status().code() == ErrorCode::invalid_argument);
        CHECK(nothing_written());
    }
    SECTION("an application file that fails, then a leftover of a restore that stopped") {
        HostRestoreOptions r = restore_options(data_dir, 1, cluster_id);
        r.before_publish = [](const std::string&) {
            return Status(ErrorCode::io_error, "no room for the application's file");
        };
        auto info = restore_host_data_dir(r, archive);
        CHECK(info.status().code() == ErrorCode::io_error);
        CHECK(nothing_written());
        // A crash half way leaves the .restoring directory: refused until
        // it is deleted, then the restore runs again.
        std::filesystem::create_directories(data_dir + ".restoring/groups/1");
        r.before_publish = nullptr;
        info = restore_host_data_dir(r, archive);
        CHECK(info.status().code() == ErrorCode::invalid_argument);
        CHECK_THAT(info.status().message(), Catch::Contains("stopped half way"));
        CHECK_FALSE(exists(data_dir));
        std::filesystem::remove_all(data_dir + ".restoring");
        info = restore_host_data_dir(r, archive);
        REQUIRE(info.ok());
        CHECK(exists(data_dir + "/wal"));
    }
}

TEST_CASE("a restore killed at any step leaves no data dir, or one whose groups all open",
          "[runtime][backup]") {
    TempDir dir("keel-host-restore");
    const std::string archive = dir.sub("backup.keel");
    make_backup(dir, archive);
    const std::string parent = dir.sub("target");
    std::filesystem::create_directories(parent);
    // Each image: the target directory as a power loss just before one of
    // the restore's writes, fsyncs, renames or removals would leave it.
    keel::test::FaultFs fs;
    std::vector<std::string> images;
    fs.set_before_mutation([&](const std::string&) {
        images.push_back(dir.sub("crash-" + std::to_string(images.size())));
        fs.copy_dropping_unsynced(parent, images.back());
    });
    HostRestoreOptions r;
    r.node = lone_group_options();
    r.node.data_dir = parent + "/restored";
    r.node.wal_segment_bytes = kSmallSegmentBytes;  // each image copies the WAL's segment
    REQUIRE(runtime::restore_host_data_dir_on(fs, r, archive).ok());
    fs.set_before_mutation(nullptr);
    images.push_back(dir.sub("crash-end"));
    keel::test::copy_dir(parent, images.back());

    int whole = 0;
    int absent = 0;
    for (const std::string& image : images) {
        INFO(image);
        const std::string data_dir = image + "/restored";
        if (!exists(data_dir)) {
            // Nothing to start; the restore runs again once what a crash
            // left is deleted (and is refused until then).
            ++absent;
            r.node.data_dir = data_dir;
            if (exists(data_dir + ".restoring")) {
                CHECK_THAT(restore_host_data_dir(r, archive).status().message(),
                           Catch::Contains("stopped half way"));
                std::filesystem::remove_all(data_dir + ".restoring");
            }
            CHECK(restore_host_data_dir(r, archive).ok());
            continue;
        }
        ++whole;
        CHECK_FALSE(exists(data_dir + ".restoring"));
        HostOptions ho;
        ho.data_dir = data_dir;
        ho.wal_direct_io = false;
        ho.wal_segment_bytes = kSmallSegmentBytes;
        auto host = Host::open(ho);
        REQUIRE(host.ok());
        for (GroupId g : kGroups) {
            auto sm = std::make_shared<RecordingStateMachine>();
            auto group = (*host)->open_group(g, lone_group_options(), sm);
            INFO(group.status().to_string());
            REQUIRE(group.ok());
            std::vector<std::string> restored;
            for (const auto& [index, data] : sm->applied())
                if (!data.empty()) restored.push_back(data);
            CHECK(restored == std::vector<std::string>{key(g, "0"), key(g, "1"), key(g, "2")});
        }
    }
    CHECK(whole >= 1);
    CHECK(absent >= 10);
}

// Not run by default (hidden tag): what a restore of many groups costs, and
// what seeding the shared WAL saves the first open (decision 0034).  Each
// round restores KEEL_RESTORE_BENCH_GROUPS groups (1,000) twice and opens
// them, once as restored (the WAL seeded) and once with the WAL emptied
// (as if the restore had left every group's reset to its first open), in
// alternating order, KEEL_RESTORE_BENCH_ROUNDS rounds (3); one JSON line
// per run.
TEST_CASE("bench: restoring and opening many groups, with the WAL seeded or not", "[.][bench]") {
    const char* env = std::getenv("KEEL_RESTORE_BENCH_GROUPS");
    const std::size_t count = env ? std::strtoull(env, nullptr, 10) : 1000;
    const char* rounds_env = std::getenv("KEEL_RESTORE_BENCH_ROUNDS");
    const int rounds = rounds_env ? std::atoi(rounds_env) : 3;
    TempDir dir("keel-restore-bench");
    // One lone group's snapshot, archived under every group id.
    std::string snapshot;
    {
        HostOptions ho;
        ho.data_dir = dir.sub("source");
        ho.wal_direct_io = false;
        auto host = Host::open(ho);
        REQUIRE(host.ok());
        auto group =
            (*host)->open_group(1, lone_group_options(), std::make_shared<RecordingStateMachine>());
        REQUIRE(group.ok());
        REQUIRE(eventually([&] { return (*group)->status().role == Role::leader; }));
        for (int i = 0; i < 10; ++i)
            REQUIRE((*group)->propose("k" + std::to_string(i)).get().status.ok());
        REQUIRE((*group)->snapshot_now().get().ok());
        snapshot = dir.sub("one.snap");
        save_latest_snapshot(**group, snapshot);
    }
    const std::string archive = dir.sub("many.keel");
    {
        auto writer = BackupArchiveWriter::create(archive, count);
        REQUIRE(writer.ok());
        for (GroupId g = 1; g <= count; ++g) REQUIRE((*writer)->add_group(g, snapshot).ok());
        REQUIRE((*writer)->finish().ok());
    }
    using Clock = std::chrono::steady_clock;
    auto seconds = [](Clock::time_point from) {
        return std::chrono::duration<double>(Clock::now() - from).count();
    };
    int run = 0;
    for (int round = 0; round < rounds; ++round) {
        for (int v = 0; v < 2; ++v) {
            const bool seeded = (round + v) % 2 == 0;
            const std::string data_dir = dir.sub("r" + std::to_string(run++));
            HostRestoreOptions r;
            r.node = lone_group_options();
            r.node.data_dir = data_dir;
            auto start = Clock::now();
            REQUIRE(restore_host_data_dir(r, archive).ok());
            const double restore_s = seconds(start);
            if (!seeded) std::filesystem::remove_all(data_dir + "/wal");
            HostOptions ho;
            ho.data_dir = data_dir;
            start = Clock::now();
            auto host = Host::open(ho);
            REQUIRE(host.ok());
            std::vector<std::unique_ptr<Node>> groups;
            for (GroupId g = 1; g <= count; ++g) {
                auto group = (*host)->open_group(g, lone_group_options(),
                                                 std::make_shared<RecordingStateMachine>());
                REQUIRE(group.ok());
                groups.push_back(std::move(group.value()));
            }
            const double open_s = seconds(start);
            groups.clear();
            host->reset();
            std::printf(
                "{\"bench\":\"host_restore\",\"groups\":%zu,\"wal\":\"%s\",\"restore_s\":%.3f,"
                "\"open_s\":%.3f}\n",
                count, seeded ? "seeded" : "empty", restore_s, open_s);
            std::fflush(stdout);
            std::filesystem::remove_all(data_dir);
        }
    }
}
