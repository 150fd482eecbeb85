// tests/common/memory_transport.hpp — keel::Transport in memory, for tests:
// a MemoryNetwork hands each node an endpoint (NodeOptions::transport), and
// one delivery thread of the network carries every buffer and snapshot
// chunk to the destination's sink, as an application's RPC layer would
// from a thread of its own.  Faults are switches: cut a link (or isolate a
// node), drop snapshot chunks while reporting the stream delivered, stop
// delivering to sinks at all.
//
// Order: one FIFO queue for the whole network, so buffers on one link
// arrive in the order they were sent; a snapshot stream goes one chunk per
// turn (back to the end of the queue after each), so messages interleave.
// A buffer on a cut link, or for a node without a running endpoint, is
// dropped and the sender told (TransportSink::on_unreachable); a snapshot
// stream on a cut link is aborted (done(false)).
//
// Lifetime: declare the network before the nodes that use it (it must
// outlive their endpoints' last call).  Endpoint::stop() returns only when
// the delivery thread is not inside that endpoint's sink.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "keel/transport.hpp"

namespace keel::test {

class MemoryNetwork {
public:
    class Endpoint final : public Transport {
    public:
        Endpoint(MemoryNetwork& network, NodeId id) : network_(network), id_(id) {}

        Status start(TransportSink& sink) override {
            std::lock_guard lock(sink_mu_);
            sink_ = &sink;
            return Status::ok_status();
        }
        void stop() override {
            std::lock_guard lock(sink_mu_);  // waits out a delivery in progress
            sink_ = nullptr;
        }
        void set_peer(NodeId id, const std::string& address) override {
            std::lock_guard lock(sink_mu_);
            peers_[id] = address;
        }
        void remove_peer(NodeId id) override {
            std::lock_guard lock(sink_mu_);
            peers_.erase(id);
        }
        void send(GroupId group, NodeId to, std::string bytes) override {
            network_.enqueue(Job{group, id_, to, std::move(bytes), nullptr});
        }
        void send_snapshot(GroupId group, NodeId to,
                           std::shared_ptr<OutgoingSnapshot> snapshot) override {
            network_.enqueue(Job{group, id_, to, {}, std::move(snapshot)});
        }

        // Runs `f(sink)` if started and not stopped, holding off stop().
        template <typename F>
        bool with_sink(F&& f) {
            std::lock_guard lock(sink_mu_);
            if (sink_ == nullptr) return false;
            f(*sink_);
            return true;
        }
        bool knows(NodeId id) {
            std::lock_guard lock(sink_mu_);
            return peers_.count(id) != 0;
        }

    private:
        MemoryNetwork& network_;
        const NodeId id_;
        std::mutex sink_mu_;
        TransportSink* sink_ = nullptr;
        std::map<NodeId, std::string> peers_;
    };

