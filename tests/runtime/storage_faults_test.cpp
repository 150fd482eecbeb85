// The fault matrix of a node's storage, each fault with its expected outcome:
//  - while running (a fault-injecting FileSystem under the WAL and the
//    snapshots): a failed fdatasync is fail-stop, visible in
//    NodeStatus::failure and NodeOptions::on_failure, and a restart has
//    every acknowledged write; a full disk raises the no_space alarm,
//    refuses writes with no_space, serves reads, and clears by itself once
//    space is back, with nothing lost;
//  - at start-up (damaged files in the data dir): a damaged newest snapshot
//    is skipped for the one before it, a damaged metadata file or a log
//    compacted past every intact snapshot is a clear error;
//  - a crash at every step of installing a snapshot from a leader recovers
//    to the state before or after it.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>

#include "../common/fault_fs.hpp"
#include "cluster_support.hpp"
#include "runtime/bootstrap.hpp"
#include "runtime/replica.hpp"

using namespace keel;
using keel::test::copy_dir;
using keel::test::eventually;
using keel::test::fail_on;
using keel::test::FaultFs;
using keel::test::RecordingStateMachine;
using keel::test::TempDir;

namespace {

std::string tag(const char* prefix, std::uint64_t n) {
    std::string s(prefix);
    s.append(std::to_string(n));
    return s;
}

NodeOptions node_options(const std::string& dir) {
    NodeOptions o;
    o.id = 1;
    o.data_dir = dir;
    o.snapshot_every_entries = 0;     // snapshots on request only
    o.wal_segment_bytes = 64 * 1024;  // rolls (and segment preparations) come quickly
    o.logger = [](LogLevel level, const std::string& message) {
        if (level == LogLevel::warn || level == LogLevel::error)
            std::fprintf(stderr, "keel: %s\n", message.c_str());
        keel::test::ProgressSignal::instance().notify();
    };
    return o;
}

// One node on a FaultFs, the writes it acknowledged, its failure reports.
struct Fixture {
    TempDir dir;
    FaultFs fs;
    std::shared_ptr<RecordingStateMachine> sm;
    std::unique_ptr<Node> node;
    std::map<std::uint64_t, std::string> acked;
    std::atomic<int> failures{0};
    std::uint64_t next = 0;

