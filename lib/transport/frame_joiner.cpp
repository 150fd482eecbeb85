// transport/frame_joiner.cpp — see frame_joiner.hpp.
#include "transport/frame_joiner.hpp"

#include "transport/codec_io.hpp"

namespace keel::transport {

using namespace codec_io;

namespace {

// Where a messages frame's parts start (codec.hpp): the count after the
// envelope's header and the group, the messages after the count.
constexpr std::size_t kGroupAt = kFrameLengthBytes + 2;
constexpr std::size_t kCountAt = kGroupAt + kFrameGroupBytes;
constexpr std::size_t kMessagesAt = kCountAt + 4;
constexpr std::size_t kCrcBytes = 4;

template <typename T>
T read_word(std::string_view bytes, std::size_t at) {
    T v = 0;
    std::memcpy(&v, bytes.data() + at, sizeof(T));
    return to_little_endian(v);
}

}  // namespace

MessageFrameJoiner::MessageFrameJoiner(std::size_t messages_max, std::size_t frame_bytes_max)
    : messages_max_(messages_max), frame_bytes_max_(frame_bytes_max) {}

bool MessageFrameJoiner::add(std::string_view frame) {
    if (frame.size() < kMessagesFrameFixedBytes) return false;
    if (std::size_t{read_word<std::uint32_t>(frame, 0)} != frame.size() - kFrameLengthBytes)
        return false;  // not exactly one frame
    if (static_cast<std::uint8_t>(frame[kFrameLengthBytes]) != kWireVersion ||
        static_cast<std::uint8_t>(frame[kFrameLengthBytes + 1]) !=
            static_cast<std::uint8_t>(FrameKind::messages))
        return false;
    const auto group = read_word<std::uint64_t>(frame, kGroupAt);
    const std::size_t count = read_word<std::uint32_t>(frame, kCountAt);
    if (!frames_.empty() && group != group_) return false;
    const std::size_t body = frame.size() - kMessagesFrameFixedBytes;
    const std::size_t bytes = frames_.empty() ? frame.size() : bytes_ + body;
    if (count == 0 || messages_ + count > messages_max_ || bytes > frame_bytes_max_) return false;
    group_ = group;
    messages_ += count;
    bytes_ = bytes;
    frames_.push_back(frame);
    return true;
}

std::string MessageFrameJoiner::take() {
    KEEL_ASSERT(!frames_.empty(), "take() needs a frame");
    std::string out;
    begin_frame(out, FrameKind::messages, bytes_);
    Writer w(out);
    w.u64(group_);
    w.u32(static_cast<std::uint32_t>(messages_));
    for (std::string_view frame : frames_)
        out.append(frame.substr(kMessagesAt, frame.size() - kMessagesAt - kCrcBytes));
    end_frame(out);
    KEEL_ASSERT(out.size() == bytes_, "a joined frame is its parts' messages and one envelope");
    reset();
    return out;
}

void MessageFrameJoiner::reset() {
    frames_.clear();
    group_ = 0;
    messages_ = 0;
    bytes_ = 0;
}

}  // namespace keel::transport
