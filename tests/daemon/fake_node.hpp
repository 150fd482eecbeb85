// tests/daemon/fake_node.hpp — an in-memory keel::Node for raftd's handler
// tests: applies proposals at once, completes every call inline, and lets a
// test play follower (with or without a known leader) or inject errors.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include "keel/node.hpp"
#include "kv_state_machine.hpp"

namespace keel::daemon::testing {

class FakeNode final : public Node {
public:
    explicit FakeNode(std::shared_ptr<StateMachine> sm) : sm_(std::move(sm)) {
        members_.push_back({MemberSpec{1, "127.0.0.1:7081", "127.0.0.1:8081", true}, 0});
        members_.push_back({MemberSpec{2, "127.0.0.1:7082", "127.0.0.1:8082", true}, 0});
    }

    NodeId self = 1;
    NodeId leader = 1;  // 0: no known leader
    Status fail_next;   // if not ok: the next call fails with it
    std::uint64_t last_index = 0;
    std::uint64_t snapshot_index = 0;
    std::vector<std::string> alarms;  // NodeStatus::alarms
    std::string failure;              // NodeStatus::failure
    std::uint64_t wal_bytes = 0;      // NodeStatus::wal.bytes

    void propose_async(SharedBytes data, std::function<void(ProposeResult)> done) override {
        if (Status s = take_failure(); !s.ok()) return done({s, 0, "", leader});
        std::vector<CommittedEntry> entries{{++last_index, 1, data.view()}};
        std::vector<std::string> results;
        sm_->apply(entries, results);
        done({Status(), last_index, results.at(0), 0});
    }
    // The size of each propose_batch_async call, in order.
    std::vector<std::size_t> batches;
    void propose_batch_async(std::vector<Proposal> proposals) override {
        batches.push_back(proposals.size());
        Node::propose_batch_async(std::move(proposals));
    }
    void read_index_async(bool, std::function<void(ReadResult)> done) override {
        if (Status s = take_failure(); !s.ok()) return done({s, 0, leader});
        done({Status(), last_index, 0});
    }
    void add_member_async(const MemberSpec& member, std::function<void(Status)> done) override {
        if (Status s = take_failure(); !s.ok()) return done(s);
        if (find(member.id)) return done(Status(ErrorCode::invalid_argument, "duplicate id"));
        members_.push_back({member, 0});
        done(Status());
    }
    void promote_member_async(NodeId id, std::function<void(Status)> done) override {
        if (Status s = take_failure(); !s.ok()) return done(s);
        MemberStatus* m = find(id);
        if (!m) return done(Status(ErrorCode::not_found, "no such member"));
        m->spec.voter = true;
        done(Status());
    }
    void remove_member_async(NodeId id, std::function<void(Status)> done) override {
        if (Status s = take_failure(); !s.ok()) return done(s);
        if (!find(id)) return done(Status(ErrorCode::not_found, "no such member"));
        std::erase_if(members_, [id](const MemberStatus& m) { return m.spec.id == id; });
        done(Status());
    }
    void transfer_leadership_async(NodeId to, std::function<void(Status)> done) override {
        if (Status s = take_failure(); !s.ok()) return done(s);
        if (!find(to)) return done(Status(ErrorCode::invalid_argument, "not a member"));
        leader = to;
        done(Status());
    }
    void snapshot_async(std::function<void(Status)> done) override {
        if (Status s = take_failure(); !s.ok()) return done(s);
        snapshot_index = last_index;
        done(Status());
    }
    Result<std::unique_ptr<SnapshotFileSource>> open_latest_snapshot() override {
        return Status(ErrorCode::not_found, "the fake node keeps no snapshot files");
    }
    NodeStatus status() const override {
        NodeStatus s;
        s.id = self;
        s.cluster_id = "00112233445566778899aabbccddeeff";
        s.role = leader == self ? Role::leader : Role::follower;
        s.term = 3;
        s.leader_id = leader;
        s.commit_index = s.applied_index = s.last_index = last_index;
        s.snapshot_index = snapshot_index;
        s.mode = members_.size() > 1 ? Mode::cluster : Mode::single;
        s.members = members_;
        for (MemberStatus& m : s.members) m.replicating = s.role == Role::leader;
        s.wal.segments = 1;
        s.wal.bytes = wal_bytes;
        s.commit_latency.upper_bounds_us = {100, 1000, 1.0 / 0.0};
        s.commit_latency.counts = {2, 1, 1};
        s.commit_latency.count = 4;
        s.commit_latency.sum_us = 3000;
        s.alarms = alarms;
        s.failure = failure;
        return s;
    }
    Result<MemberSpec> member(NodeId id) const override {
        for (const MemberStatus& m : members_) {
            if (m.spec.id == id) return m.spec;
        }
        return Status(ErrorCode::not_found, "no such member");
    }
    void stop(bool) override {}

private:
    Status take_failure() {
        if (leader != self) return Status(ErrorCode::not_leader, "follower");
        Status s = fail_next;
        fail_next = Status();
        return s;
    }
    MemberStatus* find(NodeId id) {
        for (MemberStatus& m : members_) {
            if (m.spec.id == id) return &m;
        }
        return nullptr;
    }

    std::shared_ptr<StateMachine> sm_;
    std::vector<MemberStatus> members_;
};

}  // namespace keel::daemon::testing