    NodeOptions options() {
        NodeOptions o = node_options(dir.path());
        o.on_failure = [this](const Status&) {
            failures.fetch_add(1);
            keel::test::ProgressSignal::instance().notify();
        };
        return o;
    }
    void open() {
        sm = std::make_shared<RecordingStateMachine>();
        auto opened = runtime::Replica::open(options(), sm, &fs);
        INFO(opened.status().to_string());
        REQUIRE(opened.ok());
        node = std::move(opened.value());
    }
    void close() { node.reset(); }
    ProposeResult put() {
        const std::string data = tag("v", next++) + std::string(300, 'x');
        ProposeResult r = node->propose(data).get();
        if (r.status.ok()) acked[r.index] = data;
        return r;
    }
    // n writes in flight at once (they share fsyncs), all acknowledged.
    void put_ok(int n) {
        std::vector<std::pair<std::string, std::future<ProposeResult>>> writes;
        for (int i = 0; i < n; ++i) {
            std::string data = tag("v", next++) + std::string(300, 'x');
            auto f = node->propose(data);
            writes.emplace_back(std::move(data), std::move(f));
        }
        for (auto& [data, f] : writes) {
            ProposeResult r = f.get();
            REQUIRE(r.status.ok());
            acked[r.index] = data;
        }
    }
    // Writes accepted before the no_space alarm that the WAL holds until
    // space is back (put_until_refused); complete_held() collects them.
    std::vector<std::pair<std::string, std::future<ProposeResult>>> held;
    void complete_held() {
        for (auto& [data, f] : held) {
            ProposeResult r = f.get();
            REQUIRE(r.status.ok());
            acked[r.index] = data;
        }
        held.clear();
    }
    bool alarmed() const {
        const auto alarms = node->status().alarms;
        return alarms == std::vector<std::string>{kAlarmNoSpace};
    }
    // Restarts on the plain POSIX file system with a fresh state machine and
    // checks that every acknowledged write is applied, at its index.
    void require_restart_has_every_acked_write() {
        close();
        sm = std::make_shared<RecordingStateMachine>();
        auto opened = Node::open(node_options(dir.path()), sm);
        INFO(opened.status().to_string());
        REQUIRE(opened.ok());
        node = std::move(opened.value());
        REQUIRE(node->read_index(true).get().status.ok());
        const auto applied = sm->applied();
        for (const auto& [index, data] : acked) {
            INFO("index " << index);
            REQUIRE(applied.count(index) == 1);
            REQUIRE(applied.at(index) == data);
        }
        CHECK(node->status().failure.empty());
        CHECK(node->status().alarms.empty());
    }
};

enum class Outcome {
    fail_stop,  // NodeStatus::failure names the file, on_failure once, writes fail
    no_space,   // the alarm, writes refused with no_space, reads served; then resumed
};

struct FaultCase {
    const char* name;
    // Injects the fault into a running node and runs what hits it.
    std::function<void(Fixture&)> hit;
    // Takes the fault away (no_space rows: space comes back).
    std::function<void(Fixture&)> lift;
    Outcome expected;
    const char* failure_names;  // fail_stop rows: part of NodeStatus::failure
};

// Proposes one write at a time until one is refused (the alarm went up on
// the way), at most `bound` writes.  A write accepted before the alarm may be
// the one that needs the next segment: the WAL holds it (and answers it) once
// space is back, so with the alarm up and the write unanswered, it is kept in
// f.held for check_no_space to collect after the lift.
void put_until_refused(Fixture& f, int bound) {
    for (int i = 0; i < bound; ++i) {
        std::string data = tag("v", f.next++) + std::string(300, 'x');
        std::future<ProposeResult> answer = f.node->propose(data);
        auto answered = [&] {
            return answer.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
        };
        REQUIRE(eventually([&] { return answered() || f.alarmed(); }));
        if (!answered()) {
            f.held.emplace_back(std::move(data), std::move(answer));
            return;
        }
        ProposeResult r = answer.get();
        if (!r.status.ok()) {
            REQUIRE(r.status.code() == ErrorCode::no_space);
            return;
        }
        f.acked[r.index] = data;
    }
    FAIL("no write was refused");
}

const std::vector<FaultCase>& fault_cases() {
    static const std::vector<FaultCase> cases = {
        {"EIO on a WAL segment's fdatasync",
         [](Fixture& f) {
             f.fs.set_inject(fail_on("datasync", ".wal", ErrorCode::io_error, "injected EIO"));
             ProposeResult r = f.put();
             CHECK(r.status.code() == ErrorCode::failed);
         },
         nullptr, Outcome::fail_stop, ".wal"},
        {"EIO on the metadata file's fdatasync (the term saved at start-up)",
         [](Fixture& f) {
             f.close();
             f.fs.set_inject(fail_on("datasync", "meta.tmp", ErrorCode::io_error, "injected EIO"));
             f.open();
         },
         nullptr, Outcome::fail_stop, "meta.tmp"},
        {"EIO on a snapshot file's fdatasync",
         [](Fixture& f) {
             f.fs.set_inject(
                 fail_on("datasync", "snapshots/incoming-", ErrorCode::io_error, "injected EIO"));
             Status s = f.node->snapshot_now().get();
             CHECK_FALSE(s.ok());
         },
         nullptr, Outcome::fail_stop, "snapshots/incoming-"},
        {"EIO renaming a snapshot file into place (wal::install_file)",
         [](Fixture& f) {
             f.fs.set_inject(
                 fail_on("rename", "snapshots/incoming-", ErrorCode::io_error, "injected EIO"));
             Status s = f.node->snapshot_now().get();
             CHECK_FALSE(s.ok());
         },
         nullptr, Outcome::fail_stop, "rename"},
        {"EIO on the snapshot directory's fsync after the rename (wal::install_file)",
         [](Fixture& f) {
             f.fs.set_inject(
                 fail_on("sync_dir", "/snapshots", ErrorCode::io_error, "injected EIO"));
             Status s = f.node->snapshot_now().get();
             CHECK_FALSE(s.ok());
         },
         nullptr, Outcome::fail_stop, "sync_dir"},
        {"ENOSPC preparing the next WAL segment",
         [](Fixture& f) {
             f.fs.full = true;  // the active segment still has room: writes go on until then
             put_until_refused(f, 1000);
         },
         [](Fixture& f) { f.fs.full = false; }, Outcome::no_space, nullptr},
        {"ENOSPC writing a snapshot",
         [](Fixture& f) {
             f.fs.full = true;
             Status s = f.node->snapshot_now().get();
             CHECK(s.code() == ErrorCode::no_space);
         },
         [](Fixture& f) { f.fs.full = false; }, Outcome::no_space, nullptr},
        {"ENOSPC writing the term and vote (the metadata file, at start-up)",
         [](Fixture& f) {
             f.close();
             f.fs.full = true;
             f.open();  // the lone voter's new term cannot be saved
         },
         [](Fixture& f) { f.fs.full = false; }, Outcome::no_space, nullptr},
        {"ENOSPC at the metadata update of a compaction",
         [](Fixture& f) {
             f.put_ok(300);  // several 64 KiB segments
             REQUIRE(f.node->snapshot_now().get().ok());
             f.put_ok(10);
             f.fs.set_inject(fail_on("write", "meta.tmp", ErrorCode::no_space, "injected ENOSPC"));
             // The second snapshot is written; compacting behind the first is not.
             REQUIRE(f.node->snapshot_now().get().ok());
         },
         [](Fixture& f) { f.fs.set_inject(nullptr); }, Outcome::no_space, nullptr},
    };
    return cases;
}

void check_fail_stop(Fixture& f, const FaultCase& c) {
    REQUIRE(eventually([&] { return !f.node->status().failure.empty(); }));
    const NodeStatus st = f.node->status();
    CHECK_THAT(st.failure, Catch::Contains(c.failure_names));
    CHECK(f.failures.load() == 1);
    ProposeResult r = f.node->propose("after the failure").get();
    CHECK_FALSE(r.status.ok());
    CHECK_FALSE(f.node->read_index(true).get().status.ok());
    f.fs.set_inject(nullptr);
    f.require_restart_has_every_acked_write();
}

void check_no_space(Fixture& f, const FaultCase& c) {
    REQUIRE(eventually([&] { return f.alarmed(); }));
    CHECK(f.node->status().failure.empty());
    CHECK(f.failures.load() == 0);
    ProposeResult refused = f.node->propose("refused").get();
    CHECK(refused.status.code() == ErrorCode::no_space);
    ReadResult read = f.node->read_index(true).get();
    CHECK(read.status.ok());
    c.lift(f);  // space is back: no restart, the node resumes by itself
    REQUIRE(eventually([&] { return f.node->status().alarms.empty(); }));
    f.complete_held();
    f.put_ok(5);
    CHECK(f.node->status().failure.empty());
    f.require_restart_has_every_acked_write();
}

}  // namespace

