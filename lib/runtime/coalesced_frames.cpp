// Many groups' frames to one peer in one buffer.  See coalesced_frames.hpp.
#include "runtime/coalesced_frames.hpp"

#include <utility>

#include <fmt/format.h>
#include "runtime/process_liveness.hpp"
#include "transport/codec.hpp"

namespace keel::runtime {

Result<std::vector<CoalescedFrame>> split_coalesced(std::string_view bytes,
                                                    std::size_t frame_bytes_max) {
    if (bytes.empty()) return Status(ErrorCode::corruption, "an empty coalesced buffer");
    if (bytes.size() > kTransportBufferBytesMax)
        return Status(ErrorCode::too_large,
                      fmt::format("a coalesced buffer of {} bytes exceeds kTransportBufferBytesMax",
                                  bytes.size()));
    std::vector<CoalescedFrame> frames;
    std::size_t at = 0;
    while (at < bytes.size()) {
        if (frames.size() == kCoalescedFramesMax)
            return Status(
                ErrorCode::too_large,
                fmt::format("a coalesced buffer of more than {} frames", kCoalescedFramesMax));
        const std::string_view rest = bytes.substr(at);
        if (rest.size() < transport::kFrameLengthBytes)
            return Status(ErrorCode::corruption,
                          fmt::format("truncated frame length prefix at byte {}", at));
        Result<std::uint32_t> length = transport::decode_frame_length(
            rest.substr(0, transport::kFrameLengthBytes), frame_bytes_max);
        if (!length.ok())
            return Status(length.status().code(),
                          fmt::format("frame at byte {}: {}", at, length.status().message()));
        if (rest.size() - transport::kFrameLengthBytes < *length)
            return Status(ErrorCode::corruption,
                          fmt::format("truncated frame at byte {}: {} of {} body bytes", at,
                                      rest.size() - transport::kFrameLengthBytes, *length));
        const std::string_view frame = rest.substr(0, transport::kFrameLengthBytes + *length);
        Result<transport::FrameRoute> route = transport::frame_route(frame);
        if (!route.ok())
            return Status(ErrorCode::corruption,
                          fmt::format("frame at byte {}: {}", at, route.status().message()));
        // Snapshots stream on their own (Transport::send_snapshot).
        if (route->kind != transport::FrameKind::messages)
            return Status(ErrorCode::corruption,
                          fmt::format("frame at byte {} is not a messages frame", at));
        if (route->group == kCoalescedGroup || route->group == kLivenessGroup)
            return Status(
                ErrorCode::corruption,
                fmt::format("frame at byte {} is of reserved group {}", at, route->group));
        frames.push_back(CoalescedFrame{route->group, frame});
        at += frame.size();
    }
    return frames;
}

std::size_t count_frames(std::string_view bytes) {
    std::size_t n = 0;
    while (!bytes.empty()) {
        ++n;
        if (bytes.size() < transport::kFrameLengthBytes) break;
        std::uint32_t length = 0;
        for (std::size_t i = 0; i < transport::kFrameLengthBytes; ++i)
            length |= std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << (8 * i);
        if (bytes.size() - transport::kFrameLengthBytes < length) break;
        bytes.remove_prefix(transport::kFrameLengthBytes + length);
    }
    return n;
}

bool CoalescingOutbox::add(GroupId group, NodeId to, std::string bytes) {
    const bool was_empty = peers_.empty();
    const std::size_t frames = count_frames(bytes);
    peers_[to].push_back(Part{group, std::move(bytes), frames});
    return was_empty;
}

std::vector<CoalescingOutbox::Buffer> CoalescingOutbox::take() {
    std::vector<Buffer> out;
    for (auto& peer : peers_) {
        const NodeId to = peer.first;  // captured below (a structured binding cannot be)
        std::vector<Part>& parts = peer.second;
        // The buffer being filled: its parts' bytes, the group of its first
        // part, whether every part is of that group, and its frames.
        Buffer current;
        bool one_group = true;
        std::size_t frames = 0;
        auto close = [&] {
            if (current.bytes.empty()) return;
            current.to = to;
            if (!one_group) current.group = kCoalescedGroup;
            out.push_back(std::move(current));
            current = Buffer{};
            one_group = true;
            frames = 0;
        };
        for (Part& p : parts) {
            // A part over either bound closes the buffer before it and is
            // the next one's only part: it goes on its own group.
            if (frames + p.frames > kCoalescedFramesMax ||
                current.bytes.size() + p.bytes.size() > kCoalescedBytesMax)
                close();
            if (current.bytes.empty()) {
                current.group = p.group;
                current.bytes = std::move(p.bytes);
            } else {
                one_group = one_group && p.group == current.group;
                current.bytes += p.bytes;
            }
            frames += p.frames;
        }
        close();
    }
    peers_.clear();
    return out;
}

}  // namespace keel::runtime
