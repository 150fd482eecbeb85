// transport/message_channel.cpp — see message_channel.hpp.
#include "transport/message_channel.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <utility>

namespace keel::transport {

namespace {

// The channel this thread is calling into its transport from, if any: what
// the transport delivers meanwhile is posted, never handled inside the call.
thread_local const MessageChannel* t_calling = nullptr;

class CallingTransport {
public:
    explicit CallingTransport(const MessageChannel* channel) : outer_(t_calling) {
        t_calling = channel;
    }
    ~CallingTransport() { t_calling = outer_; }
    CallingTransport(const CallingTransport&) = delete;
    CallingTransport& operator=(const CallingTransport&) = delete;

private:
    const MessageChannel* outer_;
};

// A group's members, inline (a larger group spills to the heap).
using Destinations = boost::container::small_vector<NodeId, 8>;
// One peer's share of a batch.
using PeerMessages = boost::container::small_vector<const raft::Message*, 16>;

// The distinct destinations of `messages`, in order of first appearance.
Destinations destinations(const std::vector<raft::Message>& messages) {
    Destinations peers;
    for (const raft::Message& m : messages)
        if (std::find(peers.begin(), peers.end(), m.to) == peers.end()) peers.push_back(m.to);
    return peers;
}

}  // namespace

MessageChannel::MessageChannel(std::shared_ptr<Transport> transport, MessageChannelOptions options,
                               Handlers handlers, Executor executor)
    : transport_(std::move(transport)),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      executor_(std::move(executor)),
      open_(std::make_shared<std::atomic<bool>>(false)),
      receiver_(options_.staging_dir, options_.snapshot_bytes_max) {
    KEEL_ASSERT(transport_ != nullptr, "a channel needs a transport");
    KEEL_ASSERT(options_.self != raft::kNoNode, "a channel needs its own node id");
    KEEL_ASSERT(options_.snapshot_chunk_bytes > 0 &&
                    options_.snapshot_chunk_bytes <= options_.limits.chunk_bytes_max,
                "snapshot chunks must fit the codec's chunk limit");
    KEEL_ASSERT(options_.limits.frame_bytes_max <= kTransportBufferBytesMax,
                "a frame must fit in a transport buffer");
    KEEL_ASSERT(options_.batch_bytes_max + 64 <= options_.limits.frame_bytes_max,
                "a full batch must fit in one frame");
}

MessageChannel::~MessageChannel() {
    stop();
}

Status MessageChannel::start() {
    KEEL_ASSERT(!started_, "a channel starts once");
    started_ = true;
    receiver_.remove_leftovers();
    open_->store(true);
    CallingTransport calling(this);
    Status s = transport_->start(*this);
    if (!s.ok()) open_->store(false);
    return s;
}

void MessageChannel::stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    open_->store(false);
    {
        CallingTransport calling(this);
        transport_->stop();
    }
    receiver_.clear();
}

void MessageChannel::set_peer(NodeId id, std::string address) {
    if (stopped_) return;
    CallingTransport calling(this);
    transport_->set_peer(id, address);
}

void MessageChannel::remove_peer(NodeId id) {
    if (stopped_) return;
    CallingTransport calling(this);
    transport_->remove_peer(id);
}

void MessageChannel::log(LogLevel level, const std::string& line) const {
    if (handlers_.log) handlers_.log(level, line);
}

void MessageChannel::post(std::function<void()> f) {
    if (!executor_.post) return f();
    executor_.post([open = open_, f = std::move(f)] {
        if (open->load()) f();
    });
}

// ---- outbound ----

