// runtime/group_router.hpp — one process's keel::Transport shared by the
// Raft groups it hosts: the single TransportSink the transport delivers to,
// handing each delivery to the sink of the group its GroupId names, and the
// per-group keel::Transport (link()) each group's MessageChannel talks
// through.
//
// Inbound: a delivery for a group that is attached goes to that group's
// sink; for a group that was attached and has left, it is dropped (as a
// stopped node drops it); for a group this process never served, it is
// refused (kRejectedUnknownGroup: counted, reported through the hook, and
// answered with an error Status, which closes a TCP connection), except
// from a process peer (below), whose bytes are counted and dropped: its
// connection carries every group's traffic, and a group a Host opens later
// is unknown until then.  Nothing a peer sends reaches an assertion.
//
// The process's own traffic: a delivery on kLivenessGroup (reserved; no
// group may attach to it) is a liveness ping, handed to the process's
// liveness (process_liveness.hpp), and every delivery tells it that its
// sender was heard.
//
// Outbound: a link sends under its own group id.  Peers are the process's,
// not a group's: the transport is told about a member while at least one
// group has it (the last group's address wins), and told to forget it when
// no group has it any more.  With process peers (a keel::Host on keel's TCP
// transport: host_peers.hpp) the transport is told the process's peers
// instead (at start, then add_process_peer/remove_process_peer), and the
// groups' addresses are not used: a group's set_peer/remove_peer only
// records which groups have which member, whether or not it is a process
// peer yet (a process added later is then known to the groups that have
// it), and peer_ids/has_peers count only the process peers (the others
// cannot be reached).
//
// Coalescing (set_coalescing: a keel::Host, on any transport):
// a link's send() on the I/O thread is queued per peer instead
// (coalesced_frames.hpp), and one task posted behind the work the I/O
// thread has queued hands the transport one buffer per peer, on
// kCoalescedGroup when it holds several groups' frames; a link's send_now
// declines while anything is queued for its peer, so nothing overtakes.
// A buffer delivered on kCoalescedGroup is checked whole (split_coalesced;
// refused and counted as `malformed` otherwise), then its frames go to
// their groups: at once on the I/O thread, else after one post to it for
// all of them (at most kCoalescedPostedBytesMax bytes waiting; beyond:
// refused as busy, counted as `overloaded`).  A drop reported on
// kCoalescedGroup is reported to every group that has the peer.
//
// Owns: the transport, once started (ProcessServices owns the router).
// Threads: start/stop before the groups open and after they all left; the
// TransportSink calls from any thread (the transport's contract); a link's
// start from any thread; stop from any thread but from inside a delivery
// to its own group, and on the I/O thread once the group has set peers (the
// members only that group had are removed from the transport there); a
// link's other calls as a MessageChannel makes them (set_peer/remove_peer
// on the I/O thread); add_process_peer/remove_process_peer on the I/O
// thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "keel/transport.hpp"
#include "runtime/coalesced_frames.hpp"
#include "runtime/thread_annotations.hpp"

namespace keel::runtime {

class ProcessLiveness;

// Bytes for a group this process does not serve.
inline constexpr std::string_view kRejectedUnknownGroup = "unknown_group";
// Bytes of coalesced buffers delivered from other threads waiting for the
// I/O thread.
inline constexpr std::size_t kCoalescedPostedBytesMax = 2 * kTransportBufferBytesMax;

class GroupRouter final : public TransportSink {
public:
    // A refusal: `reason` is the metrics label, `detail` the log line.  Any
    // thread.
    using RejectionHook = std::function<void(std::string_view reason, std::string_view detail)>;

    GroupRouter() = default;
    // REQUIRES: stopped, or never started; no group attached.
    ~GroupRouter() override;
    GroupRouter(const GroupRouter&) = delete;
    GroupRouter& operator=(const GroupRouter&) = delete;

    // Starts `transport` delivering to this router.  Once.  With
    // `process_peers` set, the transport is told them here, and only the
    // process's peers from then on reach it (above).
    Status start(std::shared_ptr<Transport> transport, RejectionHook on_rejected,
                 std::optional<std::map<NodeId, std::string>> process_peers = std::nullopt);
    bool started() const { return transport_ != nullptr; }
    // Stops the transport (no delivery after it returns).  Idempotent.
    // REQUIRES: every group has left.
    void stop();

    // The transport group `group`'s MessageChannel uses: its start() attaches
    // the channel's sink (refused if the group is attached already), its
    // stop() detaches it, waiting out a delivery to it in progress, and
    // removes the members no other group has.
    // REQUIRES: started().  The router outlives the link.
    std::shared_ptr<Transport> link(GroupId group);

    // The process's I/O thread: whether the caller is on it, and how to run
    // work there.  Before start(); needed by coalescing (without it,
    // coalesced input is handled on the delivering thread).
    struct IoThread {
        std::function<bool()> on_io_thread;
        std::function<void(std::function<void()>)> post;
    };
    void set_io(IoThread io) { io_ = std::move(io); }
    // Coalesces the groups' sends (above).  Before start(); needs set_io.
    void set_coalescing(bool on) { coalescing_ = on; }

