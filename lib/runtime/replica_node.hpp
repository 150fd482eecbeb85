// runtime/replica_node.hpp — keel::Node's calls, forwarded to one Raft group
// (replica.hpp).  The two ways a group is held, keel::Node's own process
// (single_group_node.hpp) and a Host's group handle (host.cpp), differ only
// in what they own and how they stop; every other call goes here, so that a
// call added to keel::Node is forwarded once, for both.
//
// Threads: as keel::Node (keel/node.hpp).
#pragma once

#include <memory>

#include "keel/node.hpp"
#include "runtime/replica.hpp"

namespace keel::runtime {

class ReplicaNode : public Node {
public:
    void propose_async(SharedBytes data, std::function<void(ProposeResult)> done) override {
        replica().propose_async(std::move(data), std::move(done));
    }
    void propose_batch_async(std::vector<Proposal> proposals) override {
        replica().propose_batch_async(std::move(proposals));
    }
    void read_index_async(bool wait_applied, std::function<void(ReadResult)> done) override {
        replica().read_index_async(wait_applied, std::move(done));
    }
    void add_member_async(const MemberSpec& member, std::function<void(Status)> done) override {
        replica().add_member_async(member, std::move(done));
    }
    void promote_member_async(NodeId id, std::function<void(Status)> done) override {
        replica().promote_member_async(id, std::move(done));
    }
    void remove_member_async(NodeId id, std::function<void(Status)> done) override {
        replica().remove_member_async(id, std::move(done));
    }
    void transfer_leadership_async(NodeId to, std::function<void(Status)> done) override {
        replica().transfer_leadership_async(to, std::move(done));
    }
    void snapshot_async(std::function<void(Status)> done) override {
        replica().snapshot_async(std::move(done));
    }
    Result<std::unique_ptr<SnapshotFileSource>> open_latest_snapshot() override {
        return replica().open_latest_snapshot();
    }
    NodeStatus status() const override { return replica().status(); }
    Result<MemberSpec> member(NodeId id) const override { return replica().member(id); }

protected:
    // The group; it lives as long as the handle is open.
    virtual Replica& replica() const = 0;
};

}  // namespace keel::runtime
