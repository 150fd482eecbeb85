// Recovery (runtime/bootstrap.cpp) from the files a crash leaves in the
// middle of installing a leader's snapshot: the snapshot file published,
// the reset of the log after it not done.
#include <catch2/catch.hpp>

#include <future>

#include "runtime/bootstrap.hpp"
#include "test_state_machine.hpp"

using namespace keel;
using namespace keel::runtime;
using keel::test::RecordingStateMachine;
using keel::test::TempDir;

namespace {

raft::Entry entry(raft::Term term, raft::Index index) {
    std::string data = std::to_string(index);
    data += "e";
    return raft::Entry{term, index, raft::EntryType::normal, std::move(data)};
}

// Appends through the LogStore and waits until the WAL has them on disk.
void append_durably(LogStore& log, std::vector<raft::Entry> entries) {
    std::promise<Status> done;
    REQUIRE(log.append(entries, wal::Wal::Writer::flusher,
                       [&](Status s) { done.set_value(std::move(s)); })
                .ok());
    REQUIRE(done.get_future().get().ok());
}

void ignore_log(LogLevel, const std::string&) {}

NodeOptions options_for(const TempDir& dir) {
    NodeOptions o;
    o.id = 1;
    o.data_dir = dir.path();
    o.cluster_id = "0123456789abcdef0123456789abcdef";  // the files below hold a log
    return o;
}

}  // namespace

// Seed 53021 of `keel_sim --nodes 3` (the simulator's recovery mirrors this
// one): n2's log ended at 40 with an entry of an older term; it crashed right
// after publishing the leader's snapshot at 40/t7, before the reset.  The log
// then ended where the snapshot does, so recovery took the reset for done;
// the old record at 40 stayed, and every entry appended after it was void at
// the next start (the log holds the snapshot's index with another term):
// acknowledged entries lost.
TEST_CASE(
    "a crash between a leader's snapshot and the reset of the log loses nothing written "
    "after it") {
    TempDir dir;
    wal::Options wo;
    raft::Configuration config;
    config.members[1] = raft::MemberInfo{true, ""};
    {
        // The files as the crash left them: the WAL holds 1..5 of term 1 (a
        // log the snapshot replaces), the snapshot at 5 has term 2.
        auto log = LogStore::open(dir.path() + "/wal", wo);
        REQUIRE(log.ok());
        append_durably(*log.value(),
                       {entry(1, 1), entry(1, 2), entry(1, 3), entry(1, 4), entry(1, 5)});
        REQUIRE(log.value()->save_hard_state(raft::HardState{2, 0, 0}).ok());
        auto snapshots =
            SnapshotStore::open(dir.path() + "/snapshots", *wal::default_file_system());
        REQUIRE(snapshots.ok());
        auto writer = snapshots.value()->begin();
        REQUIRE(writer.ok());
        REQUIRE(snapshots.value()->publish(*writer.value(), raft::SnapshotMeta{5, 2, config}).ok());
    }
    {
        RecordingStateMachine sm;
        auto r = recover_or_bootstrap(options_for(dir), sm, wo, ignore_log);
        REQUIRE(r.ok());
        REQUIRE(r.value().state.snapshot);
        CHECK(r.value().state.snapshot->index == 5);
        CHECK(r.value().state.entries.empty());  // the old log is not the snapshot's
        // What the leader sends next, appended and acknowledged.
        append_durably(*r.value().log, {entry(2, 6), entry(2, 7)});
    }
    RecordingStateMachine sm;
    auto r = recover_or_bootstrap(options_for(dir), sm, wo, ignore_log);
    REQUIRE(r.ok());
    const std::vector<raft::Entry>& entries = r.value().state.entries;
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].index == 6);
    CHECK(entries[1] == entry(2, 7));
}
