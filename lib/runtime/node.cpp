// keel::Node's non-virtual calls: open() and the future-returning wrappers
// around the *_async calls that Replica implements.
#include <future>
#include <memory>
#include <utility>

#include "keel/node.hpp"
#include "runtime/single_group_node.hpp"

namespace keel {

Result<std::unique_ptr<Node>> Node::open(const NodeOptions& options,
                                         std::shared_ptr<StateMachine> state_machine) {
    return runtime::SingleGroupNode::open(options, std::move(state_machine), nullptr);
}

namespace {
template <typename T>
std::pair<std::shared_ptr<std::promise<T>>, std::future<T>> make_promise() {
    auto p = std::make_shared<std::promise<T>>();
    auto f = p->get_future();
    return {std::move(p), std::move(f)};
}
}  // namespace

std::future<ProposeResult> Node::propose(SharedBytes data) {
    auto [p, f] = make_promise<ProposeResult>();
    propose_async(std::move(data), [p = p](ProposeResult r) { p->set_value(std::move(r)); });
    return std::move(f);
}

std::future<ReadResult> Node::read_index(bool wait_applied) {
    auto [p, f] = make_promise<ReadResult>();
    read_index_async(wait_applied, [p = p](ReadResult r) { p->set_value(std::move(r)); });
    return std::move(f);
}

namespace {
template <typename Call>
std::future<Status> status_future(Call call) {
    auto [p, f] = make_promise<Status>();
    call([p = p](Status s) { p->set_value(std::move(s)); });
    return std::move(f);
}
}  // namespace

std::future<Status> Node::add_member(const MemberSpec& member) {
    return status_future([&](auto cb) { add_member_async(member, std::move(cb)); });
}
std::future<Status> Node::promote_member(NodeId id) {
    return status_future([&](auto cb) { promote_member_async(id, std::move(cb)); });
}
std::future<Status> Node::remove_member(NodeId id) {
    return status_future([&](auto cb) { remove_member_async(id, std::move(cb)); });
}
std::future<Status> Node::transfer_leadership(NodeId to) {
    return status_future([&](auto cb) { transfer_leadership_async(to, std::move(cb)); });
}
std::future<Status> Node::snapshot_now() {
    return status_future([&](auto cb) { snapshot_async(std::move(cb)); });
}

const char* mode_name(Mode mode) {
    switch (mode) {
        case Mode::single:
            return "single";
        case Mode::cluster:
            return "cluster";
    }
    return "unknown";
}

}  // namespace keel