void MessageChannel::encode_for_peer(std::span<const raft::Message* const> messages,
                                     Frames& frames) {
    const CodecLimits& limits = options_.limits;
    std::size_t i = 0;
    while (i < messages.size()) {
        std::size_t j = i;
        std::size_t bytes = 0;
        while (j < messages.size() && j - i < limits.messages_per_batch_max) {
            const std::size_t m = encoded_message_bytes(*messages[j]);
            if (j > i && bytes + m > options_.batch_bytes_max) break;
            bytes += m;
            ++j;
        }
        Result<std::string> frame =
            encode_message_pointers(messages.subspan(i, j - i), limits, options_.group);
        if (frame.ok()) {
            frames.push_back(std::move(*frame));
            i = j;
            continue;
        }
        // Some message breaks a codec limit: the others one per frame, the
        // offender dropped (the peer would refuse it and close the link).
        for (; i < j; ++i) {
            Result<std::string> one =
                encode_message_pointers(messages.subspan(i, 1), limits, options_.group);
            if (one.ok()) {
                frames.push_back(std::move(*one));
                continue;
            }
            const NodeId to = messages[i]->to;
            log(LogLevel::warning,
                fmt::format("dropping a message to node {}: {}", to, one.status().to_string()));
            post([this, to] {
                if (handlers_.on_unreachable) handlers_.on_unreachable(to);
            });
        }
    }
}

void MessageChannel::send(std::vector<raft::Message> messages) {
    if (!open_->load() || messages.empty()) return;
    PeerMessages mine;
    Frames frames;
    for (NodeId to : destinations(messages)) {
        mine.clear();
        for (const raft::Message& m : messages)
            if (m.to == to) mine.push_back(&m);
        frames.clear();
        encode_for_peer(std::span(mine.data(), mine.size()), frames);
        CallingTransport calling(this);
        for (std::string& frame : frames) transport_->send(options_.group, to, std::move(frame));
    }
}

void MessageChannel::send_now(std::vector<raft::Message>& messages) {
    if (!open_->load() || messages.empty()) return;
    const Destinations peers = destinations(messages);
    Destinations left;
    PeerMessages mine;
    for (NodeId to : peers) {
        mine.clear();
        for (const raft::Message& m : messages)
            if (m.to == to) mine.push_back(&m);
        auto encode = [this, &mine] {
            Frames frames;
            encode_for_peer(std::span(mine.data(), mine.size()), frames);
            if (frames.size() == 1) return std::move(frames[0]);
            std::string all;
            for (const std::string& f : frames) all += f;
            return all;
        };
        bool taken = false;
        {
            CallingTransport calling(this);
            taken = transport_->send_now(options_.group, to, encode);
        }
        if (!taken) left.push_back(to);
    }
    if (left.size() == peers.size()) return;
    std::vector<raft::Message> rest;
    for (raft::Message& m : messages)
        if (std::find(left.begin(), left.end(), m.to) != left.end()) rest.push_back(std::move(m));
    messages = std::move(rest);
}

void MessageChannel::send_snapshot(raft::Message message, std::string path) {
    if (!open_->load()) return;
    const NodeId to = message.to;
    // Done may come from any thread, even after the channel is gone (a
    // transport that drops the stream late): it only posts, while open.
    auto on_done = [open = open_, post = executor_.post, report = handlers_.on_snapshot_sent,
                    to](bool delivered) {
        if (!open->load() || !report) return;
        if (!post) return report(to, delivered);
        post([open, report, to, delivered] {
            if (open->load()) report(to, delivered);
        });
    };
    auto sender = SnapshotSender::open(std::move(message), path, options_.group,
                                       next_snapshot_id_++, options_.snapshot_chunk_bytes,
                                       options_.snapshot_bytes_max, options_.limits, on_done);
    if (!sender.ok()) {
        log(LogLevel::warning,
            fmt::format("snapshot for node {} not sent: {}", to, sender.status().to_string()));
        post([this, to] {
            if (handlers_.on_snapshot_sent) handlers_.on_snapshot_sent(to, false);
        });
        return;
    }
    CallingTransport calling(this);
    transport_->send_snapshot(options_.group, to, std::move(*sender));
}

// ---- inbound ----

bool MessageChannel::inline_ok() const {
    if (t_calling == this) return !executor_.post;
    return !executor_.on_owner_thread || executor_.on_owner_thread();
}

