// runtime/acknowledgements.hpp — fewer acknowledgements for the same news.
#pragma once

#include <vector>

#include "raft/types.hpp"

namespace keel::runtime {

// Messages released together when a WAL write becomes durable (the core's
// messages_after_persist of one or more batches), in order.  One fsync often
// makes several appends from the leader durable at once, each with its
// acknowledgement: only the last to each leader needs to go.  A successful
// append_response says "I hold everything up to index"; a later one of the
// same term to the same node with an index at least as high says as much
// (the leader keeps the highest match; the phase it echoes matters only in
// rejections).  Drops the superseded ones from `messages`, in place;
// rejections, and every other message, stay unchanged and in order.
void coalesce_acknowledgements(std::vector<raft::Message>& messages);

}  // namespace keel::runtime
