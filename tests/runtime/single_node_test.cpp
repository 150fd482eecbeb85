// Single-node mode end to end: propose -> durable -> committed -> applied ->
// answered, restart from log and snapshot, backpressure, and the mode
// detector's promise that a lone node arms no timer.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "runtime/single_group_node.hpp"
#include "test_state_machine.hpp"

using namespace keel;
using keel::test::RecordingStateMachine;
using keel::test::TempDir;

// keel::Node::open's node hands a batch of proposals to its group whole
// (Replica::propose_batch_async), not one proposal at a time through
// Node's default: raftd's proposal batcher relies on it.  Lookup finds the
// forwarding override in ReplicaNode; with Node's default it would find
// Node's (a merge once dropped the override).
static_assert(std::is_same_v<decltype(&runtime::SingleGroupNode::propose_batch_async),
                             void (runtime::ReplicaNode::*)(std::vector<Node::Proposal>)>);

namespace {

// "prefix<n>", built by appending: GCC 12 warns falsely (-Wrestrict) on
// "literal" + std::string once inlined.
std::string tag(const char* prefix, std::uint64_t n) {
    std::string s(prefix);
    s.append(std::to_string(n));
    return s;
}

NodeOptions single_options(const std::string& dir) {
    NodeOptions o;
    o.id = 1;
    o.data_dir = dir;
    o.snapshot_every_entries = 0;
    return o;
}

std::unique_ptr<Node> open_node(const NodeOptions& o, std::shared_ptr<StateMachine> sm) {
    auto node = Node::open(o, std::move(sm));
    INFO(node.status().to_string());
    REQUIRE(node.ok());
    return std::move(node.value());
}

}  // namespace

TEST_CASE("a single node applies proposals in order and returns the state machine's result") {
    TempDir dir;
    auto sm = std::make_shared<RecordingStateMachine>();
    auto node = open_node(single_options(dir.path()), sm);
    std::uint64_t last = 0;
    for (int i = 0; i < 100; ++i) {
        ProposeResult r = node->propose(tag("v", i)).get();
        REQUIRE(r.status.ok());
        REQUIRE(r.index > last);
        REQUIRE(r.result == tag("ok:", r.index));
        REQUIRE(sm->applied().at(r.index) == tag("v", i));
        last = r.index;
    }
    NodeStatus st = node->status();
    CHECK(st.mode == Mode::single);
    CHECK(st.role == Role::leader);
    CHECK(st.leader_id == 1);
    CHECK(st.commit_index >= last);
    CHECK(st.applied_index >= last);
    CHECK(st.proposals == 100);
    CHECK(st.commit_latency.count == 100);
    CHECK(st.wal.fsyncs > 0);
    CHECK(st.members.size() == 1);
    CHECK(sm->duplicate_applies() == 0);
    // Applied by the apply thread, or inline by the WAL flusher; nowhere else.
    for (const std::string& thread : sm->apply_threads())
        CHECK((thread == "keel-apply" || thread == "keel-wal-flush"));
}

TEST_CASE("propose_batch_async completes each of its proposals, in order") {
    TempDir dir;
    auto sm = std::make_shared<RecordingStateMachine>();
    auto node = open_node(single_options(dir.path()), sm);
    REQUIRE(node->propose("first").get().status.ok());
    const NodeStatus before = node->status();
    constexpr int kBatch = 50;
    std::vector<std::promise<ProposeResult>> done(kBatch);
    std::vector<Node::Proposal> batch;
    for (int i = 0; i < kBatch; ++i)
        batch.push_back({tag("b", i), [&done, i](ProposeResult r) { done[i].set_value(r); }});
    node->propose_batch_async(std::move(batch));
    std::uint64_t last = before.last_index;
    for (int i = 0; i < kBatch; ++i) {
        ProposeResult r = done[i].get_future().get();
        REQUIRE(r.status.ok());
        CHECK(r.index == last + 1);  // in order
        CHECK(sm->applied().at(r.index) == tag("b", i));
        last = r.index;
    }
    const NodeStatus after = node->status();
    CHECK(after.wal.records == before.wal.records + kBatch);
    CHECK(after.proposals == before.proposals + kBatch);
}

