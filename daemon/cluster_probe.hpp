// daemon/cluster_probe.hpp — raftd --join: what the cluster is, asked of a
// member's HTTP port before the joiner writes anything to its data dir.
// The group count fixes the key space's layout for the data dir's life
// (kv_shards.hpp), so a joiner whose --groups is not the cluster's must stop
// before raftd.groups exists: GET /healthz on a member answers
// {"status":"ok","groups":N} with --groups N, and no "groups" without.
//
// The answer comes from outside the process: it is validated (a 200, a
// JSON object, "groups" absent or an integer in 1..kGroupsMax) and anything
// else is an error, never an assertion.  Plain HTTP only: a cluster served
// over HTTPS is not probed (the joiner has no CA to check the members'
// certificates with), and group_count_guard.hpp stays the check there.
//
// Threads: any; blocks for at most `timeout` per member.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "keel/status.hpp"

namespace keel::daemon {

// The group count the raftd whose HTTP port is `http_address` ("host:port")
// serves: nullopt without --groups.  io_error when it cannot be reached or
// does not answer in `timeout`, corruption when its answer is not the one
// above.
Result<std::optional<std::size_t>> probe_group_count(const std::string& http_address,
                                                     std::chrono::milliseconds timeout);

// The group count in a /healthz body (as above); corruption when the body is
// not one.  Separate from the I/O so that it is unit-tested.
Result<std::optional<std::size_t>> parse_health_groups(std::string_view body);

}  // namespace keel::daemon
