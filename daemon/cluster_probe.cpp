// raftd --join: the cluster's group count over a member's HTTP port.  See
// cluster_probe.hpp.
#include "cluster_probe.hpp"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "http_get.hpp"
#include "kv_shards.hpp"

namespace keel::daemon {

namespace {

// A /healthz answer is a few dozen bytes: anything past this is not raftd.
constexpr std::uint32_t kBodyMaxBytes = 4096;

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

Result<std::optional<std::size_t>> probe_group_count(const std::string& http_address,
                                                     std::chrono::milliseconds timeout) {
    Result<HttpAnswer> answer = http_get(http_address, "/healthz", "", timeout, kBodyMaxBytes);
    if (!answer.ok()) return answer.status();
    if (answer->status != 200)
        return Status(ErrorCode::corruption, fmt::format("GET http://{}/healthz answered {}",
                                                         http_address, answer->status));
    return parse_health_groups(answer->body);
}

}  // namespace keel::daemon