TEST_CASE("with inline_apply off, a single node applies on its apply thread only") {
    TempDir dir;
    auto sm = std::make_shared<RecordingStateMachine>();
    NodeOptions o = single_options(dir.path());
    o.inline_apply = false;
    auto node = open_node(o, sm);
    for (int i = 0; i < 100; ++i) REQUIRE(node->propose(tag("v", i)).get().status.ok());
    CHECK(sm->apply_threads() == std::set<std::string>{"keel-apply"});
}

TEST_CASE("a lone node arms no timer: zero timer wakeups across many proposals") {
    TempDir dir;
    auto sm = std::make_shared<RecordingStateMachine>();
    auto node = open_node(single_options(dir.path()), sm);
    std::vector<std::future<ProposeResult>> futures;
    for (int i = 0; i < 2000; ++i) futures.push_back(node->propose(std::string(100, 'x')));
    for (auto& f : futures) REQUIRE(f.get().status.ok());
    REQUIRE(node->read_index(true).get().status.ok());
    NodeStatus st = node->status();
    CHECK(st.timer_wakeups == 0);
    CHECK(st.mode == Mode::single);
    // Group commit: many records share an fsync.
    CHECK(st.wal.records_per_fsync > 1.0);
}

TEST_CASE("restart re-applies every acknowledged entry to a fresh state machine") {
    TempDir dir;
    std::map<std::uint64_t, std::string> acked;
    {
        auto node =
            open_node(single_options(dir.path()), std::make_shared<RecordingStateMachine>());
        for (int i = 0; i < 50; ++i) {
            ProposeResult r = node->propose(tag("a", i)).get();
            REQUIRE(r.status.ok());
            acked[r.index] = tag("a", i);
        }
        node->stop();
    }
    auto sm = std::make_shared<RecordingStateMachine>();
    auto node = open_node(single_options(dir.path()), sm);
    ReadResult rr = node->read_index(true).get();
    REQUIRE(rr.status.ok());
    auto applied = sm->applied();
    for (const auto& [index, data] : acked) REQUIRE(applied.at(index) == data);
    // And the node keeps going after the old entries.
    ProposeResult r = node->propose("after").get();
    REQUIRE(r.status.ok());
    CHECK(r.index > acked.rbegin()->first);
    CHECK(sm->duplicate_applies() == 0);
}

TEST_CASE("restart restores the snapshot then applies the log after it") {
    TempDir dir;
    std::map<std::uint64_t, std::string> acked;
    NodeOptions o = single_options(dir.path());
    o.snapshot_every_entries = 16;
    {
        auto node = open_node(o, std::make_shared<RecordingStateMachine>());
        for (int i = 0; i < 40; ++i) {
            ProposeResult r = node->propose(tag("s", i)).get();
            REQUIRE(r.status.ok());
            acked[r.index] = tag("s", i);
        }
        REQUIRE(node->snapshot_now().get().ok());
        for (int i = 40; i < 45; ++i) {
            ProposeResult r = node->propose(tag("s", i)).get();
            REQUIRE(r.status.ok());
            acked[r.index] = tag("s", i);
        }
        CHECK(node->status().snapshot_index >= 40);
        node->stop();
    }
    auto sm = std::make_shared<RecordingStateMachine>();
    auto node = open_node(o, sm);
    CHECK(sm->restores() == 1);
    CHECK(node->status().snapshot_index >= 40);
    REQUIRE(node->read_index(true).get().status.ok());
    auto applied = sm->applied();
    for (const auto& [index, data] : acked) REQUIRE(applied.at(index) == data);
}

TEST_CASE("snapshots reclaim the WAL's segment files behind the older kept one, only whole files") {
    TempDir dir;
    NodeOptions o = single_options(dir.path());
    o.wal_segment_bytes = 64 * 1024;
    o.snapshot_every_entries = 0;  // only snapshot_now()
    auto node = open_node(o, std::make_shared<RecordingStateMachine>());
    const std::string value(500, 'w');
    std::vector<std::future<ProposeResult>> writes;
    for (int i = 0; i < 1000; ++i) writes.push_back(node->propose(value));
    for (auto& w : writes) REQUIRE(w.get().status.ok());
    const std::uint64_t before = node->status().wal.segments;
    REQUIRE(before >= 6);  // ~500 KB of records in 64 KiB segments
    // The log is compacted only up to the snapshot before the newest, the
    // fallback should the newest be damaged: the first one deletes nothing.
    REQUIRE(node->snapshot_now().get().ok());
    CHECK(node->status().wal.segments == before);
    // The second compacts behind the first (its future completes once the
    // log is compacted).
    REQUIRE(node->propose("between").get().status.ok());
    REQUIRE(node->snapshot_now().get().ok());
    CHECK(node->status().wal.segments <= 2);
    // A snapshot that covers no whole older segment deletes nothing (and
    // writes no metadata): the active segment stays.
    REQUIRE(node->propose("one more").get().status.ok());
    REQUIRE(node->snapshot_now().get().ok());
    CHECK(node->status().wal.segments >= 1);
    node.reset();  // stop, and close the WAL
    // Everything is still there after a restart from snapshot + log.
    auto sm = std::make_shared<RecordingStateMachine>();
    auto again = open_node(o, sm);
    REQUIRE(again->read_index(true).get().status.ok());
    CHECK(again->status().applied_index >= 1002);
}

