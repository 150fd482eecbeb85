// transport/message_channel.hpp — keel's side of a keel::Transport: Raft
// messages and snapshot files in, opaque buffers out, and back.
//
// Outbound, it encodes each peer's messages into messages frames of its
// group (codec.hpp) of at most batch_bytes_max (a larger message gets a frame of
// its own; one that breaks a codec limit is dropped and its peer reported
// unreachable: the peer would refuse it), and hands the transport one frame
// per send(), or, on the fast path (send_now), one buffer per peer.  A
// snapshot goes as a SnapshotSender the transport pulls chunks from.
//
// Inbound, it is the TransportSink: it trusts nothing it is handed.  Each
// buffer is decoded frame by frame with the codec's limits; a frame that
// does not decode (malformed), a message not from the member the transport
// names or not for this node, a frame of another group than the one it is
// delivered as or than this channel's (misaddressed), a snapshot message outside a
// snapshot stream (wrong_frame_kind), a stream that breaks its offsets or
// the size limit (snapshot) are refused, reported through on_rejected with
// the reason's name (rejection.hpp), and answered with an error Status; what
// a frame holds is delivered only once the whole frame has passed.
//
// Threading.  The owner is one thread (keel's I/O thread): every handler
// runs there, and every call below but send_now() is made there.  What the
// transport delivers on the owner thread is handled at once; what it
// delivers on another thread, or from inside a call this channel made into
// it, is copied and posted to the owner thread (Executor), at most
// posted_bytes_max bytes waiting at a time (beyond: refused as busy,
// counted as overloaded).  Outbound reports (on_unreachable, on_snapshot_sent) are
// always posted, so that no handler runs inside a call into the channel.
// Without an Executor everything runs inline (tests on one thread).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "keel/status.hpp"
#include "keel/transport.hpp"
#include "raft/types.hpp"
#include "transport/codec.hpp"
#include "transport/diagnostics.hpp"
#include "transport/rejection.hpp"
#include "transport/snapshot_receiver.hpp"
#include "transport/snapshot_sender.hpp"

namespace keel::transport {

// Bytes delivered from other threads waiting for the owner thread.
inline constexpr std::size_t kPostedBytesMax = 2 * kTransportBufferBytesMax;

struct MessageChannelOptions {
    NodeId self = raft::kNoNode;
    GroupId group = 0;
    CodecLimits limits;
    std::size_t batch_bytes_max = 1024 * 1024;       // target size of one messages frame
    std::size_t snapshot_chunk_bytes = 1024 * 1024;  // <= limits.chunk_bytes_max
    std::uint64_t snapshot_bytes_max = std::uint64_t{64} << 30;  // refused above (both sides)
    // Where incoming snapshots are staged (created with the first stream
    // if it does not exist).  Empty: incoming snapshots are refused.
    std::string staging_dir;
    // Bytes delivered from other threads waiting for the owner thread.
    std::size_t posted_bytes_max = kPostedBytesMax;
};

class MessageChannel : public TransportSink {
public:
    struct Handlers {
        // A message from a peer (its `from` checked against the sender the
        // transport named).  Never a snapshot message.
        std::function<void(raft::Message)> on_message;
        // A whole snapshot arrived: its data is in `path`, fsynced, in the
        // staging directory; `message` is the raft snapshot message (meta
        // set).  The file now belongs to the handler.
        std::function<void(raft::Message message, std::string path)> on_snapshot;
        std::function<void(NodeId)> on_unreachable;
        // The stream started by send_snapshot ended (TransportSink's
        // OutgoingSnapshot::done): ok = handed to the peer's side.
        std::function<void(NodeId, bool ok)> on_snapshot_sent;
        // Input refused before Raft saw it: `reason` is the metrics label
        // (rejection_name), `detail` the log line.
        std::function<void(std::string_view reason, std::string_view detail)> on_rejected;
        std::function<void(LogLevel, std::string_view)> log;
    };
    // How to reach the owner thread (see the header comment).
    struct Executor {
        std::function<bool()> on_owner_thread;
        std::function<void(std::function<void()>)> post;
    };

    MessageChannel(std::shared_ptr<Transport> transport, MessageChannelOptions options,
                   Handlers handlers, Executor executor = {});
    ~MessageChannel() override;
    MessageChannel(const MessageChannel&) = delete;
    MessageChannel& operator=(const MessageChannel&) = delete;

    // Deletes staging leftovers and starts the transport (Transport::start).
    Status start();
    // Stops the transport; partial incoming snapshots are deleted.  No
    // handler runs after it returns.  Idempotent.
    void stop();

    void set_peer(NodeId id, std::string address);
    void remove_peer(NodeId id);
    // Encodes and hands each peer's messages to the transport.
    void send(std::vector<raft::Message> messages);
    // Any thread but the owner, when nothing passed to send() is still on
    // its way to it (the caller keeps that order): each peer's messages the
    // transport takes at once (Transport::send_now) are removed from
    // `messages`; the rest stay, in order, for send().
    void send_now(std::vector<raft::Message>& messages);
    // Streams the snapshot file at `path` then `message` (type snapshot) to
    // message.to; on_snapshot_sent reports the end.
    void send_snapshot(raft::Message message, std::string path);

    Transport& transport() { return *transport_; }

    // TransportSink (any thread).
    Status on_messages(GroupId group, NodeId from, std::string_view bytes) override;
    Status on_snapshot_chunk(GroupId group, NodeId from, std::string_view bytes) override;
    void on_unreachable(GroupId group, NodeId to) override;
    void on_disconnected(GroupId group, NodeId from) override;

private:
    enum class Delivery { messages, snapshot_chunk, disconnected };
    // Whether input may be handled on the calling thread now.
    bool inline_ok() const;
    Status post_delivery(Delivery kind, GroupId group, NodeId from, std::string_view bytes);
    // Runs `f` on the owner thread later (inline without an Executor).
    void post(std::function<void()> f);
    Status deliver_messages(GroupId group, NodeId from, std::string_view bytes);
    Status deliver_chunk(GroupId group, NodeId from, std::string_view bytes);
    Status refuse(Rejection reason, NodeId from, const std::string& detail);
    void drop_partial_snapshot(GroupId group, NodeId from);
    Status check_message(const raft::Message& m, NodeId from) const;
    // The frames for `messages` (all to one peer), batched; offenders
    // dropped and their peer reported unreachable.
    // Nearly always one frame: kept inline, as are the destinations and a
    // peer's messages in send(), which runs for every batch a replica sends
    // (decision 0050).
    using Frames = boost::container::small_vector<std::string, 2>;
    void encode_for_peer(std::span<const raft::Message* const> messages, Frames& frames);
    void log(LogLevel level, const std::string& line) const;

    const std::shared_ptr<Transport> transport_;
    const MessageChannelOptions options_;
    const Handlers handlers_;
    const Executor executor_;
    // Shared with posted work, which runs only while it is true (set false
    // by stop(), on the owner thread).
    std::shared_ptr<std::atomic<bool>> open_;
    bool started_ = false;
    bool stopped_ = false;
    SnapshotReceiver receiver_;  // owner thread
    std::uint64_t next_snapshot_id_ = 1;
    std::atomic<std::size_t> posted_bytes_{0};
    // The frame deliver_messages decodes into, its batch's capacity reused
    // frame after frame (decision 0050): only with an Executor that posts
    // and names its owner thread (every delivery then runs there), and not
    // by a delivery inside another (decoding_).  Owner thread.
    Frame decoded_;
    bool decoding_ = false;
};

}  // namespace keel::transport