TEST_CASE("storage faults while running: each has its expected outcome") {
    for (const FaultCase& c : fault_cases()) {
        SECTION(c.name) {
            Fixture f;
            f.open();
            f.put_ok(20);
            c.hit(f);
            if (c.expected == Outcome::fail_stop) {
                check_fail_stop(f, c);
            } else {
                check_no_space(f, c);
            }
        }
    }
}

// ---- damaged files at start-up ---------------------------------------------

namespace {

// A data dir with writes 1..n acknowledged, two snapshots (the second
// compacting the log behind the first) and more writes after them.
struct Stored {
    TempDir dir;
    std::map<std::uint64_t, std::string> acked;
    std::vector<std::string> snapshots;  // paths, oldest first

    Stored() {
        auto node = Node::open(node_options(dir.path()), std::make_shared<RecordingStateMachine>());
        REQUIRE(node.ok());
        auto put = [&](int from, int to) {  // in flight together
            std::vector<std::pair<std::string, std::future<ProposeResult>>> writes;
            for (int i = from; i < to; ++i) {
                std::string data = tag("s", i) + std::string(300, 'y');
                auto f = node.value()->propose(data);
                writes.emplace_back(std::move(data), std::move(f));
            }
            for (auto& [data, f] : writes) {
                ProposeResult r = f.get();
                REQUIRE(r.status.ok());
                acked[r.index] = data;
            }
        };
        put(0, 400);
        REQUIRE(node.value()->snapshot_now().get().ok());
        put(400, 800);
        REQUIRE(node.value()->snapshot_now().get().ok());
        put(800, 850);
        node.value()->stop();
        for (const auto& e : std::filesystem::directory_iterator(dir.sub("snapshots")))
            if (e.path().extension() == ".snap") snapshots.push_back(e.path().string());
        std::sort(snapshots.begin(), snapshots.end());
        REQUIRE(snapshots.size() == 2);
    }
};

void flip_byte(const std::string& path, std::uint64_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x20);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(&c, 1);
}