TEST_CASE("read_index(wait_applied) reflects every acknowledged write") {
    TempDir dir;
    auto sm = std::make_shared<RecordingStateMachine>();
    auto node = open_node(single_options(dir.path()), sm);
    std::vector<std::future<ProposeResult>> futures;
    for (int i = 0; i < 64; ++i) futures.push_back(node->propose(tag("r", i)));
    std::uint64_t max_index = 0;
    for (auto& f : futures) max_index = std::max(max_index, f.get().index);
    ReadResult rr = node->read_index(true).get();
    REQUIRE(rr.status.ok());
    CHECK(rr.read_index >= max_index);
    CHECK(sm->last_index() >= max_index);
}

TEST_CASE("callbacks may call back into the node: proposals and reads from inside callbacks") {
    // Read callbacks run under the core lock, proposal callbacks on the
    // apply thread: calls made from either must neither deadlock nor be lost.
    TempDir dir;
    auto sm = std::make_shared<RecordingStateMachine>();
    auto node = open_node(single_options(dir.path()), sm);
    constexpr int chain = 200;
    std::promise<std::uint64_t> finished;
    std::function<void(int)> step = [&](int left) {
        node->read_index_async(true, [&, left](ReadResult rr) {
            REQUIRE(rr.status.ok());
            node->propose_async(tag("c", left), [&, left](ProposeResult pr) {
                REQUIRE(pr.status.ok());
                if (left == 0) {
                    finished.set_value(pr.index);
                } else {
                    step(left - 1);
                }
            });
        });
    };
    step(chain);
    const std::uint64_t last = finished.get_future().get();
    CHECK(sm->applied().at(last) == "c0");
    int seen = 0;
    for (const auto& [index, data] : sm->applied())
        if (data.rfind("c", 0) == 0) ++seen;
    CHECK(seen == chain + 1);
}

TEST_CASE("backpressure: past max_pending_proposals a proposal answers busy at once") {
    TempDir dir;
    NodeOptions o = single_options(dir.path());
    o.max_pending_proposals = 4;
    auto node = open_node(o, std::make_shared<RecordingStateMachine>());
    std::atomic<int> ok{0}, busy{0}, other{0};
    std::atomic<int> done{0};
    std::promise<void> all_done;
    constexpr int n = 2000;
    for (int i = 0; i < n; ++i) {
        node->propose_async("b", [&](ProposeResult r) {
            if (r.status.ok())
                ok++;
            else if (r.status.code() == ErrorCode::busy)
                busy++;
            else
                other++;
            if (++done == n) all_done.set_value();
        });
    }
    all_done.get_future().wait();
    CHECK(ok > 0);
    CHECK(busy > 0);
    CHECK(other == 0);
}

TEST_CASE("an entry larger than max_entry_bytes is refused with too_large") {
    TempDir dir;
    NodeOptions o = single_options(dir.path());
    o.max_entry_bytes = 1024;
    auto node = open_node(o, std::make_shared<RecordingStateMachine>());
    CHECK(node->propose(std::string(1025, 'x')).get().status.code() == ErrorCode::too_large);
    CHECK(node->propose(std::string(1024, 'x')).get().status.ok());
}

TEST_CASE("after stop, calls fail with aborted") {
    TempDir dir;
    auto node = open_node(single_options(dir.path()), std::make_shared<RecordingStateMachine>());
    REQUIRE(node->propose("x").get().status.ok());
    node->stop();
    node->stop();  // idempotent
    CHECK(node->propose("y").get().status.code() == ErrorCode::aborted);
    CHECK(node->read_index().get().status.code() == ErrorCode::aborted);
}

