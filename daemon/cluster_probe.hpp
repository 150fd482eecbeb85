// daemon/cluster_probe.hpp — raftd --join: what the cluster is, asked of a
// member's HTTP port before the joiner writes anything to its data dir.
// The group count fixes the key space's layout for the data dir's life
// (kv_shards.hpp), so a joiner whose --groups is not the cluster's must stop
// before raftd.groups exists: GET /healthz on a member answers
// {"status":"ok","groups":N} with --groups N, and no "groups" without.
//
// The answer comes from outside the process: it is validated (a 200, a
// JSON object, "groups" absent or an integer in 1..kGroupsMax) and anything
// else is an error, never an assertion.  It is asked over the scheme the
// joiner serves, HTTPS verified as member_client.hpp says; a member that
// cannot be asked (or verified) leaves group_count_guard.hpp as the check.
//
// Threads: any; blocks for at most `timeout` per member.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "flags.hpp"
#include "keel/options.hpp"
#include "keel/status.hpp"
#include "member_client.hpp"

namespace keel::daemon {

// The group count the raftd whose HTTP port is `http_address` ("host:port")
// serves: nullopt without --groups.  An error when it cannot be reached or
// verified or does not answer in `timeout` (MemberClient::get's), corruption
// when its answer is not the one above.
Result<std::optional<std::size_t>> probe_group_count(const MemberClient& client,
                                                     const std::string& http_address,
                                                     std::chrono::milliseconds timeout);

using ProbeLog = std::function<void(LogLevel, const std::string&)>;

// raftd --join on a first start (config.join, with a --member list): the
// cluster's group count asked of each --member's HTTP port in turn, before
// anything is written to the data dir.  false (logged as an error naming
// the count to start with) when a member answers another count than
// config.groups; true when one answers the same, or none can be asked
// (logged as warnings: group_count_guard.hpp is then the only check, and it
// catches only a joiner with fewer groups).  true at once without --join
// or --member.
bool joiner_matches_cluster(const DaemonConfig& config, const MemberClient& client,
                            std::chrono::milliseconds timeout, const ProbeLog& log);

// The group count in a /healthz body (as above); corruption when the body is
// not one.  Separate from the I/O so that it is unit-tested.
Result<std::optional<std::size_t>> parse_health_groups(std::string_view body);

}  // namespace keel::daemon
