// transport/transport.hpp — how the runtime sends Raft messages and snapshots
// to other members, and how it hears from them.
//
// Delivery is best effort: messages may be dropped, duplicated across a
// reconnect, or arrive late — Raft tolerates all of that.  A transport
// never blocks the caller and never throws; what it cannot deliver it
// drops and reports through on_unreachable.  Messages to one peer arrive in
// the order they were sent, unless some are dropped in between.
//
// Threading contract (every implementation):
//   * A transport runs on one asio::io_context owned by the runtime, which
//     owns the thread(s) running it.  Every member function must be called
//     from that thread (from a handler it runs), or before the io_context
//     runs / after it stopped.  None is thread-safe.
//   * Every TransportHandler callback is invoked from a handler running on
//     that io_context, and never from inside a call into the transport (so
//     a callback may call send() or stop() without re-entrancy surprises).
//   * After stop() returns no callback is invoked any more.  Calls before
//     start() or after stop() drop their messages without any callback.
//   * `log` is the exception: it may be called from inside any call, and
//     must not call back into the transport.
//   * Snapshot files are read and written on the io_context thread with
//     blocking calls, one bounded chunk at a time (plus one fsync per
//     received snapshot).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.hpp"
#include "raft/types.hpp"
#include "transport/cluster_id.hpp"
#include "transport/rejection.hpp"

namespace keel::transport {

using raft::NodeId;

// Where the sender reads a snapshot's data: a complete, immutable file.  The
// transport opens it when the stream starts and reads it in chunks on the
// io_context thread; the file must stay unchanged until on_snapshot_sent.
struct SnapshotSource {
    std::string path;
};

// error: something an operator must fix (a peer refuses our certificate).
enum class LogLevel : std::uint8_t { debug = 1, info = 2, warning = 3, error = 4 };

// Callbacks into the runtime.  Any of them may be empty (then ignored).
struct TransportHandler {
    // A message from a peer (its `from` is the authenticated sender).
    std::function<void(raft::Message)> on_message;
    // A whole snapshot arrived: its data is in `snapshot_file_path`, fsynced,
    // in the transport's staging directory; `message` is the raft snapshot
    // message (type snapshot, meta set).  The file now belongs to the
    // runtime, which moves or deletes it.
    std::function<void(raft::Message message, std::string snapshot_file_path)> on_snapshot;
    // Messages to this peer were dropped (queue full, connection failed,
    // peer unknown).  Raft uses it to slow down (probe) replication.
    std::function<void(NodeId)> on_unreachable;
    // The snapshot stream started by send_snapshot ended: ok = every byte was
    // handed to the network (not an acknowledgement: the follower answers
    // with an append_response), false = it was aborted.
    std::function<void(NodeId, bool ok)> on_snapshot_sent;
    // Diagnostics (a closed connection, a failed connect).  The library
    // never logs by itself.
    std::function<void(LogLevel, std::string_view)> log;
    // A connection or frame from outside refused before reaching Raft
    // (rejection.hpp): `detail` says what and from where.  When empty the
    // transport logs the refusal as a warning instead.
    std::function<void(Rejection reason, std::string_view detail)> on_rejected;
    // Only for a transport started without a cluster id (a joiner that has
    // not heard from its cluster yet): the id in the first valid hello, from
    // node `from`.  Make it durable and return ok to adopt it (nothing from
    // that connection is delivered before), or an error to refuse the
    // connection.  Adopted at most once; empty: such hellos are refused.
    std::function<Status(const ClusterId& id, NodeId from)> on_cluster_id;
    // A peer said hello: node `from` says it listens at `address` (printable
    // ASCII, possibly empty).  Called once per identified connection, before
    // anything that connection carries is delivered.  Unauthenticated beyond
    // what the connection is (a CA-signed certificate under TLS): the
    // runtime uses it only for ids its configuration does not place.
    std::function<void(NodeId from, std::string_view address)> on_hello;
};

class Transport {
public:
    virtual ~Transport() = default;

    // Starts accepting peers (and, for TCP, listening).  Call once.
    virtual Status start() = 0;
    // Closes every connection and drops everything queued; partial incoming
    // snapshots are deleted.  No callback runs after it returns.  Idempotent.
    virtual void stop() = 0;

    // Adds a peer, or changes its address (the current connection is closed
    // and queued messages dropped).  Addresses are "host:port" for TCP.
    virtual void set_peer(NodeId id, std::string address) = 0;
    // Forgets a peer: closes its connection, drops its queue, aborts its
    // outgoing snapshot (on_snapshot_sent(id, false)).
    virtual void remove_peer(NodeId id) = 0;

    // Queues each message for message.to (batched per peer, non-blocking).
    // Messages to unknown peers or beyond a peer's queue limit are dropped
    // and reported through on_unreachable.
    virtual void send(std::vector<raft::Message> messages) = 0;
    // Streams `source` to message.to in chunks, followed by `message`
    // (type snapshot).  A new snapshot to the same peer aborts the previous
    // one.  Ends with exactly one on_snapshot_sent(message.to, ok).
    virtual void send_snapshot(raft::Message message, SnapshotSource source) = 0;
};

}  // namespace keel::transport
