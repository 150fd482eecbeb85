// Gathering an HTTP thread's proposals.  See proposal_batcher.hpp.
#include "proposal_batcher.hpp"

#include <utility>
#include <vector>

namespace keel::daemon {
namespace {

// The calling thread's proposals waiting for its flush, and whose they are.
struct Gathered {
    const ProposalBatcher* owner = nullptr;
    std::vector<Node::Proposal> proposals;
};
thread_local Gathered t_gathered;

}  // namespace

ProposalBatcher::ProposalBatcher(Node& node, Defer defer) : node_(node), defer_(std::move(defer)) {}

void ProposalBatcher::propose(SharedBytes data, std::function<void(ProposeResult)> done) {
    Gathered& g = t_gathered;
    if (!g.proposals.empty()) {
        // This thread's flush is queued: join it (another batcher's: ours
        // goes alone).
        if (g.owner == this) return g.proposals.push_back({std::move(data), std::move(done)});
        return node_.propose_async(std::move(data), std::move(done));
    }
    if (!defer_([self = shared_from_this()] { self->flush(); }))
        return node_.propose_async(std::move(data), std::move(done));
    g.owner = this;
    g.proposals.push_back({std::move(data), std::move(done)});
}

void ProposalBatcher::flush() {
    std::vector<Node::Proposal> batch;
    batch.swap(t_gathered.proposals);
    t_gathered.owner = nullptr;
    if (batch.size() == 1)
        return node_.propose_async(std::move(batch[0].data), std::move(batch[0].done));
    node_.propose_batch_async(std::move(batch));
}

}  // namespace keel::daemon
