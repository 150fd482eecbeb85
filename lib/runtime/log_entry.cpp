// The public view of the log's records (keel/log_entry.hpp), over the core's
// entry types and configuration codec and the runtime's member context.
#include "keel/log_entry.hpp"

#include <fmt/format.h>
#include "raft/types.hpp"
#include "runtime/member_context.hpp"
#include "runtime/shared_records.hpp"

namespace keel {

static_assert(static_cast<int>(LogEntryType::normal) == static_cast<int>(raft::EntryType::normal));
static_assert(static_cast<int>(LogEntryType::noop) == static_cast<int>(raft::EntryType::noop));
static_assert(static_cast<int>(LogEntryType::config) == static_cast<int>(raft::EntryType::config));
static_assert(kSharedHardStateRecordType == runtime::kSharedHardStateType);

const char* log_entry_type_name(std::uint32_t type) noexcept {
    switch (type) {
        case static_cast<std::uint32_t>(LogEntryType::normal):
            return "normal";
        case static_cast<std::uint32_t>(LogEntryType::noop):
            return "noop";
        case static_cast<std::uint32_t>(LogEntryType::config):
            return "config";
        default:
            return nullptr;
    }
}

const char* shared_record_type_name(std::uint32_t type) noexcept {
    using runtime::kSharedEntryType;
    switch (type) {
        case kSharedEntryType + static_cast<std::uint32_t>(LogEntryType::normal):
            return "entry:normal";
        case kSharedEntryType + static_cast<std::uint32_t>(LogEntryType::noop):
            return "entry:noop";
        case kSharedEntryType + static_cast<std::uint32_t>(LogEntryType::config):
            return "entry:config";
        case runtime::kSharedResetType:
            return "reset";
        case runtime::kSharedImageType:
            return "image";
        case runtime::kSharedHardStateType:
            return "hard_state";
        default:
            return nullptr;
    }
}

Result<SharedHardState> decode_shared_hard_state(std::string_view payload) {
    wal::Record r;
    r.type = runtime::kSharedHardStateType;
    r.payload = SharedBytes(payload);
    auto hs = runtime::decode_hard_state(r);
    if (!hs.ok())
        return Status(ErrorCode::corruption, "hard-state record: " + hs.status().message());
    return SharedHardState{hs->term, hs->vote, hs->commit};
}

std::optional<LogEntryType> parse_log_entry_type(std::string_view name) noexcept {
    for (LogEntryType t : {LogEntryType::normal, LogEntryType::noop, LogEntryType::config})
        if (name == log_entry_type_name(static_cast<std::uint32_t>(t))) return t;
    return std::nullopt;
}

Result<std::vector<MemberSpec>> decode_config_entry(std::string_view data) {
    const std::optional<raft::Configuration> config = raft::decode_configuration(data);
    if (!config) return Status(ErrorCode::corruption, "config entry: not a configuration");
    std::vector<MemberSpec> members;
    members.reserve(config->members.size());
    for (const auto& [id, info] : config->members) {
        MemberSpec spec;
        spec.id = id;
        spec.voter = info.voter;
        if (Status s = runtime::decode_member_context(info.context, spec); !s.ok()) {
            return Status(ErrorCode::corruption,
                          fmt::format("config entry: member {}: {}", id, s.message()));
        }
        members.push_back(std::move(spec));
    }
    return members;
}

}  // namespace keel