    MemoryNetwork() : thread_([this] { run(); }) {}
    ~MemoryNetwork() {
        {
            std::lock_guard lock(mu_);
            closing_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    MemoryNetwork(const MemoryNetwork&) = delete;
    MemoryNetwork& operator=(const MemoryNetwork&) = delete;

    // A new endpoint for node `id` (for each start of that node: a
    // transport is started once).
    std::shared_ptr<Endpoint> endpoint(NodeId id) {
        auto e = std::make_shared<Endpoint>(*this, id);
        std::lock_guard lock(mu_);
        endpoints_[id] = e;
        return e;
    }

    // Faults.
    void cut(NodeId a, NodeId b) {
        std::lock_guard lock(mu_);
        cut_.insert({std::min(a, b), std::max(a, b)});
    }
    void isolate(NodeId id, std::initializer_list<NodeId> others) {
        for (NodeId o : others) cut(id, o);
    }
    void heal() {
        std::lock_guard lock(mu_);
        cut_.clear();
    }
    // Snapshot chunks vanish, and the stream is still reported delivered.
    std::atomic<bool> drop_snapshot_chunks{false};
    // Nothing reaches any sink (a transport whose receiving side is not wired).
    std::atomic<bool> deliver{true};

    // What went through (monotonic).
    std::atomic<std::uint64_t> buffers_delivered{0};
    std::atomic<std::uint64_t> chunks_delivered{0};
    std::atomic<std::uint64_t> snapshots_done{0};    // streams ended delivered
    std::atomic<std::uint64_t> snapshots_failed{0};  // streams aborted
    std::atomic<std::uint64_t> refused{0};           // sink calls answered with an error
    // Buffers of `group` dropped on a cut link (monotonic).
    std::uint64_t cut_in(GroupId group) {
        std::lock_guard lock(mu_);
        auto it = cut_by_group_.find(group);
        return it == cut_by_group_.end() ? 0 : it->second;
    }
    // Buffers delivered under `group` (monotonic).
    std::uint64_t delivered_in(GroupId group) {
        std::lock_guard lock(mu_);
        auto it = delivered_by_group_.find(group);
        return it == delivered_by_group_.end() ? 0 : it->second;
    }

private:
    struct Job {
        GroupId group = 0;
        NodeId from = 0;
        NodeId to = 0;
        std::string bytes;
        std::shared_ptr<OutgoingSnapshot> snapshot;  // set: a snapshot stream
    };

    void enqueue(Job job) {
        {
            std::lock_guard lock(mu_);
            queue_.push_back(std::move(job));
        }
        cv_.notify_one();
    }

    bool linked(NodeId a, NodeId b) {
        std::lock_guard lock(mu_);
        return cut_.count({std::min(a, b), std::max(a, b)}) == 0;
    }
    std::shared_ptr<Endpoint> find(NodeId id) {
        std::lock_guard lock(mu_);
        auto it = endpoints_.find(id);
        return it == endpoints_.end() ? nullptr : it->second.lock();
    }

    void run() {
        for (;;) {
            Job job;
            {
                std::unique_lock lock(mu_);
                cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
                if (closing_) break;
                job = std::move(queue_.front());
                queue_.pop_front();
            }
            if (job.snapshot) {
                stream_one_chunk(std::move(job));
            } else {
                carry(job);
            }
        }
        // Streams never finished are dropped: OutgoingSnapshot reports them failed.
        std::lock_guard lock(mu_);
        queue_.clear();
    }

    void report_unreachable(const Job& job) {
        if (auto sender = find(job.from))
            sender->with_sink([&](TransportSink& s) { s.on_unreachable(job.group, job.to); });
    }

    void carry(const Job& job) {
        std::shared_ptr<Endpoint> to = find(job.to);
        if (!linked(job.from, job.to) || !to) {
            if (to) {
                std::lock_guard lock(mu_);
                ++cut_by_group_[job.group];
            }
            return report_unreachable(job);
        }
        if (!deliver.load()) return;
        const bool delivered = to->with_sink([&](TransportSink& s) {
            if (!s.on_messages(job.group, job.from, job.bytes).ok()) ++refused;
        });
        if (!delivered) return report_unreachable(job);
        ++buffers_delivered;
        std::lock_guard lock(mu_);
        ++delivered_by_group_[job.group];
    }

    void stream_one_chunk(Job job) {
        std::shared_ptr<Endpoint> to = find(job.to);
        std::shared_ptr<Endpoint> from = find(job.from);
        if (!linked(job.from, job.to) || !to || !from || !from->knows(job.to)) {
            ++snapshots_failed;
            job.snapshot->done(false);
            return report_unreachable(job);
        }
        Result<SnapshotChunk> chunk = job.snapshot->next_chunk();
        if (!chunk.ok()) {
            ++snapshots_failed;
            return job.snapshot->done(false);
        }
        if (!drop_snapshot_chunks.load() && deliver.load()) {
            to->with_sink([&](TransportSink& s) {
                if (!s.on_snapshot_chunk(job.group, job.from, chunk->bytes).ok()) ++refused;
            });
            ++chunks_delivered;
        }
        if (chunk->last) {
            ++snapshots_done;
            return job.snapshot->done(true);
        }
        enqueue(std::move(job));  // the next chunk after what is queued now
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> queue_;
    std::map<NodeId, std::weak_ptr<Endpoint>> endpoints_;
    std::set<std::pair<NodeId, NodeId>> cut_;
    std::map<GroupId, std::uint64_t> delivered_by_group_;
    std::map<GroupId, std::uint64_t> cut_by_group_;
    bool closing_ = false;
    std::thread thread_;  // last: started when everything above exists
};

}  // namespace keel::test
