// keel/transport.hpp — how a node reaches the other members: the interface
// an application implements to carry keel's traffic over its own RPC layer
// (NodeOptions::transport).  keel's built-in TCP transport is one
// implementation of it, and the default.
//
// A transport moves opaque bytes.  keel encodes Raft messages and snapshot
// chunks itself (its wire codec: versioned, checksummed, bounded) and hands
// the transport buffers to deliver, unchanged and in order, to the member
// they are for; on the receiving side the transport hands what arrived to
// the node's TransportSink.  The transport never needs to look inside.
//
// Delivery is best effort: a buffer may be dropped, delivered late or twice
// across a reconnect — Raft tolerates all of that — but buffers from one
// member to another must arrive in the order they were sent, unless some
// are dropped in between.  Report what could not be delivered
// (TransportSink::on_unreachable): Raft then slows down replication to that
// member instead of streaming into the void.
//
// What keel's TCP transport does that an application transport must do
// itself:
//   * Authentication.  keel trusts `from` in every delivery: a transport
//     must deliver only bytes that member really sent.  keel's TCP
//     transport proves it with mutual TLS (NodeOptions::peer_tls) and the
//     hello of every connection; NodeOptions::peer_tls, listen_address and
//     peer_insecure are ignored with an application transport.
//   * Cluster identity.  keel's TCP transport refuses connections from
//     another cluster (NodeOptions::cluster_id).  An application transport is
//     trusted to connect only members of this cluster; keel learns no
//     cluster id through it (give a joiner NodeOptions::cluster_id).
//   * Addresses.  keel tells the transport where each member is
//     (set_peer: MemberSpec::raft_address, whatever string the application
//     put there).  keel's TCP transport also answers a peer at the address
//     its hello gives when the configuration does not place it yet (a
//     joiner answering the leader that added it); an application transport
//     must reach every member by id (a joiner: give it the members in
//     NodeOptions::initial_members).
//   * Confidentiality, connection limits, timeouts, reconnects and
//     backoff: all the transport's.
// What keel does whatever the transport: everything delivered is untrusted
// input.  keel decodes it with its own codec and limits, refuses what is
// malformed, truncated, oversized or misaddressed (counted in
// NodeStatus::peer_messages_rejected, by reason), and never acts on it; a
// snapshot is staged in a file and checked against its checksums before it
// is installed.
//
// Threading contract:
//   * keel calls start() once, from Node::open, and stop() once, from the
//     node's shutdown; the other functions between the two, from keel's I/O
//     thread, one at a time — except send_now(), which other keel threads
//     call (see there).  No call blocks for long: queue, and send later.
//   * The transport may call the sink and OutgoingSnapshot::done() from any
//     thread, concurrently, at any time between start() and the return of
//     stop() — even from inside a call keel made into it.  keel takes what
//     arrives on another thread over to its I/O thread (a copy of the
//     bytes), so the sink's functions are quick and never block on the
//     network; they may do bounded disk I/O (a snapshot chunk is written to
//     its staging file on the calling thread).
//   * stop() must not return while a call into the sink is in progress on
//     another thread, and nothing may call the sink after it returns.
//
// Groups: every call carries a GroupId so that many Raft groups can share
// one connection.  A node today is one group, 0: a transport passes the
// group it was given back on the other side unchanged.  A keel::Host with
// many groups also sends buffers on kCoalescedGroup: several groups'
// messages for one peer process in one buffer (a transport need not know:
// it carries them like any other group's, and on_unreachable reports them on
// that group too).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "keel/status.hpp"

