// tools/keelctl/commands.hpp — keelctl's commands.  Each talks to raftd's
// HTTP API (docs/api.md) through a Session and returns the process's exit
// code (output.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "session.hpp"

namespace keel::keelctl {

// One row per endpoint; exit 0 only if every endpoint answered.
int cmd_status(const Session& session);

int cmd_member_list(const Session& session);

struct MemberAddArgs {
    std::uint64_t id = 0;
    std::string raft;  // HOST:PORT of its Raft transport
    std::string http;  // HOST:PORT of its HTTP API
    bool learner = false;
    // Add as a learner, wait until it holds everything the leader had
    // committed when it was added, then promote it.
    bool catch_up = false;
    std::chrono::seconds catch_up_timeout{300};
};
int cmd_member_add(const Session& session, const MemberAddArgs& args);
int cmd_member_promote(const Session& session, std::uint64_t id);
int cmd_member_remove(const Session& session, std::uint64_t id);

int cmd_leader_transfer(const Session& session, std::uint64_t to);

struct PutArgs {
    std::string key;
    std::string value;
    std::optional<std::string> prev_value;
    std::optional<std::uint64_t> prev_revision;
};
int cmd_put(const Session& session, const PutArgs& args);
int cmd_get(const Session& session, const std::string& key, bool stale);
int cmd_del(const Session& session, const std::string& key,
            const std::optional<std::string>& prev_value,
            const std::optional<std::uint64_t>& prev_revision);
int cmd_ls(const Session& session, const std::string& prefix, std::uint64_t limit, bool stale);

// Has the first endpoint that answers take a snapshot (unless `latest`),
// then downloads its latest snapshot to `file`, checked, written
// atomically (commands_snapshot.cpp).
int cmd_snapshot_save(const Session& session, const std::string& file, bool latest);

}  // namespace keel::keelctl
