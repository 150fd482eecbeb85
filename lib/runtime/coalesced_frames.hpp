// runtime/coalesced_frames.hpp — many groups' messages to one peer process
// in one transport buffer.  A Host serving many groups sends each peer a
// frame per group per round trip; over an application's transport each
// send() is a buffer, a hand-off and often a wakeup on both sides.  The
// router (group_router.hpp) gathers what its groups send to each peer while
// the I/O thread works (CoalescingOutbox), and hands the transport one
// buffer per peer on group kCoalescedGroup: the groups' own frames, whole
// and unchanged, one after the other (each names its group: codec.hpp,
// frame_route).  The receiving router splits it (split_coalesced) and hands
// each frame to its group, after one hand-off to its I/O thread for all.
//
// Bounds: a buffer holds at most kCoalescedFramesMax frames and (unless it
// is one group's frames alone, which go on their own group as before)
// kCoalescedBytesMax bytes.  The receiver refuses, before it hands any frame
// on, a buffer over kCoalescedFramesMax frames or kTransportBufferBytesMax
// bytes, one that is not whole messages frames, and a frame of a reserved group
// (kCoalescedGroup, kLivenessGroup): coalescing does not nest.  What each
// frame holds is checked by its group's channel, as for a frame sent alone.
//
// Pure bytes and containers: no lock, no thread (the router holds the lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.hpp"
#include "keel/transport.hpp"

namespace keel::runtime {

// Frames in one coalesced buffer, both ways.
inline constexpr std::size_t kCoalescedFramesMax = 4096;
// The size a sender stops adding to a coalesced buffer at (a frame that
// would take it past starts the next buffer).
inline constexpr std::size_t kCoalescedBytesMax = 1024 * 1024;

// One frame of a coalesced buffer (prefix included; a view into it).
struct CoalescedFrame {
    GroupId group = 0;
    std::string_view frame;
};

// The frames of a buffer delivered on kCoalescedGroup, every one whole and
// of a group that is not reserved; `corruption` or `too_large` otherwise
// (nothing of a refused buffer may be handed on).  `frame_bytes_max`: the
// codec's limit of one frame.
Result<std::vector<CoalescedFrame>> split_coalesced(std::string_view bytes,
                                                    std::size_t frame_bytes_max);

// Frames in `bytes` (whole frames by their length prefixes; a trailing
// partial frame counts as one).  For the sender's own buffers.
std::size_t count_frames(std::string_view bytes);

// What the groups send to each peer during one I/O thread pass, kept in the
// order it was sent, then handed out as few buffers as the bounds allow.
class CoalescingOutbox {
public:
    struct Buffer {
        GroupId group = 0;  // a group's own, or kCoalescedGroup
        NodeId to = 0;
        std::string bytes;
    };

    // Queues `bytes` (whole frames of `group`) for `to`.  True when the
    // outbox was empty before (the caller arranges one take() later).
    bool add(GroupId group, NodeId to, std::string bytes);
    // Whether anything is queued for `to` (a direct send to it now would
    // overtake it).
    bool pending(NodeId to) const { return peers_.count(to) != 0; }
    bool empty() const { return peers_.empty(); }
    // Everything queued, as buffers to send in this order (per peer in the
    // order queued); empties the outbox.  A peer's frames that are all one
    // group's go on that group; a single frame over kCoalescedBytesMax goes
    // alone on its group.
    std::vector<Buffer> take();

private:
    struct Part {
        GroupId group;
        std::string bytes;
        std::size_t frames;
    };
    std::map<NodeId, std::vector<Part>> peers_;
};

}  // namespace keel::runtime
