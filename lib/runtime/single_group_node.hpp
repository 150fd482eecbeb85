// runtime/single_group_node.hpp — keel::Node as the runtime builds it: one
// process's services (process_services.hpp) hosting one Raft group, 0
// (replica.hpp), whose options also make the process's transport.  Every
// call goes to the group (replica_node.hpp); stop() stops the group, then
// the services.
//
// Owns: the services and the group (the group goes first).
// Threads: as keel::Node (keel/node.hpp).
#pragma once

#include <memory>

#include "keel/node.hpp"
#include "runtime/process_services.hpp"
#include "runtime/replica.hpp"
#include "runtime/replica_node.hpp"

namespace keel::runtime {

class SingleGroupNode final : public ReplicaNode {
public:
    // Node::open.  `fs`: as Replica::open.
    static Result<std::unique_ptr<Node>> open(const NodeOptions& options,
                                              std::shared_ptr<StateMachine> state_machine,
                                              wal::FileSystem* fs);
    ~SingleGroupNode() override;

    void stop(bool transfer_leadership_first = false) override;

    // Tests: the group.
    Replica& group() { return *group_; }

private:
    Replica& replica() const override { return *group_; }

    SingleGroupNode(std::unique_ptr<ProcessServices> services, std::unique_ptr<Replica> group)
        : services_(std::move(services)), group_(std::move(group)) {}

    std::unique_ptr<ProcessServices> services_;  // declared first: goes last
    std::unique_ptr<Replica> group_;
};

}  // namespace keel::runtime