void cut_tail(const std::string& path, std::uint64_t bytes) {
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - bytes);
}

struct StartCase {
    const char* name;
    std::function<void(Stored&)> damage;
    bool opens;              // true: starts, with every acknowledged write
    int restores;            // opens: snapshots restored (0: the whole log replayed)
    const char* error_part;  // !opens: part of the error message
};

}  // namespace

TEST_CASE("damaged files at start-up: each has its expected outcome") {
    const std::vector<StartCase> cases = {
        {"the newest snapshot torn (a bad trailer): the one before it is used",
         [](Stored& s) { cut_tail(s.snapshots[1], 7); }, true, 1, nullptr},
        {"a flipped byte in the newest snapshot's data: the one before it is used",
         [](Stored& s) { flip_byte(s.snapshots[1], 100); }, true, 1, nullptr},
        {"both snapshots damaged, the log compacted behind the first: a clear error",
         [](Stored& s) {
             flip_byte(s.snapshots[0], 10);
             cut_tail(s.snapshots[1], 1);
         },
         false, 0, "no intact snapshot"},
        {"a flipped byte in the metadata file: a clear error naming it",
         [](Stored& s) { flip_byte(s.dir.sub("wal/meta"), 30); }, false, 0, "wal/meta"},
        {"a torn metadata file: a clear error naming it",
         [](Stored& s) { cut_tail(s.dir.sub("wal/meta"), 5); }, false, 0, "wal/meta"},
    };
    for (const StartCase& c : cases) {
        SECTION(c.name) {
            Stored s;
            c.damage(s);
            auto sm = std::make_shared<RecordingStateMachine>();
            auto node = Node::open(node_options(s.dir.path()), sm);
            if (!c.opens) {
                REQUIRE_FALSE(node.ok());
                CHECK_THAT(node.status().message(), Catch::Contains(c.error_part));
                continue;
            }
            INFO(node.status().to_string());
            REQUIRE(node.ok());
            REQUIRE(node.value()->read_index(true).get().status.ok());
            CHECK(sm->restores() == c.restores);
            CHECK(node.value()->status().snapshots_damaged == 1);
            const auto applied = sm->applied();
            for (const auto& [index, data] : s.acked) {
                INFO("index " << index);
                REQUIRE(applied.count(index) == 1);
                REQUIRE(applied.at(index) == data);
            }
            // The damaged file is left for inspection.
            CHECK(std::filesystem::exists(s.snapshots[1]));
        }
    }
}

