// runtime/read_tracker.hpp — ReadIndex requests in flight.
//
// A request gets an id, the core answers it with a ReadState (the read
// index) or a ReadFailure.  With wait_applied the caller is completed only
// once the local state machine has applied the read index, so reading the
// state machine then is linearizable (Raft dissertation §6.4).
//
// Thread: under the replica's core lock (whichever thread holds it); the
// callbacks run there.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>

#include "keel/node.hpp"
#include "raft/actions.hpp"

namespace keel::runtime {

class ReadTracker {
public:
    using Callback = std::function<void(ReadResult)>;

    std::uint64_t add(bool wait_applied, Callback done) {
        const std::uint64_t id = ++next_id_;
        waiting_.emplace(id, Waiting{wait_applied, std::move(done)});
        return id;
    }

    // The core refused the request outright (Status from Core::read_index).
    void fail(std::uint64_t id, Status status, raft::NodeId leader_hint) {
        auto it = waiting_.find(id);
        if (it == waiting_.end()) return;
        Callback done = std::move(it->second.done);
        waiting_.erase(it);
        done(ReadResult{std::move(status), 0, leader_hint});
    }

    void on_read_state(const raft::ReadState& rs, raft::Index applied) {
        auto it = waiting_.find(rs.request_id);
        if (it == waiting_.end()) return;
        Waiting w = std::move(it->second);
        waiting_.erase(it);
        if (!w.wait_applied || applied >= rs.index) {
            w.done(ReadResult{Status::ok_status(), rs.index, 0});
        } else {
            until_applied_.emplace(rs.index, std::move(w.done));
        }
    }

    void on_failure(const raft::ReadFailure& f) {
        fail(f.request_id, Status(ErrorCode::not_leader, "not leader"), f.leader_hint);
    }

    void on_applied(raft::Index applied) {
        while (!until_applied_.empty() && until_applied_.begin()->first <= applied) {
            auto node = until_applied_.extract(until_applied_.begin());
            node.mapped()(ReadResult{Status::ok_status(), node.key(), 0});
        }
    }

    void fail_all(ErrorCode code, const std::string& why) {
        auto waiting = std::move(waiting_);
        auto until = std::move(until_applied_);
        waiting_.clear();
        until_applied_.clear();
        for (auto& [id, w] : waiting) w.done(ReadResult{Status(code, why), 0, 0});
        for (auto& [index, done] : until) done(ReadResult{Status(code, why), 0, 0});
    }

    std::size_t size() const { return waiting_.size() + until_applied_.size(); }

private:
    struct Waiting {
        bool wait_applied = false;
        Callback done;
    };
    std::uint64_t next_id_ = 0;
    std::unordered_map<std::uint64_t, Waiting> waiting_;
    std::multimap<raft::Index, Callback> until_applied_;
};

}  // namespace keel::runtime
