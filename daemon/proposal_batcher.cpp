// Gathering an HTTP thread's proposals.  See proposal_batcher.hpp.
#include "proposal_batcher.hpp"

#include <utility>
#include <vector>

namespace keel::daemon {
namespace {

// The calling thread's proposals waiting for its flush, and whose they are:
// `by_group[g]` for group index g, `touched` the indexes in first-use order.
struct Gathered {
    const ProposalBatcher* owner = nullptr;
    std::vector<std::vector<Node::Proposal>> by_group;
    std::vector<std::size_t> touched;
};
thread_local Gathered t_gathered;

}  // namespace

ProposalBatcher::ProposalBatcher(Node& node, Defer defer)
    : ProposalBatcher(std::vector<Node*>{&node}, std::move(defer)) {}

ProposalBatcher::ProposalBatcher(std::vector<Node*> groups, Defer defer)
    : groups_(std::move(groups)), defer_(std::move(defer)) {
    KEEL_ASSERT(!groups_.empty(), "a batcher serves at least one group");
}

void ProposalBatcher::propose(std::size_t group, SharedBytes data,
                              std::function<void(ProposeResult)> done) {
    KEEL_ASSERT(group < groups_.size(), "the group index is the caller's, checked");
    Gathered& g = t_gathered;
    if (!g.touched.empty()) {
        // This thread's flush is queued: join it (another batcher's: ours
        // goes alone).
        if (g.owner != this) return groups_[group]->propose_async(std::move(data), std::move(done));
    } else {
        if (!defer_([self = shared_from_this()] { self->flush(); }))
            return groups_[group]->propose_async(std::move(data), std::move(done));
        g.owner = this;
        if (g.by_group.size() < groups_.size()) g.by_group.resize(groups_.size());
    }
    std::vector<Node::Proposal>& pending = g.by_group[group];
    if (pending.empty()) g.touched.push_back(group);
    pending.push_back({std::move(data), std::move(done)});
}

void ProposalBatcher::flush() {
    Gathered& g = t_gathered;
    std::vector<std::size_t> touched;
    touched.swap(g.touched);
    std::vector<std::vector<Node::Proposal>> batches(touched.size());
    for (std::size_t i = 0; i < touched.size(); ++i) batches[i].swap(g.by_group[touched[i]]);
    g.owner = nullptr;
    // A proposal's `done` may run inline and propose again: the thread's
    // state is cleared before any reaches keel.
    for (std::size_t i = 0; i < touched.size(); ++i) {
        Node& node = *groups_[touched[i]];
        std::vector<Node::Proposal>& batch = batches[i];
        if (batch.size() == 1) {
            node.propose_async(std::move(batch[0].data), std::move(batch[0].done));
        } else {
            node.propose_batch_async(std::move(batch));
        }
    }
}

}  // namespace keel::daemon
