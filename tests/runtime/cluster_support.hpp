// tests/runtime/cluster_support.hpp — several keel::Nodes in one process on
// loopback TCP (or a transport of the test's: transport_for), each with its
// own data dir and state machine.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../common/test_certs.hpp"
#include "runtime/single_group_node.hpp"
#include "test_state_machine.hpp"

namespace keel::test {

// A loopback port free now, below the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range; 32768-60999 by default) and never
// handed out before by this process.  A port the kernel picked for bind(0)
// is an ephemeral one: a member that binds it only later (one that joins
// after the others ran a while) could find it taken as the local port of a
// connection, this test's or a parallel test's, and fail to open.
inline std::uint16_t free_port() {
    static std::mutex mu;
    static std::set<std::uint16_t> handed_out;
    static std::mt19937 rng(std::random_device{}());
    std::lock_guard lock(mu);
    int ephemeral_low = 32768;
    if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
        if (std::fscanf(f, "%d", &ephemeral_low) != 1) ephemeral_low = 32768;
        std::fclose(f);
    }
    const int high = std::max(ephemeral_low, 1025 + 1000);  // exclusive
    const int low = std::max(1025, high - 12000);
    for (int attempt = 0; attempt < 10000; ++attempt) {
        const auto port = static_cast<std::uint16_t>(low + static_cast<int>(rng() % (high - low)));
        if (handed_out.count(port) != 0) continue;
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        KEEL_ASSERT(fd >= 0, "socket");
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(fd);
        if (!free) continue;
        handed_out.insert(port);
        return port;
    }
    KEEL_ASSERT(false, "a free loopback port below the ephemeral range");
    return 0;
}

inline std::string random_cluster_id() {
    std::random_device random;
    std::string hex;
    while (hex.size() < 32) hex += "0123456789abcdef"[random() % 16];
    return hex;
}

// Waits until `cond` holds (true) or a generous deadline passes (false).
// A condition wait, not a timing assertion: `cond` is re-checked whenever a
// node applies, restores or logs something (ProgressSignal), and at least
// every 5 ms for what no signal covers (a timer wakeup count, a status
// field); the deadline only turns a hang into a failure.
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::seconds deadline = std::chrono::seconds(30)) {
    ProgressSignal& progress = ProgressSignal::instance();
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < end) {
        const std::uint64_t seen = progress.changes();
        if (cond()) return true;
        progress.wait_for_change(seen, std::chrono::milliseconds(5));
    }
    return cond();
}

// The first of `ids` whose node (`node_of(id)`: a Node*, null for one not
// running) leads and answers a read barrier as leader; 0 if none does
// before eventually's deadline.
template <typename NodeOf>
NodeId confirmed_leader(const std::vector<NodeId>& ids, NodeOf node_of) {
    NodeId found = 0;
    eventually([&] {
        for (NodeId id : ids) {
            Node* n = node_of(id);
            if (n != nullptr && n->status().role == Role::leader &&
                n->read_index(false).get().status.ok()) {
                found = id;
                return true;
            }
        }
        return false;
    });
    return found;
}

// Proposes `data` through whoever `leader()` names (retrying not_leader,
// aborted, busy) until acknowledged, `attempts` times at most.
template <typename LeaderOf, typename NodeOf>
ProposeResult propose_through_leader(LeaderOf leader, NodeOf node_of, const std::string& data,
                                     int attempts) {
    ProposeResult r;
    r.status = Status(ErrorCode::timeout, "no leader acknowledged the proposal");
    for (int attempt = 0; attempt < attempts; ++attempt) {
        const NodeId l = leader();
        if (l == 0) continue;
        r = node_of(l)->propose(data).get();
        if (r.status.ok()) return r;
    }
    return r;
}

class TestCluster {
public:
    explicit TestCluster(std::size_t founders, std::size_t spares = 0) {
        for (NodeId id = 1; id <= founders + spares; ++id) {
            MemberSpec m;
            m.id = id;
            m.raft_address = "127.0.0.1:" + std::to_string(free_port());
            m.metadata = "node-" + std::to_string(id);
            specs_[id] = m;
            if (id <= founders) founders_.push_back(m);
        }
    }
    ~TestCluster() {
        for (auto& [id, n] : nodes_)
            if (n) n->stop();
    }

    NodeOptions options(NodeId id, bool join = false) const {
        NodeOptions o;
        o.id = id;
        o.data_dir = dir_.path() + "/node-" + std::to_string(id);
        o.listen_address = specs_.at(id).raft_address;
        o.heartbeat_interval_ms = heartbeat_ms;
        o.election_timeout_min_ms = election_min_ms;
        o.election_timeout_max_ms = election_min_ms * 2;
        o.snapshot_every_entries = snapshot_every;
        o.snapshot_trailing_entries = snapshot_trailing;
        o.join = join;
        o.initial_members = founders_;
        // Founders share the cluster's id; a joiner learns it from the leader.
        if (!join) o.cluster_id = cluster_id;
        if (tls) o.peer_tls = member_certificate(id);
        o.inline_apply = inline_apply;
        if (auto it = observers.find(id); it != observers.end()) o.observer = it->second;
        // As the default logger (warnings and errors to stderr), and a node
        // event is progress that eventually() re-checks on.
        o.logger = [id, log = log_](LogLevel level, const std::string& message) {
            if (level == LogLevel::warn || level == LogLevel::error) {
                std::fprintf(stderr, "keel[%llu] %s\n", static_cast<unsigned long long>(id),
                             message.c_str());
                std::lock_guard lock(log->mu);
                log->warnings.emplace_back(id, message);
            }
            ProgressSignal::instance().notify();
        };
        return o;
    }