namespace keel {

using NodeId = std::uint64_t;  // as in keel/options.hpp
// Which Raft group a buffer belongs to; 0 today.
using GroupId = std::uint64_t;
// Reserved: a buffer of several groups' messages (see "Groups" above).  No
// Raft group may use it.
inline constexpr GroupId kCoalescedGroup = ~GroupId{0} - 1;

// The most bytes keel passes in one send() buffer or one snapshot chunk,
// and the most it accepts in one delivery (a buffer of small messages is
// far smaller): a transport may size its own frames by it.
inline constexpr std::size_t kTransportBufferBytesMax = 64 * 1024 * 1024 + 64 * 1024;

// One piece of a snapshot on its way to a member.
struct SnapshotChunk {
    // Opaque: deliver it unchanged, in order, to the member's
    // TransportSink::on_snapshot_chunk.
    std::string bytes;
    // Where this chunk's data starts in the snapshot, and whether it is the
    // final chunk: for a transport that wants to show progress or retry a
    // stream (from offset 0: keel restarts a stream there).
    std::uint64_t offset = 0;
    bool last = false;
};

// A snapshot keel sends to one member (Transport::send_snapshot): the
// transport pulls its chunks, in order, as fast as its link takes them.
class OutgoingSnapshot {
public:
    virtual ~OutgoingSnapshot() = default;
    // Total bytes of the snapshot's data (the chunks' bytes are a little
    // more: each is framed).
    virtual std::uint64_t size_bytes() const = 0;
    // The next chunk, read from keel's snapshot file (one bounded blocking
    // read).  Not after the chunk with `last` set.  An error: the file
    // cannot be read; abort the stream (done(false)).  One thread at a time.
    virtual Result<SnapshotChunk> next_chunk() = 0;
    // Ends the stream, exactly once: true when every chunk, the last
    // included, was handed to the member's side (not an acknowledgement:
    // the member answers through Raft), false when it was aborted (link
    // lost, peer removed, a newer snapshot for the same member).  Any
    // thread.  Dropping the object without calling it counts as false.
    virtual void done(bool delivered) = 0;
};

// The node's receiving side, given to Transport::start.  Every function may
// be called from any thread (see the threading contract above).  A refusal
// (a Status that is not ok) means the input was bad and is already counted:
// the transport may drop its link from that member (keel's TCP transport
// closes the connection); `busy` means keel's queue from other threads is
// full and the input was dropped: slow down.
class TransportSink {
public:
    virtual ~TransportSink() = default;
    // Bytes `from` gave its transport's send() (for this node, in `group`).
    virtual Status on_messages(GroupId group, NodeId from, std::string_view bytes) = 0;
    // A chunk of a snapshot `from` sends (SnapshotChunk::bytes), in order.
    virtual Status on_snapshot_chunk(GroupId group, NodeId from, std::string_view bytes) = 0;
    // Buffers for `to` were dropped (link down, queue full, unknown peer).
    virtual void on_unreachable(GroupId group, NodeId to) = 0;
    // The link from `from` was lost: a snapshot it was streaming will not
    // complete (keel deletes the partial file now rather than when the
    // member starts the next one).  Optional.
    virtual void on_disconnected(GroupId group, NodeId from) = 0;
};

class Transport {
public:
    virtual ~Transport() = default;

    // Starts the transport: from now on it delivers to `sink`, which stays
    // valid until stop() returns.  Called once, before any other call.
    virtual Status start(TransportSink& sink) = 0;
    // Closes every link and drops everything queued.  No sink call after it
    // returns (see the threading contract); an outgoing snapshot not done
    // is done(false).  Called once.
    virtual void stop() = 0;

    // Adds a member, or changes where it is (the address the application
    // put in MemberSpec::raft_address).  For `group` 0 today.
    virtual void set_peer(NodeId id, const std::string& address) = 0;
    // Forgets a member: drops what is queued for it and aborts its
    // outgoing snapshot.
    virtual void remove_peer(NodeId id) = 0;

    // Queues `bytes` for `to` (one batch of messages; see
    // kTransportBufferBytesMax) without blocking.  What cannot be delivered
    // is dropped and reported through on_unreachable.
    virtual void send(GroupId group, NodeId to, std::string bytes) = 0;
    // An optional fast path, called from keel threads other than the I/O
    // thread (a proposer, the WAL's flusher), one at a time per transport,
    // and only when nothing keel passed to send() is still on its way to
    // it.  If the link to `to` can take bytes now without blocking and
    // without overtaking anything queued, call encode() once (keel builds
    // the batch only then), send what it returns (nothing if empty) and
    // return true; else return false without calling it, and keel passes
    // the batch to send() on its I/O thread.  The default never takes any.
    virtual bool send_now(GroupId group, NodeId to, const std::function<std::string()>& encode) {
        (void)group, (void)to, (void)encode;
        return false;
    }
    // Streams `snapshot` to `to`: next_chunk() until the last, each chunk
    // delivered in order to the member's on_snapshot_chunk, then
    // snapshot->done().  A newer snapshot for the same member replaces
    // (aborts) this one.  Messages to `to` keep flowing meanwhile.
    virtual void send_snapshot(GroupId group, NodeId to,
                               std::shared_ptr<OutgoingSnapshot> snapshot) = 0;
};

}  // namespace keel