    // Where liveness pings go and whom deliveries tell (never null once set).
    // Before start().
    void set_liveness(ProcessLiveness* liveness) { liveness_ = liveness; }
    // The process's own send (the liveness ping), on `group` (I/O thread).
    void send_process(GroupId group, NodeId to, std::string bytes);
    // Counts a refusal of the process's own input like the router's (any thread).
    void report_rejection(std::string_view reason, std::string_view detail);
    // The peer processes some group has as a member, and the groups that
    // have `peer` (any thread).
    std::set<NodeId> peer_ids() const EXCLUDES(peers_mu_);
    bool has_peers() const EXCLUDES(peers_mu_);
    std::vector<GroupId> groups_with(NodeId peer) const EXCLUDES(peers_mu_);

    // With process peers (start's `process_peers`): the transport reaches
    // `id` at `address` from now on (replacing its address if it had one),
    // or no longer reaches it.  I/O thread (the transport's calls).  The
    // caller (host.cpp) validates: the ids and addresses are the Host's.
    void add_process_peer(NodeId id, const std::string& address) EXCLUDES(peers_mu_);
    void remove_process_peer(NodeId id) EXCLUDES(peers_mu_);

    // Deliveries refused as kRejectedUnknownGroup (any thread).
    std::uint64_t unknown_group_deliveries() const { return unknown_group_.load(); }

    // TransportSink (any thread).
    Status on_messages(GroupId group, NodeId from, std::string_view bytes) override;
    Status on_snapshot_chunk(GroupId group, NodeId from, std::string_view bytes) override;
    void on_unreachable(GroupId group, NodeId to) override;
    void on_disconnected(GroupId group, NodeId from) override;

private:
    class Link;
    struct Slot {
        TransportSink* sink = nullptr;
        int calls = 0;         // deliveries in progress into `sink`
        bool leaving = false;  // detach() waits out `calls`
    };
    struct Peer {
        std::string address;
        std::set<GroupId> groups;  // the groups that have this member
    };

    Status attach(GroupId group, TransportSink& sink) EXCLUDES(mu_);
    void detach(GroupId group) EXCLUDES(mu_);
    void set_peer(GroupId group, NodeId id, const std::string& address) EXCLUDES(peers_mu_);
    void remove_peer(GroupId group, NodeId id) EXCLUDES(peers_mu_);
    // Runs `deliver(sink)` for `group`'s sink, or answers for a group that
    // is not attached: ok (dropped) if it left, else `unknown` (refused and
    // counted when `from` is a peer's input).
    template <typename Deliver>
    Status dispatch(GroupId group, NodeId from, bool peer_input, Deliver&& deliver) EXCLUDES(mu_);
    Status refuse_unknown(GroupId group, NodeId from);
    // Coalescing (above).  queue_send and flush_sends on the I/O thread;
    // send_pending from any thread.
    void queue_send(GroupId group, NodeId to, std::string bytes) EXCLUDES(out_mu_);
    bool send_pending(NodeId to) const EXCLUDES(out_mu_);
    void flush_sends() EXCLUDES(out_mu_);
    Status on_coalesced(NodeId from, std::string_view bytes);
    Status deliver_coalesced(NodeId from, const std::vector<CoalescedFrame>& frames);

    std::shared_ptr<Transport> transport_;  // set by start(), before any delivery
    // Set by start(): whether the process's peers, not the groups' members,
    // are what the transport reaches (above).
    bool process_mode_ = false;
    RejectionHook on_rejected_;
    ProcessLiveness* liveness_ = nullptr;  // set before start()
    bool stopped_ = false;

    Mutex mu_;
    CondVar left_;  // a slot's calls reached zero
    // Hashed: every frame of every coalesced buffer looks its group up here,
    // and a tree of thousands of groups is a chain of cache misses (decision
    // 0036).  Node-based: a Slot stays where it is while others come and go.
    std::unordered_map<GroupId, Slot> slots_ GUARDED_BY(mu_);
    std::set<GroupId> departed_ GUARDED_BY(mu_);

    mutable Mutex peers_mu_;
    std::map<NodeId, Peer> peers_ GUARDED_BY(peers_mu_);
    // With process_mode_: the process's peers (id -> address), the only ones
    // the transport is told about.
    std::map<NodeId, std::string> process_peers_ GUARDED_BY(peers_mu_);

    std::atomic<std::uint64_t> unknown_group_{0};

    IoThread io_;
    bool coalescing_ = false;
    mutable Mutex out_mu_;
    CoalescingOutbox outbox_ GUARDED_BY(out_mu_);
    // flush_sends has taken the outbox and is handing it to the transport.
    bool flushing_ GUARDED_BY(out_mu_) = false;
    std::atomic<std::size_t> posted_bytes_{0};
};

}  // namespace keel::runtime
