// tools/bench_network.hpp — keel::Transport inside one process, for
// raft-bench's groups mode: three keel::Host in one process, as an
// application's own RPC layer would join them.  The groups rows' default, so
// that their figures stay comparable over time; --transport tcp runs them on
// keel's TCP transport instead (HostOptions::listen_address), as cluster3
// runs, which decision 0054 found costs more per operation.
//
// Each endpoint has an inbox and one delivery thread, which hands every
// buffer to the endpoint's sink in the order it was queued (so buffers on
// one link arrive in the order they were sent), as a process's receiving
// thread would.  A snapshot stream is carried whole by the destination's
// thread, chunk by chunk.  Nothing is delivered while the network is held
// (hold(true): the Hosts are opening their groups, and a delivery for a
// group not open yet would be refused and counted); what is sent meanwhile
// is dropped, as by a lossy network.
//
// Lifetime: the network outlives the Hosts that use it.  Endpoint::stop()
// returns only when its delivery thread is not inside the sink.  An inbox
// holds at most kMaxQueuedBuffers; past it buffers are dropped (Raft
// resends).
//
// Counts, for the bench's rows: buffers carried (send() calls delivered or
// dropped) and delivery-thread wakeups (each takes what its inbox holds).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "keel/transport.hpp"

namespace raft_bench {

class BenchNetwork {
public:
    static constexpr std::size_t kMaxQueuedBuffers = 1 << 20;

    class Endpoint final : public keel::Transport {
    public:
        Endpoint(BenchNetwork& network, keel::NodeId id)
            : network_(network), id_(id), thread_([this] { run(); }) {}
        ~Endpoint() override {
            {
                std::lock_guard lock(mu_);
                closing_ = true;
            }
            cv_.notify_all();
            thread_.join();
        }

        keel::Status start(keel::TransportSink& sink) override {
            std::lock_guard lock(sink_mu_);
            sink_ = &sink;
            return keel::Status::ok_status();
        }
        void stop() override {
            std::lock_guard lock(sink_mu_);  // waits out a delivery in progress
            sink_ = nullptr;
        }
        void set_peer(keel::NodeId, const std::string&) override {}
        void remove_peer(keel::NodeId) override {}
        void send(keel::GroupId group, keel::NodeId to, std::string bytes) override {
            network_.carry(Job{group, id_, to, std::move(bytes), nullptr});
        }
        void send_snapshot(keel::GroupId group, keel::NodeId to,
                           std::shared_ptr<keel::OutgoingSnapshot> snapshot) override {
            network_.carry(Job{group, id_, to, {}, std::move(snapshot)});
        }

    private:
        friend class BenchNetwork;
        struct Job {
            keel::GroupId group = 0;
            keel::NodeId from = 0;
            keel::NodeId to = 0;
            std::string bytes;
            std::shared_ptr<keel::OutgoingSnapshot> snapshot;  // set: a snapshot stream
        };

        bool enqueue(Job job) {
            {
                std::lock_guard lock(mu_);
                if (closing_ || inbox_.size() >= kMaxQueuedBuffers) return false;
                inbox_.push_back(std::move(job));
            }
            cv_.notify_one();
            return true;
        }

        void run() {
            std::deque<Job> jobs;
            for (;;) {
                {
                    std::unique_lock lock(mu_);
                    cv_.wait(lock, [&] { return closing_ || !inbox_.empty(); });
                    if (closing_) return;
                    jobs.swap(inbox_);
                }
                network_.wakeups_.fetch_add(1, std::memory_order_relaxed);
                for (Job& job : jobs) deliver(job);
                jobs.clear();
            }
        }

        void deliver(Job& job) {
            std::lock_guard lock(sink_mu_);
            if (!job.snapshot) {
                if (sink_ != nullptr) (void)sink_->on_messages(job.group, job.from, job.bytes);
                return;
            }
            bool delivered = sink_ != nullptr;
            while (delivered) {
                keel::Result<keel::SnapshotChunk> chunk = job.snapshot->next_chunk();
                if (!chunk.ok()) {
                    delivered = false;
                    break;
                }
                (void)sink_->on_snapshot_chunk(job.group, job.from, chunk->bytes);
                if (chunk->last) break;
            }
            job.snapshot->done(delivered);
        }

        BenchNetwork& network_;
        const keel::NodeId id_;
        std::mutex sink_mu_;
        keel::TransportSink* sink_ = nullptr;
        std::mutex mu_;
        std::condition_variable cv_;
        std::deque<Job> inbox_;
        bool closing_ = false;
        std::thread thread_;  // last: started when everything above exists
    };

    // A new endpoint for process `id` (one per process).
    std::shared_ptr<Endpoint> endpoint(keel::NodeId id) {
        auto e = std::make_shared<Endpoint>(*this, id);
        std::lock_guard lock(mu_);
        endpoints_[id] = e;
        return e;
    }

    // While held, nothing is delivered (see above).
    void hold(bool held) { held_.store(held); }

    // Buffers handed to the network, and delivery-thread wakeups, so far.
    std::uint64_t buffers() const { return buffers_.load(std::memory_order_relaxed); }
    std::uint64_t wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

private:
    void carry(Endpoint::Job job) {
        buffers_.fetch_add(1, std::memory_order_relaxed);
        std::shared_ptr<Endpoint> to;
        {
            std::lock_guard lock(mu_);
            if (auto it = endpoints_.find(job.to); it != endpoints_.end()) to = it->second.lock();
        }
        auto snapshot = job.snapshot;
        if (!held_.load() && to && to->enqueue(std::move(job))) return;
        // Dropped, as by a lossy network: Raft sends again.  (Not reported
        // through on_unreachable: send() may run under a group's core lock.)
        if (snapshot) snapshot->done(false);
    }

    std::mutex mu_;
    std::map<keel::NodeId, std::weak_ptr<Endpoint>> endpoints_;
    std::atomic<bool> held_{false};
    std::atomic<std::uint64_t> buffers_{0};
    std::atomic<std::uint64_t> wakeups_{0};
};

}  // namespace raft_bench