Status MessageChannel::post_delivery(Delivery kind, GroupId group, NodeId from,
                                     std::string_view bytes) {
    if (!open_->load()) return Status::ok_status();
    const std::size_t size = bytes.size();
    if (posted_bytes_.fetch_add(size) + size > options_.posted_bytes_max) {
        posted_bytes_.fetch_sub(size);
        const std::string detail = fmt::format(
            "from node {}: {} bytes dropped, past the {} bytes that may wait for keel's I/O thread",
            from, size, options_.posted_bytes_max);
        if (handlers_.on_rejected)
            handlers_.on_rejected(rejection_name(Rejection::overloaded), detail);
        return Status(ErrorCode::busy, detail);
    }
    post([this, kind, group, from, size, bytes = std::string(bytes)] {
        posted_bytes_.fetch_sub(size);
        switch (kind) {
            case Delivery::messages:
                (void)deliver_messages(group, from, bytes);
                break;
            case Delivery::snapshot_chunk:
                (void)deliver_chunk(group, from, bytes);
                break;
            case Delivery::disconnected:
                drop_partial_snapshot(group, from);
                break;
        }
    });
    return Status::ok_status();
}

Status MessageChannel::on_messages(GroupId group, NodeId from, std::string_view bytes) {
    if (!inline_ok()) return post_delivery(Delivery::messages, group, from, bytes);
    return deliver_messages(group, from, bytes);
}

Status MessageChannel::on_snapshot_chunk(GroupId group, NodeId from, std::string_view bytes) {
    if (!inline_ok()) return post_delivery(Delivery::snapshot_chunk, group, from, bytes);
    return deliver_chunk(group, from, bytes);
}

void MessageChannel::on_unreachable(GroupId group, NodeId to) {
    if (group != options_.group || !open_->load()) return;
    post([this, to] {
        if (handlers_.on_unreachable) handlers_.on_unreachable(to);
    });
}

void MessageChannel::on_disconnected(GroupId group, NodeId from) {
    if (!inline_ok()) {
        (void)post_delivery(Delivery::disconnected, group, from, {});
        return;
    }
    if (!stopped_) drop_partial_snapshot(group, from);
}

void MessageChannel::drop_partial_snapshot(GroupId group, NodeId from) {
    if (receiver_.abort(group, from))
        log(LogLevel::info,
            fmt::format("partial snapshot from node {} dropped with its connection", from));
}

Status MessageChannel::refuse(Rejection reason, NodeId from, const std::string& detail) {
    const std::string line = fmt::format("from node {}: {}", from, detail);
    if (handlers_.on_rejected) handlers_.on_rejected(rejection_name(reason), line);
    return Status(ErrorCode::corruption, fmt::format("{}: {}", rejection_name(reason), line));
}

// A message must come from the member the transport names, and be meant for
// us: anything else means a misconfigured address book (or a transport that
// mixes its links up), which Raft must not see.
Status MessageChannel::check_message(const raft::Message& m, NodeId from) const {
    if (m.from != from)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("message from node {} on the link of node {}", m.from, from));
    if (m.to != options_.self)
        return Status(ErrorCode::invalid_argument,
                      fmt::format("message for node {}, this is node {}", m.to, options_.self));
    return Status::ok_status();
}