TEST_CASE("the only snapshot damaged, the log still whole: the log is replayed from index 1") {
    TempDir dir;
    std::map<std::uint64_t, std::string> acked;
    {
        auto node = Node::open(node_options(dir.path()), std::make_shared<RecordingStateMachine>());
        REQUIRE(node.ok());
        for (int i = 0; i < 50; ++i) {
            ProposeResult r = node.value()->propose(tag("o", i)).get();
            REQUIRE(r.status.ok());
            acked[r.index] = tag("o", i);
        }
        REQUIRE(node.value()->snapshot_now().get().ok());
    }
    std::vector<std::string> snaps;
    for (const auto& e : std::filesystem::directory_iterator(dir.sub("snapshots")))
        if (e.path().extension() == ".snap") snaps.push_back(e.path().string());
    REQUIRE(snaps.size() == 1);
    flip_byte(snaps[0], 3);
    auto sm = std::make_shared<RecordingStateMachine>();
    auto node = Node::open(node_options(dir.path()), sm);
    REQUIRE(node.ok());
    REQUIRE(node.value()->read_index(true).get().status.ok());
    CHECK(sm->restores() == 0);
    CHECK(node.value()->status().snapshots_damaged == 1);
    for (const auto& [index, data] : acked) REQUIRE(sm->applied().at(index) == data);
}

// ---- a crash at every step of installing a leader's snapshot ----------------

namespace {

// A snapshot file at (index, term) with configuration `config`, holding
// entries 1..index of RecordingStateMachine ("leader-<i>"), written by a
// store in `dir`.  Returns its path.
std::string leader_snapshot(const std::string& dir, raft::Index index, raft::Term term,
                            const raft::Configuration& config) {
    auto store = runtime::SnapshotStore::open(dir, *wal::default_file_system());
    REQUIRE(store.ok());
    auto sm = std::make_shared<RecordingStateMachine>();
    std::vector<CommittedEntry> entries;
    std::vector<std::string> data;
    for (raft::Index i = 1; i <= index; ++i) data.push_back(tag("leader-", i));
    for (raft::Index i = 1; i <= index; ++i) entries.push_back({i, term, data[i - 1]});
    std::vector<std::string> results(entries.size());
    sm->apply(entries, results);
    auto writer = (*store)->begin();
    REQUIRE(writer.ok());
    REQUIRE(sm->snapshot()(**writer).ok());
    raft::SnapshotMeta meta;
    meta.index = index;
    meta.term = term;
    meta.config = config;
    auto published = (*store)->publish(**writer, meta);
    REQUIRE(published.ok());
    return published->path;
}

}  // namespace