    Node& start(NodeId id, bool join = false) {
        sms_[id] = state_machine_factory ? state_machine_factory()
                                         : std::make_shared<RecordingStateMachine>();
        auto fs = file_systems.find(id);
        NodeOptions o = options(id, join);
        if (transport_for) o.transport = transport_for(id);
        auto n =
            runtime::Replica::open(o, sms_[id], fs == file_systems.end() ? nullptr : fs->second);
        if (!n.ok())
            std::fprintf(stderr, "node %llu does not open: %s\n",
                         static_cast<unsigned long long>(id), n.status().to_string().c_str());
        KEEL_ASSERT(n.ok(), "node opens");
        nodes_[id] = std::move(n.value());
        return *nodes_[id];
    }
    void stop(NodeId id) {
        nodes_.at(id)->stop();
        nodes_.erase(id);
    }
    void wipe(NodeId id) { std::filesystem::remove_all(options(id).data_dir); }

    // Whether node `id` logged a warning or error containing `text`.
    bool warned(NodeId id, const std::string& text) const {
        std::lock_guard lock(log_->mu);
        for (const auto& [from, message] : log_->warnings)
            if (from == id && message.find(text) != std::string::npos) return true;
        return false;
    }

    Node& node(NodeId id) { return *nodes_.at(id); }
    RecordingStateMachine& sm(NodeId id) { return *sms_.at(id); }
    const MemberSpec& spec(NodeId id) const { return specs_.at(id); }
    bool running(NodeId id) const { return nodes_.count(id) != 0; }

    // The running node that leads and answers a read barrier as leader.
    NodeId leader() {
        std::vector<NodeId> ids;
        for (const auto& [id, n] : nodes_) ids.push_back(id);
        return confirmed_leader(ids, [this](NodeId id) { return nodes_.at(id).get(); });
    }

    // Proposes through whoever leads (retrying not_leader/aborted/busy)
    // until acknowledged; returns the index.
    std::uint64_t propose(const std::string& data) {
        ProposeResult r =
            propose_through_leader([this] { return leader(); },
                                   [this](NodeId id) { return nodes_.at(id).get(); }, data, 1000);
        KEEL_ASSERT(r.status.ok(), "could not get a proposal acknowledged");
        return r.index;
    }

    // Mutual TLS between the nodes: a CA and a certificate per node, made
    // in the cluster's directory when first needed.
    PeerTls member_certificate(NodeId id) const {
        if (!ca_) ca_ = std::make_unique<TestCa>(dir_.path(), "members");
        auto it = certificates_.find(id);
        if (it == certificates_.end()) {
            TestCa::Member m = ca_->issue("node-" + std::to_string(id));
            it =
                certificates_.emplace(id, PeerTls{m.cert_file, m.key_file, ca_->cert_path()}).first;
        }
        return it->second;
    }
    const std::string& directory() const { return dir_.path(); }

    bool tls = false;
    // The founders' cluster id (random: no two test clusters share one).
    std::string cluster_id = random_cluster_id();
    std::uint32_t heartbeat_ms = 20;
    std::uint32_t election_min_ms = 100;
    std::uint64_t snapshot_every = 0;
    std::uint64_t snapshot_trailing = 1024;
    bool inline_apply = true;
    // Where a node keeps its WAL and snapshots (default: the POSIX file
    // system); tests inject faults there.  Not owned.
    std::map<NodeId, wal::FileSystem*> file_systems;
    // Makes each started node's state machine (default: a plain one).
    std::function<std::shared_ptr<RecordingStateMachine>()> state_machine_factory;
    // Makes the transport of each node started (NodeOptions::transport);
    // unset: keel's TCP transport.
    std::function<std::shared_ptr<Transport>(NodeId)> transport_for;
    // Each node's observer (NodeOptions::observer), if any.
    std::map<NodeId, std::shared_ptr<Observer>> observers;

private:
    struct WarningLog {
        std::mutex mu;
        std::vector<std::pair<NodeId, std::string>> warnings;
    };
    // Shared with the nodes' loggers, which may outlive a stopped node's slot.
    std::shared_ptr<WarningLog> log_ = std::make_shared<WarningLog>();
    TempDir dir_;
    mutable std::unique_ptr<TestCa> ca_;
    mutable std::map<NodeId, PeerTls> certificates_;
    std::map<NodeId, MemberSpec> specs_;
    std::vector<MemberSpec> founders_;
    std::map<NodeId, std::unique_ptr<Node>> nodes_;
    std::map<NodeId, std::shared_ptr<RecordingStateMachine>> sms_;
};

}  // namespace keel::test
