// Host::open_groups: many groups opened in one call.  Every group of a
// batch opens and a restart reopens it with what it wrote; a group that
// fails is reported alone, the others open, and it leaves nothing that
// trips its next open (in the same Host or after a restart); a group named
// twice is refused the second time; the new groups' directories are
// durable before the WAL holds any record.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "../common/fault_fs.hpp"
#include "runtime/host.hpp"
#include "test_state_machine.hpp"

using namespace keel;
using keel::test::FaultFs;
using keel::test::RecordingStateMachine;
using keel::test::TempDir;

namespace {

constexpr GroupId kGroups = 40;

// A lone voter on the Host's WAL, in the Host's data_dir/groups/<g>.
NodeOptions lone_voter() {
    NodeOptions o;
    o.id = 1;
    o.snapshot_every_entries = 0;
    o.wal_direct_io = false;
    return o;
}

HostOptions host_options(const std::string& dir) {
    HostOptions h;
    h.data_dir = dir;
    h.wal_direct_io = false;
    h.wal_segment_bytes = 256 * 1024;
    return h;
}

struct Batch {
    std::vector<GroupToOpen> groups;
    std::map<GroupId, std::shared_ptr<RecordingStateMachine>> sms;

    void add(GroupId g, NodeOptions o = lone_voter()) {
        auto sm = std::make_shared<RecordingStateMachine>();
        sms[g] = sm;
        groups.push_back(GroupToOpen{g, std::move(o), sm});
    }
};

Batch groups_from(GroupId first, GroupId end) {
    Batch b;
    for (GroupId g = first; g < end; ++g) b.add(g);
    return b;
}

std::string entry(GroupId g) {
    return "entry-of-" + std::to_string(g);
}

// Proposes one entry to the group; true once it is acknowledged.
bool write_one(Node& node, GroupId g) {
    return node.propose(entry(g)).get().status.ok();
}

bool holds_its_entry(const RecordingStateMachine& sm, GroupId g) {
    for (const auto& [index, data] : sm.applied())
        if (data == entry(g)) return true;
    return false;
}

std::unique_ptr<runtime::HostImpl> open_host(const std::string& dir, FaultFs* fs = nullptr) {
    auto host = runtime::HostImpl::open(host_options(dir), fs);
    REQUIRE(host.ok());
    return std::move(host.value());
}

}  // namespace

TEST_CASE("open_groups opens every group of a batch, and a restart reopens each with its entries",
          "[host][open_groups]") {
    TempDir dir;
    {
        auto host = open_host(dir.path());
        Batch batch = groups_from(1, kGroups + 1);
        auto opened = host->open_groups(std::move(batch.groups));
        REQUIRE(opened.size() == kGroups);
        for (GroupId g = 1; g <= kGroups; ++g) {
            INFO("group " << g);
            REQUIRE(opened[g - 1].ok());
            REQUIRE(write_one(*opened[g - 1].value(), g));
        }
        CHECK(host->status().groups == kGroups);
        opened.clear();
        CHECK(host->status().groups == 0);
    }
    auto host = open_host(dir.path());
    Batch batch = groups_from(1, kGroups + 1);
    auto sms = batch.sms;
    auto reopened = host->open_groups(std::move(batch.groups));
    for (GroupId g = 1; g <= kGroups; ++g) {
        INFO("group " << g);
        REQUIRE(reopened[g - 1].ok());
        REQUIRE(reopened[g - 1].value()->read_index(true).get().status.ok());
        CHECK(holds_its_entry(*sms.at(g), g));
    }
}