TEST_CASE(
    "a crash at every step of installing a snapshot from the leader recovers to before or after") {
    TempDir base;
    const std::string data_dir = base.sub("node");
    std::map<std::uint64_t, std::string> before;  // what the node holds before the install
    {
        auto node = Node::open(node_options(data_dir), std::make_shared<RecordingStateMachine>());
        REQUIRE(node.ok());
        auto put = [&](int from, int to) {  // in flight together
            std::vector<std::pair<std::string, std::future<ProposeResult>>> writes;
            for (int i = from; i < to; ++i) {
                std::string data = tag("own-", i) + std::string(300, 'z');
                auto f = node.value()->propose(data);
                writes.emplace_back(std::move(data), std::move(f));
            }
            for (auto& [data, f] : writes) {
                ProposeResult r = f.get();
                REQUIRE(r.status.ok());
                before[r.index] = data;
            }
        };
        put(0, 100);
        REQUIRE(node.value()->snapshot_now().get().ok());
        put(100, 300);
    }
    const raft::Index snap_index = 1000;
    auto own = runtime::SnapshotStore::list(data_dir + "/snapshots", *wal::default_file_system());
    REQUIRE(own.ok());
    REQUIRE(own->valid.size() == 1);
    const std::string leader_file =
        leader_snapshot(base.sub("leader"), snap_index, 7, own->valid[0].meta.config);
    raft::SnapshotMeta meta;
    {
        auto verified = runtime::SnapshotStore::verify(*wal::default_file_system(), leader_file);
        REQUIRE(verified.ok());
        meta = verified->meta;
    }

    // The install as Replica::install_snapshot does it: the verified file is
    // adopted into snapshots/ (durable), then the log is reset after it.
    FaultFs fs;
    std::vector<std::string> crashes;
    {
        auto snapshots = runtime::SnapshotStore::open(data_dir + "/snapshots", fs);
        REQUIRE(snapshots.ok());
        wal::Options wo;
        wo.fs = &fs;
        wo.segment_bytes = 64 * 1024;
        auto log = runtime::LogStore::open(data_dir + "/wal", wo);
        REQUIRE(log.ok());
        const std::string staged = (*snapshots)->staging_dir() + "/from-leader.snap";
        // As the transport stages a stream: incoming/ made when first needed.
        std::filesystem::create_directories((*snapshots)->staging_dir());
        std::filesystem::copy_file(leader_file, staged);
        fs.set_before_mutation([&](const std::string&) {
            const std::string copy = base.sub("crash" + std::to_string(crashes.size()));
            copy_dir(data_dir, copy);
            crashes.push_back(copy);
        });
        auto adopted = (*snapshots)->adopt(staged, meta);
        REQUIRE(adopted.ok());
        std::promise<Status> reset;
        REQUIRE((*log)
                    ->reset_after_snapshot(meta.index, meta.term,
                                           [&](Status s) { reset.set_value(std::move(s)); })
                    .ok());
        REQUIRE(reset.get_future().get().ok());
        log->reset();
        fs.set_before_mutation(nullptr);
    }
    crashes.push_back(data_dir);  // and after the last step
    REQUIRE(crashes.size() >= 6);

    int saw_before = 0, saw_after = 0;
    for (const std::string& copy : crashes) {
        INFO(copy);
        auto sm = std::make_shared<RecordingStateMachine>();
        auto node = Node::open(node_options(copy), sm);
        INFO(node.status().to_string());
        REQUIRE(node.ok());
        REQUIRE(node.value()->read_index(true).get().status.ok());
        const auto applied = sm->applied();
        if (applied.count(snap_index) != 0) {
            ++saw_after;
            CHECK(applied.size() == snap_index);
            CHECK(applied.at(1) == "leader-1");
            CHECK(node.value()->status().snapshot_index == snap_index);
        } else {
            ++saw_before;
            for (const auto& [index, data] : before) REQUIRE(applied.at(index) == data);
        }
        // Either way it goes on: a new write lands after what it holds.
        ProposeResult r = node.value()->propose("next").get();
        REQUIRE(r.status.ok());
        CHECK(r.index > (applied.count(snap_index) != 0 ? snap_index : before.rbegin()->first));
    }
    CHECK(saw_before > 0);
    CHECK(saw_after > 0);
}

TEST_CASE("a node's data dir is readable by its user only: directories 0700, files 0600") {
    TempDir base;
    const std::string dir = base.sub("data/node");  // keel makes both levels
    {
        auto node = Node::open(node_options(dir), std::make_shared<RecordingStateMachine>());
        REQUIRE(node.ok());
        REQUIRE(node.value()->propose("x").get().status.ok());
        REQUIRE(node.value()->snapshot_now().get().ok());
    }
    int files = 0;
    auto mode = [](const std::filesystem::path& p) {
        return std::filesystem::status(p).permissions() & std::filesystem::perms::all;
    };
    CHECK(mode(base.sub("data")) == std::filesystem::perms::owner_all);
    for (const auto& e : std::filesystem::recursive_directory_iterator(base.sub("data"))) {
        INFO(e.path());
        if (e.is_directory()) {
            CHECK(mode(e.path()) == std::filesystem::perms::owner_all);
        } else {
            CHECK(mode(e.path()) ==
                  (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
            ++files;
        }
    }
    CHECK(files >= 4);  // a segment, meta, LOCK, a snapshot
}
