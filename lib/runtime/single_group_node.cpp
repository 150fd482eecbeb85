// keel::Node as one process's services with one group.  See
// single_group_node.hpp.
#include "runtime/single_group_node.hpp"

#include <utility>

namespace keel::runtime {

Result<std::unique_ptr<Node>> SingleGroupNode::open(const NodeOptions& options,
                                                    std::shared_ptr<StateMachine> state_machine,
                                                    wal::FileSystem* fs) {
    auto services = std::make_unique<ProcessServices>();
    auto group = Replica::open_process_group(options, std::move(state_machine), *services, fs);
    if (!group.ok()) return group.status();  // ~ProcessServices stops what started
    return std::unique_ptr<Node>(
        new SingleGroupNode(std::move(services), std::move(group.value())));
}

SingleGroupNode::~SingleGroupNode() {
    stop(false);
    group_.reset();  // its WAL closes while the services still run
    services_.reset();
}

void SingleGroupNode::stop(bool transfer_leadership_first) {
    group_->stop(transfer_leadership_first);
    services_->stop();
}

}  // namespace keel::runtime
