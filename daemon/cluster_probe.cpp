// raftd --join: the cluster's group count over a member's HTTP port.  See
// cluster_probe.hpp.
#include "cluster_probe.hpp"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "kv_shards.hpp"

namespace keel::daemon {

namespace {

// A /healthz answer is a few dozen bytes: anything past this is not raftd.
constexpr std::uint32_t kBodyMaxBytes = 4096;

std::string groups_phrase(std::size_t groups) {
    return groups == 0 ? std::string("no --groups") : fmt::format("--groups {}", groups);
}

}  // namespace

Result<std::optional<std::size_t>> parse_health_groups(std::string_view body) {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return Status(ErrorCode::corruption, "the /healthz answer is not a JSON object");
    auto groups = j.find("groups");
    if (groups == j.end()) return std::optional<std::size_t>();
    if (!groups->is_number_unsigned() || groups->get<std::uint64_t>() == 0 ||
        groups->get<std::uint64_t>() > kGroupsMax)
        return Status(ErrorCode::corruption,
                      fmt::format("the /healthz answer's \"groups\" is not in 1..{}", kGroupsMax));
    return std::optional<std::size_t>(groups->get<std::size_t>());
}

Result<std::optional<std::size_t>> probe_group_count(const MemberClient& client,
                                                     const std::string& http_address,
                                                     std::chrono::milliseconds timeout) {
    Result<HttpAnswer> answer = client.get(http_address, "/healthz", "", timeout, kBodyMaxBytes);
    if (!answer.ok()) return answer.status();
    if (answer->status != 200)
        return Status(ErrorCode::corruption,
                      fmt::format("GET {}://{}/healthz answered {}", client.scheme(), http_address,
                                  answer->status));
    return parse_health_groups(answer->body);
}

bool joiner_matches_cluster(const DaemonConfig& config, const MemberClient& client,
                            std::chrono::milliseconds timeout, const ProbeLog& log) {
    if (!config.join || config.members.empty()) return true;
    for (const MemberSpec& member : config.members) {
        if (member.metadata.empty()) continue;
        Result<std::optional<std::size_t>> count =
            probe_group_count(client, member.metadata, timeout);
        if (!count.ok()) {
            log(LogLevel::warn,
                fmt::format("--join: cannot ask member {} for the cluster's group count: {}",
                            member.id, count.status().to_string()));
            continue;
        }
        const std::size_t cluster = count->value_or(0);
        if (cluster == config.groups) return true;
        log(LogLevel::error,
            fmt::format("--join with {}: the cluster runs {} (member {} at {} says so), and the "
                        "keys' sharding must be the cluster's; nothing was written to {}: start "
                        "again with {}",
                        groups_phrase(config.groups), groups_phrase(cluster), member.id,
                        member.metadata, config.data_dir, groups_phrase(cluster)));
        return false;
    }
    log(LogLevel::warn,
        "--join: no member answered GET /healthz; a joiner with another --groups than the "
        "cluster's is refused only once the members' messages arrive");
    return true;
}

}  // namespace keel::daemon
