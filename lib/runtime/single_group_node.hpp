// runtime/single_group_node.hpp — keel::Node as the runtime builds it: one
// process's services (process_services.hpp) hosting one Raft group, 0
// (replica.hpp), whose options also make the process's transport.  Every
// call goes to the group; stop() stops the group, then the services.
//
// Owns: the services and the group (the group goes first).
// Threads: as keel::Node (keel/node.hpp).
#pragma once

#include <memory>

#include "keel/node.hpp"
#include "runtime/process_services.hpp"
#include "runtime/replica.hpp"

namespace keel::runtime {

class SingleGroupNode final : public Node {
public:
    // Node::open.  `fs`: as Replica::open.
    static Result<std::unique_ptr<Node>> open(const NodeOptions& options,
                                              std::shared_ptr<StateMachine> state_machine,
                                              wal::FileSystem* fs);
    ~SingleGroupNode() override;

    void propose_async(SharedBytes data, std::function<void(ProposeResult)> done) override {
        group_->propose_async(std::move(data), std::move(done));
    }
    void read_index_async(bool wait_applied, std::function<void(ReadResult)> done) override {
        group_->read_index_async(wait_applied, std::move(done));
    }
    void add_member_async(const MemberSpec& member, std::function<void(Status)> done) override {
        group_->add_member_async(member, std::move(done));
    }
    void promote_member_async(NodeId id, std::function<void(Status)> done) override {
        group_->promote_member_async(id, std::move(done));
    }
    void remove_member_async(NodeId id, std::function<void(Status)> done) override {
        group_->remove_member_async(id, std::move(done));
    }
    void transfer_leadership_async(NodeId to, std::function<void(Status)> done) override {
        group_->transfer_leadership_async(to, std::move(done));
    }
    void snapshot_async(std::function<void(Status)> done) override {
        group_->snapshot_async(std::move(done));
    }
    Result<std::unique_ptr<SnapshotFileSource>> open_latest_snapshot() override {
        return group_->open_latest_snapshot();
    }
    NodeStatus status() const override { return group_->status(); }
    Result<MemberSpec> member(NodeId id) const override { return group_->member(id); }
    void stop(bool transfer_leadership_first = false) override;

    // Tests: the group.
    Replica& group() { return *group_; }

private:
    SingleGroupNode(std::unique_ptr<ProcessServices> services, std::unique_ptr<Replica> group)
        : services_(std::move(services)), group_(std::move(group)) {}

    std::unique_ptr<ProcessServices> services_;  // declared first: goes last
    std::unique_ptr<Replica> group_;
};

}  // namespace keel::runtime
