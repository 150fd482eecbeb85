// raftd --restore FILE --groups N (restore_groups.hpp).
#include "restore_groups.hpp"

#include <fmt/format.h>

#include "identity.hpp"
#include "keel/backup_archive.hpp"
#include "keel/host_restore.hpp"
#include "keel/snapshot_file.hpp"

namespace keel::daemon {
namespace {

// The archive holds groups 1..groups exactly; else why not, for the log.
std::string group_mismatch(const BackupArchiveInfo& info, std::size_t groups) {
    const std::size_t held = info.groups.size();
    if (held != groups)
        return fmt::format(
            "it holds {} groups (the backup of a raftd with --groups {}), not {}: "
            "restore it with --groups {}",
            held, held, groups, held);
    for (std::size_t i = 0; i < held; ++i) {
        if (info.groups[i].group != i + 1)
            return fmt::format(
                "it holds group {} where raftd's groups are 1..{}: it is not the "
                "backup of a raftd",
                info.groups[i].group, groups);
    }
    return "";
}

}  // namespace

std::string archive_hint(const std::string& file) {
    Result<BackupArchiveInfo> info = verify_backup_archive(file);
    if (!info.ok()) return "";
    return fmt::format(
        " ({} is the backup archive of {} groups, from a raftd with --groups {}: "
        "restore it with --groups {})",
        file, info->groups.size(), info->groups.size(), info->groups.size());
}

int run_restore_groups(const DaemonConfig& config, const NodeOptions& options,
                       spdlog::logger& log) {
    const std::string& file = config.restore_file;
    // Checked whole before anything is written; restore_host_data_dir
    // checks it again as it copies (the file could change in between).
    Result<BackupArchiveInfo> archive = verify_backup_archive(file);
    if (!archive.ok()) {
        if (verify_snapshot_file(file).ok()) {
            log.error(
                "--restore {} --groups {}: {} is one snapshot file, the backup of a raftd "
                "without --groups; restore it without --groups (a raftd with --groups is backed "
                "up into an archive of its groups by keelctl snapshot save); nothing was written",
                file, config.groups, file);
        } else {
            log.error("--restore {}: {}; nothing was written", file, archive.status().to_string());
        }
        return 1;
    }
    if (std::string why = group_mismatch(*archive, config.groups); !why.empty()) {
        log.error("--restore {} --groups {}: {}; nothing was written", file, config.groups, why);
        return 1;
    }
    HostRestoreOptions restore;
    restore.node = options;
    for (GroupId g = 1; g <= config.groups; ++g) restore.groups.push_back(g);
    // raftd's files with keel's: the data dir appears whole or not at all.
    restore.before_publish = [&config, id = options.id](const std::string& dir) {
        if (Status s = write_group_count(dir, config.groups); !s.ok()) return s;
        if (Status s = write_node_id(dir, id); !s.ok()) return s;
        if (config.members.empty()) return Status::ok_status();
        return write_members(dir, config.members);
    };
    Result<BackupArchiveInfo> restored = restore_host_data_dir(restore, file);
    if (!restored.ok()) {
        log.error("--restore: {}", restored.status().to_string());
        return 1;
    }
    std::uint64_t data_bytes = 0;
    for (const BackupArchiveGroup& g : restored->groups) data_bytes += g.snapshot.data_bytes;
    log.info(
        "restored {} into {}: {} groups, {} bytes of state, {} member(s); start raftd on it as "
        "usual",
        file, config.data_dir, restored->groups.size(), data_bytes,
        std::max<std::size_t>(config.members.size(), 1));
    return 0;
}

}  // namespace keel::daemon
