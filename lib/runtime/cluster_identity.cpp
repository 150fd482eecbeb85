// runtime/cluster_identity.cpp — see cluster_identity.hpp.
#include "runtime/cluster_identity.hpp"

#include <string_view>

#include <fmt/format.h>
#include "keel/wal/small_file.hpp"

namespace keel::runtime {

Result<std::optional<transport::ClusterId>> read_cluster_id(wal::FileSystem& fs,
                                                            const std::string& data_dir) {
    const std::string path = data_dir + "/" + kClusterIdFileName;
    // 32 digits and a newline.
    auto bytes = wal::read_file(fs, path, transport::ClusterId::kHexDigits + 1);
    if (!bytes.ok()) {
        if (bytes.status().code() == ErrorCode::not_found)
            return std::optional<transport::ClusterId>();
        return bytes.status();
    }
    std::string_view text(*bytes);
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    Result<transport::ClusterId> id = transport::ClusterId::parse_hex(text);
    if (!id.ok())
        return Status(ErrorCode::corruption, fmt::format("{}: {}", path, id.status().message()));
    return std::optional<transport::ClusterId>(*id);
}

Status write_cluster_id(wal::FileSystem& fs, const std::string& data_dir,
                        const transport::ClusterId& id) {
    KEEL_ASSERT(!id.unset(), "only a real cluster id is stored");
    return wal::replace_file(fs, data_dir, kClusterIdFileName, id.hex() + "\n");
}

Result<transport::ClusterId> resolve_cluster_id(const NodeOptions& options, bool has_state,
                                                wal::FileSystem& fs) {
    std::optional<transport::ClusterId> given;
    if (!options.cluster_id.empty()) {
        Result<transport::ClusterId> parsed = transport::ClusterId::parse_hex(options.cluster_id);
        if (!parsed.ok())
            return Status(ErrorCode::invalid_argument, "cluster_id: " + parsed.status().message());
        given = *parsed;
    }
    Result<std::optional<transport::ClusterId>> stored = read_cluster_id(fs, options.data_dir);
    if (!stored.ok()) return stored.status();
    if (*stored) {
        if (given && *given != **stored)
            return Status(ErrorCode::invalid_argument,
                          fmt::format("{} belongs to cluster {}, not to the cluster_id given ({})",
                                      options.data_dir, (*stored)->hex(), given->hex()));
        return **stored;
    }
    if (given) {
        if (Status s = write_cluster_id(fs, options.data_dir, *given); !s.ok()) return s;
        return *given;
    }
    if (has_state)
        return Status(ErrorCode::invalid_argument,
                      options.data_dir +
                          " holds a log but no cluster id (it was written by a keel from "
                          "before cluster ids): make one id (openssl rand -hex 16) and start "
                          "every member once with it (raftd --cluster-id ID, "
                          "NodeOptions::cluster_id)");
    if (options.join) return transport::ClusterId{};
    // Founders that bootstrap apart must agree on one id without talking:
    // only the operator can give it to them.
    if (options.initial_members.size() > 1)
        return Status(
            ErrorCode::invalid_argument,
            fmt::format("bootstrapping a cluster of {} founding members needs the same cluster id "
                        "on each: make one (openssl rand -hex 16) and give it to every founder "
                        "(raftd --cluster-id ID, NodeOptions::cluster_id)",
                        options.initial_members.size()));
    Result<transport::ClusterId> fresh = transport::ClusterId::random();
    if (!fresh.ok()) return fresh.status();
    if (Status s = write_cluster_id(fs, options.data_dir, *fresh); !s.ok()) return s;
    return *fresh;
}

}  // namespace keel::runtime