TEST_CASE("open fails cleanly (no hang, no leak) when the raft port is taken") {
    TempDir dir;
    // Take a port by listening on it.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    NodeOptions o = single_options(dir.path());
    o.listen_address = tag("127.0.0.1:", ntohs(a.sin_port));
    auto node = Node::open(o, std::make_shared<RecordingStateMachine>());
    CHECK_FALSE(node.ok());
    ::close(fd);
}

TEST_CASE("status() read concurrently never strands a proposal") {
    // A proposer that finds the core lock busy leaves its proposal in the
    // inbox for the lock's holder to take in after letting go.  status()
    // once held that lock without doing so: in single mode, where nothing
    // else runs the core, a proposal arriving during a status() read then
    // waited forever.
    TempDir dir;
    auto node = open_node(single_options(dir.path()), std::make_shared<RecordingStateMachine>());
    std::atomic<bool> done{false};
    std::thread reader([&] {
        while (!done.load()) (void)node->status();
    });
    int stranded = 0;
    for (int i = 0; i < 3000 && stranded == 0; ++i) {
        auto f = node->propose(tag("s", i));
        if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
            stranded = i + 1;
            break;
        }
        REQUIRE(f.get().status.ok());
    }
    done = true;
    reader.join();
    INFO("proposal " << stranded << " never answered");
    CHECK(stranded == 0);
    // A stranded proposal is answered by the next one's settle (or at stop).
    REQUIRE(node->propose("after").get().status.ok());
}

TEST_CASE("a closed loop of 256 proposers: each proposal answered once, applied once, in order") {
    // Many proposers keep a WAL batch queued behind the one being synced:
    // the flusher then hands the commit to the apply thread (replica.cpp,
    // on_wal_batch_done), and the answers come from there.
    TempDir dir;
    auto sm = std::make_shared<RecordingStateMachine>();
    auto node = open_node(single_options(dir.path()), sm);
    constexpr int kProposers = 256;
    constexpr int kRounds = 20;
    std::atomic<int> failures{0};
    std::atomic<int> answered{0};
    std::promise<void> all_done;
    std::function<void(int, int)> propose = [&](int proposer, int round) {
        std::string data = tag("p", static_cast<std::uint64_t>(proposer));
        data += '-';
        data += std::to_string(round);
        node->propose_async(std::move(data), [&, proposer, round](ProposeResult r) {
            if (!r.status.ok()) failures.fetch_add(1);
            if (answered.fetch_add(1) + 1 == kProposers * kRounds) all_done.set_value();
            if (round + 1 < kRounds) propose(proposer, round + 1);
        });
    };
    for (int p = 0; p < kProposers; ++p) propose(p, 0);
    all_done.get_future().wait();
    CHECK(failures.load() == 0);
    CHECK(sm->duplicate_applies() == 0);
    // Each proposer's entries were applied in its own order.
    std::vector<int> next_round(kProposers, 0);
    int applied = 0;
    for (const auto& [index, data] : sm->applied()) {
        if (data.empty() || data[0] != 'p') continue;
        const auto dash = data.find('-');
        const int proposer = std::stoi(data.substr(1, dash - 1));
        const int round = std::stoi(data.substr(dash + 1));
        CHECK(round == next_round.at(static_cast<std::size_t>(proposer)));
        next_round.at(static_cast<std::size_t>(proposer)) = round + 1;
        ++applied;
    }
    CHECK(applied == kProposers * kRounds);
    node->stop();
}

TEST_CASE(
    "member metadata past its limit is refused with invalid_argument, at open and when adding") {
    // The member context (address + metadata) must fit the core's 4 KiB
    // (raft::kMaxContextBytes); the runtime once let 64 KiB of metadata through
    // to a core that cannot encode it.
    TempDir dir;
    NodeOptions o = single_options(dir.path());
    MemberSpec self{1, "127.0.0.1:1", std::string(4000, 'm'), true};
    o.initial_members = {self};
    auto refused = Node::open(o, std::make_shared<RecordingStateMachine>());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().code() == ErrorCode::invalid_argument);

    self.metadata.assign(3831, 'm');  // the limit
    o.initial_members = {self};
    auto node = open_node(o, std::make_shared<RecordingStateMachine>());
    auto added = node->add_member(MemberSpec{2, "127.0.0.1:2", std::string(3832, 'm'), false});
    CHECK(added.get().code() == ErrorCode::invalid_argument);
}
