// transport/inprocess_transport.hpp — a Transport between nodes of one
// process, for tests of the runtime: no sockets, but the same contract as
// TcpTransport (transport.hpp), plus fault controls on the hub.
//
// Every message still goes through the wire codec (encode, then decode on
// the way in), so a message the TCP transport could not carry fails here
// too.  Delivery is asio::post onto the receiver's io_context, so messages
// between two nodes arrive in send order, on the receiver's thread.  A
// snapshot is "streamed" by copying the source file into the receiver's
// staging directory (fsynced, like TCP) before on_snapshot.
//
// Faults: links can be blocked one way, nodes isolated or split into
// partitions, and messages dropped at random (seeded).  A message lost to a
// fault vanishes silently, like a packet on a broken network; one to a peer
// that is not registered, or beyond the receiver's in-flight limit, is
// dropped and reported through on_unreachable, like a refused connection.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "transport/codec.hpp"
#include "transport/transport.hpp"

namespace boost::asio {
class io_context;
}

namespace keel::transport {

// Connects InProcessTransports.  Thread-safe: its fault controls may be
// called from any thread, and transports on different io_contexts (and
// threads) may share it.  Must outlive every transport registered with it.
class InProcessHub {
public:
    explicit InProcessHub(std::uint64_t seed = 1) : rng_(seed) {}

    void block(NodeId from, NodeId to);  // one direction
    void unblock(NodeId from, NodeId to);
    // Cuts every link between `side` and the other nodes (both ways); nodes
    // on the same side keep talking.  Replaces any earlier partition.
    void partition(const std::vector<NodeId>& side);
    void isolate(NodeId node) { partition({node}); }
    void heal();  // undoes block, partition and the drop rate
    // Each message (and snapshot) is lost with this probability.
    void set_drop_rate(double probability);

    std::uint64_t delivered() const { return delivered_.load(); }
    std::uint64_t lost() const { return lost_.load(); }

    // The receiving side of one registered transport.  Shared with the
    // handlers posted to it; `running` is only flipped on its own thread.
    struct Endpoint {
        NodeId id = raft::kNoNode;
        boost::asio::io_context* io = nullptr;
        TransportHandler handler;
        std::string staging_dir;
        std::size_t in_flight_messages_max = 0;
        std::atomic<std::size_t> in_flight{0};  // posted, not yet run
        std::atomic<bool> running{true};
    };

private:
    friend class InProcessTransport;

    enum class Route { deliver, lost, unknown };
    Status add(std::shared_ptr<Endpoint> endpoint);
    void remove(NodeId id);
    // Where a message from `from` to `to` goes now; `endpoint` set on deliver.
    Route route(NodeId from, NodeId to, std::shared_ptr<Endpoint>& endpoint);
    std::uint64_t next_staging_seq() { return staging_seq_.fetch_add(1); }

    mutable std::mutex mu_;
    std::map<NodeId, std::shared_ptr<Endpoint>> endpoints_;  // GUARDED_BY(mu_)
    std::set<std::pair<NodeId, NodeId>> blocked_;            // GUARDED_BY(mu_)
    std::set<NodeId> partition_side_;                        // GUARDED_BY(mu_)
    double drop_rate_ = 0.0;                                 // GUARDED_BY(mu_)
    std::mt19937_64 rng_;                                    // GUARDED_BY(mu_)
    std::atomic<std::uint64_t> delivered_{0};
    std::atomic<std::uint64_t> lost_{0};
    std::atomic<std::uint64_t> staging_seq_{1};
};

struct InProcessTransportOptions {
    NodeId self = raft::kNoNode;
    std::string staging_dir;  // where received snapshots are copied; empty: refused
    CodecLimits limits;
    // Messages posted to this node and not yet handled; beyond it senders
    // drop and report unreachable (the in-process twin of the TCP queue).
    std::size_t in_flight_messages_max = 4096;
};

// Threading: as transport.hpp — every call on `io`'s thread, callbacks there.
class InProcessTransport final : public Transport {
public:
    InProcessTransport(InProcessHub& hub, boost::asio::io_context& io,
                       InProcessTransportOptions options, TransportHandler handler);
    ~InProcessTransport() override;
    InProcessTransport(const InProcessTransport&) = delete;
    InProcessTransport& operator=(const InProcessTransport&) = delete;

    // Registers with the hub; invalid_argument if the id is taken.
    Status start() override;
    void stop() override;
    void set_peer(NodeId id, std::string address) override;  // address ignored
    void remove_peer(NodeId id) override;
    void send(std::vector<raft::Message> messages) override;
    void send_snapshot(raft::Message message, SnapshotSource source) override;

private:
    void post_to_self(std::function<void(const TransportHandler&)> callback);
    void report_unreachable(NodeId id);

    InProcessHub& hub_;
    const InProcessTransportOptions options_;
    std::shared_ptr<InProcessHub::Endpoint> self_;
    std::set<NodeId> peers_;
    bool started_ = false;
    bool stopped_ = false;
};

}  // namespace keel::transport
