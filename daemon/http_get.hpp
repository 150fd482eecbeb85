// daemon/http_get.hpp — one GET from raftd to another raftd's HTTP port,
// over plain TCP, blocking: a joiner's look at the cluster
// (cluster_probe.hpp) and a member's part of a list across groups asked of
// another member (handlers_list.cpp).  Every member is expected to serve
// the same scheme; over HTTPS raftd makes no such calls (it has no CA to
// check another member's certificate with).
//
// The answer comes from outside the process: its body is capped
// (body_max_bytes) and the callers validate it.
// Threads: any; blocks for at most `timeout` (connect, write and read).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "keel/status.hpp"

namespace keel::daemon {

struct HttpAnswer {
    int status = 0;
    std::string body;
};

// GET `target` from the raftd at `address` ("host:port"), with
// `authorization` as the Authorization header when not empty.
// invalid_argument for a malformed address; io_error when it cannot be
// reached, does not answer in `timeout`, or answers more than
// body_max_bytes or not HTTP.  Any HTTP status is an answer.
Result<HttpAnswer> http_get(const std::string& address, const std::string& target,
                            const std::string& authorization, std::chrono::milliseconds timeout,
                            std::uint64_t body_max_bytes);

}  // namespace keel::daemon