Status MessageChannel::deliver_messages(GroupId group, NodeId from, std::string_view bytes) {
    if (!started_ || stopped_) return Status::ok_status();
    if (group != options_.group)
        return refuse(
            Rejection::misaddressed, from,
            fmt::format("messages for group {}, this node serves group {}", group, options_.group));
    if (bytes.empty()) return refuse(Rejection::malformed, from, "an empty delivery");
    if (bytes.size() > kTransportBufferBytesMax)
        return refuse(
            Rejection::malformed, from,
            fmt::format("a delivery of {} bytes exceeds kTransportBufferBytesMax", bytes.size()));
    // Decoded into decoded_ where that is safe (see its declaration).
    Frame own;
    const bool reuse = executor_.post && executor_.on_owner_thread && !decoding_;
    Frame& frame = reuse ? decoded_ : own;
    if (reuse) decoding_ = true;
    struct Release {
        bool* flag;
        ~Release() {
            if (flag != nullptr) *flag = false;
        }
    } release{reuse ? &decoding_ : nullptr};
    while (!bytes.empty()) {
        if (bytes.size() < kFrameLengthBytes)
            return refuse(Rejection::malformed, from,
                          fmt::format("truncated frame length prefix: {} bytes", bytes.size()));
        Result<std::uint32_t> length = decode_frame_length(bytes.substr(0, kFrameLengthBytes),
                                                           options_.limits.frame_bytes_max);
        if (!length.ok()) return refuse(Rejection::malformed, from, length.status().to_string());
        if (bytes.size() - kFrameLengthBytes < *length)
            return refuse(Rejection::malformed, from,
                          fmt::format("truncated frame: {} of {} body bytes",
                                      bytes.size() - kFrameLengthBytes, *length));
        Status decoded = decode_frame_body_into(bytes.substr(kFrameLengthBytes, *length),
                                                options_.limits, frame);
        bytes.remove_prefix(kFrameLengthBytes + *length);
        if (!decoded.ok())
            return refuse(Rejection::malformed, from, "bad frame: " + decoded.to_string());
        auto* batch = std::get_if<MessageBatch>(&frame);
        if (batch == nullptr)
            return refuse(Rejection::wrong_frame_kind, from,
                          "a frame that is not a batch of messages among messages");
        if (batch->group != group)
            return refuse(
                Rejection::misaddressed, from,
                fmt::format("a frame for group {} delivered as group {}", batch->group, group));
        // The whole frame is checked before any of it is delivered.
        for (const raft::Message& m : batch->messages) {
            if (Status s = check_message(m, from); !s.ok())
                return refuse(Rejection::misaddressed, from, s.message());
            // Its data travels in snapshot chunks, this message with the last.
            if (m.type == raft::MessageType::snapshot)
                return refuse(Rejection::wrong_frame_kind, from,
                              "a snapshot message in a frame of messages");
        }
        for (raft::Message& m : batch->messages) {
            if (stopped_) return Status::ok_status();
            if (handlers_.on_message) handlers_.on_message(std::move(m));
        }
    }
    return Status::ok_status();
}

Status MessageChannel::deliver_chunk(GroupId group, NodeId from, std::string_view bytes) {
    if (!started_ || stopped_) return Status::ok_status();
    if (group != options_.group)
        return refuse(Rejection::misaddressed, from,
                      fmt::format("a snapshot for group {}, this node serves group {}", group,
                                  options_.group));
    Result<Frame> frame = decode_frame(bytes, options_.limits);
    if (!frame.ok())
        return refuse(Rejection::malformed, from,
                      "bad snapshot chunk: " + frame.status().to_string());
    auto* chunk = std::get_if<SnapshotChunk>(&*frame);
    if (chunk == nullptr)
        return refuse(Rejection::wrong_frame_kind, from, "a frame that is not a snapshot chunk");
    if (chunk->group != group)
        return refuse(Rejection::misaddressed, from,
                      fmt::format("a snapshot chunk for group {} delivered as group {}",
                                  chunk->group, group));
    if (chunk->message) {
        if (Status s = check_message(*chunk->message, from); !s.ok())
            return refuse(Rejection::misaddressed, from, s.message());
        if (chunk->message->type != raft::MessageType::snapshot || !chunk->message->snapshot)
            return refuse(Rejection::wrong_frame_kind, from,
                          "the final snapshot chunk must carry a snapshot message");
    }
    if (receiver_.replaces_partial(group, from, *chunk))
        log(LogLevel::info, fmt::format("new snapshot from node {} aborts its partial one", from));
    Result<std::optional<std::string>> staged = receiver_.on_chunk(group, from, *chunk);
    if (!staged.ok()) return refuse(Rejection::snapshot, from, staged.status().to_string());
    if (*staged && handlers_.on_snapshot)
        handlers_.on_snapshot(std::move(*chunk->message), std::move(**staged));
    return Status::ok_status();
}

}  // namespace keel::transport