TEST_CASE(
    "a group that fails in a batch is reported alone and leaves nothing its next open trips on",
    "[host][open_groups]") {
    TempDir dir;
    FaultFs fs;
    // Group 7 cannot create its cluster id file; group 9's cannot be made
    // durable (its temp file stays behind).
    fs.set_inject([](const std::string& op, const std::string& path) {
        if (op == "create" && path.find("/groups/7/cluster_id") != std::string::npos)
            return Status(ErrorCode::io_error, "injected: create " + path);
        if (op == "datasync" && path.find("/groups/9/cluster_id") != std::string::npos)
            return Status(ErrorCode::io_error, "injected: fdatasync " + path);
        return Status();
    });
    {
        auto host = open_host(dir.path(), &fs);
        Batch batch = groups_from(1, 13);
        batch.add(3);  // named twice: the later entry is refused
        NodeOptions bad = lone_voter();
        bad.heartbeat_interval_ms = 0;  // refused before anything is written
        batch.add(13, bad);
        auto opened = host->open_groups(std::move(batch.groups));
        REQUIRE(opened.size() == 14);
        for (GroupId g = 1; g <= 12; ++g) {
            INFO("group " << g);
            if (g == 7 || g == 9) {
                REQUIRE_FALSE(opened[g - 1].ok());
                CHECK(opened[g - 1].status().code() == ErrorCode::io_error);
                continue;
            }
            REQUIRE(opened[g - 1].ok());
            REQUIRE(write_one(*opened[g - 1].value(), g));
        }
        REQUIRE_FALSE(opened[12].ok());
        CHECK(opened[12].status().code() == ErrorCode::busy);
        REQUIRE_FALSE(opened[13].ok());
        CHECK(opened[13].status().code() == ErrorCode::invalid_argument);
        CHECK(host->status().groups == 10);

        // The failed groups are not open: once the disk behaves they open
        // in the same Host, over what their failed opens left.
        fs.set_inject(nullptr);
        Batch again;
        again.add(7);
        again.add(9);
        again.add(13);
        auto retried = host->open_groups(std::move(again.groups));
        for (std::size_t i = 0; i < retried.size(); ++i) {
            INFO("retry " << i);
            REQUIRE(retried[i].ok());
        }
        REQUIRE(write_one(*retried[0].value(), 7));
        REQUIRE(write_one(*retried[1].value(), 9));
        opened.clear();
        retried.clear();
    }
    // After a restart every group reopens with its entry.
    auto host = open_host(dir.path(), &fs);
    Batch batch = groups_from(1, 14);
    auto sms = batch.sms;
    auto reopened = host->open_groups(std::move(batch.groups));
    for (GroupId g = 1; g <= 13; ++g) {
        INFO("group " << g);
        REQUIRE(reopened[g - 1].ok());
        REQUIRE(reopened[g - 1].value()->read_index(true).get().status.ok());
        if (g != 13) CHECK(holds_its_entry(*sms.at(g), g));
    }
}

TEST_CASE("open_groups makes the new groups' directories durable before the WAL holds a record",
          "[host][open_groups]") {
    TempDir dir;
    FaultFs fs;
    auto host = open_host(dir.path(), &fs);
    const std::string groups_dir = dir.path() + "/groups";
    std::mutex mu;
    bool groups_synced = false;
    bool wrote_before_sync = false;
    int group_files = 0;
    std::set<std::string> synced;
    fs.set_before_mutation([&](const std::string& what) {
        std::lock_guard lock(mu);
        if (what == "sync_dir " + groups_dir) groups_synced = true;
        if (what.rfind("sync_dir ", 0) == 0) synced.insert(what.substr(9));
        // A group's first write is its cluster id file, before any record
        // of it goes to the WAL.
        if (what.rfind("create " + groups_dir + "/", 0) == 0) {
            ++group_files;
            if (!groups_synced) wrote_before_sync = true;
        }
    });
    Batch batch = groups_from(1, kGroups + 1);
    auto opened = host->open_groups(std::move(batch.groups));
    for (auto& g : opened) REQUIRE(g.ok());
    fs.set_before_mutation(nullptr);
    CHECK(groups_synced);
    CHECK(group_files >= static_cast<int>(kGroups));
    CHECK_FALSE(wrote_before_sync);
    // The Host's data dir holds the new groups/ directory: synced too.
    CHECK(synced.count(dir.path()) == 1);
}
