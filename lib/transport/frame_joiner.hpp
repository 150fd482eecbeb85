// transport/frame_joiner.hpp — joins messages frames into one: the frames of
// one group that queued behind a busy link leave as a single frame holding
// all their messages, in order, exactly as encode_messages would have
// encoded them together.  Fewer frames mean fewer CRC checks, decodes and
// sink calls on the receiver, and under TLS fewer records.
//
// Standard library only (with the codec): pure bytes in, bytes out, unit
// tested and fuzzed with the codec.  Its input is frames keel's own channel
// encoded, not peer bytes; what it does not recognise as a whole messages
// frame it declines (add returns false) and the caller sends it unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "transport/codec.hpp"

namespace keel::transport {

class MessageFrameJoiner {
public:
    // A joined frame holds at most `messages_max` messages and is at most
    // `frame_bytes_max` bytes long (prefix included).
    MessageFrameJoiner(std::size_t messages_max, std::size_t frame_bytes_max);

    // Adds `frame` when it is one whole messages frame of kWireVersion, of
    // the same group as those added before, and the joined frame stays
    // within the limits; else false and nothing changes.  `frame` must
    // outlive the next take() or reset() (it is read then).
    bool add(std::string_view frame);
    std::size_t frames() const { return frames_.size(); }
    // The frame holding every message added, in order.  REQUIRES:
    // frames() >= 1.  Resets the joiner.
    std::string take();
    void reset();

private:
    const std::size_t messages_max_;
    const std::size_t frame_bytes_max_;
    std::vector<std::string_view> frames_;
    std::uint64_t group_ = 0;
    std::size_t messages_ = 0;
    std::size_t bytes_ = 0;  // of the joined frame, prefix included
};

}  // namespace keel::transport
