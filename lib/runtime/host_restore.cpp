// runtime/host_restore.cpp — keel::restore_host_data_dir
// (keel/host_restore.hpp): a new Host data dir whose groups' state is a
// backup archive.
//
// Built in <data_dir>.restoring (restore_steps.hpp), in this order: the
// cluster id; each group's directory with its snapshot (the archived
// snapshot's data under the new configuration, durable) and its cluster
// id; the shared WAL with, for every group, a reset at its snapshot (its
// log continues after the snapshot's index) and its hard state (the
// snapshot's term, no vote, commit at its index), in one write and one
// fdatasync whatever the number of groups; the application's files; an
// fsync of each directory made; then the rename into place.  A Host
// opening the result finds each group as a node that installed its
// leader's snapshot does (runtime/bootstrap.hpp): nothing is redone at
// open (an empty WAL would cost each group a metadata write at its first
// open: docs/decisions/0034).  A crash before the rename leaves only the
// .restoring directory.
#include "runtime/host_restore.hpp"

#include <algorithm>
#include <filesystem>
#include <future>
#include <memory>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "runtime/backup_archive.hpp"
#include "runtime/bootstrap.hpp"
#include "runtime/cluster_identity.hpp"
#include "runtime/member_context.hpp"
#include "runtime/restore_steps.hpp"
#include "runtime/shared_records.hpp"
#include "runtime/shared_wal.hpp"

namespace keel::runtime {
namespace {

// Groups seeded per append into the shared WAL (two small records each):
// one batch of the WAL holds them whatever the group count allows.
constexpr std::size_t kSeedGroupsPerAppend = 4096;

// The archive holds exactly `wanted` (empty: anything).
Status check_groups(const BackupArchiveInfo& info, const std::vector<GroupId>& wanted,
                    const std::string& path) {
    if (wanted.empty()) return Status::ok_status();
    std::vector<GroupId> want = wanted;
    std::sort(want.begin(), want.end());
    want.erase(std::unique(want.begin(), want.end()), want.end());
    std::vector<GroupId> held;
    for (const BackupArchiveGroup& g : info.groups) held.push_back(g.group);
    if (held == want) return Status::ok_status();
    std::string difference;
    std::vector<GroupId> missing, extra;
    std::set_difference(want.begin(), want.end(), held.begin(), held.end(),
                        std::back_inserter(missing));
    std::set_difference(held.begin(), held.end(), want.begin(), want.end(),
                        std::back_inserter(extra));
    if (!missing.empty()) difference = fmt::format("; group {} is not in it", missing.front());
    if (!extra.empty()) difference += fmt::format("; it holds group {}", extra.front());
    return Status(ErrorCode::invalid_argument,
                  fmt::format("the backup archive {} holds {} group(s), and {} were asked for{}; "
                              "nothing was written",
                              path, held.size(), want.size(), difference));
}

// Group `group`'s directory: its snapshot under the new configuration (the
// store makes `snapshots/` and fsyncs `dir` before the file), then its
// cluster id.
Status build_group(wal::FileSystem& files, const std::string& dir,
                   const std::shared_ptr<wal::File>& archive, const std::string& archive_path,
                   const BackupArchiveGroup& group, const raft::Configuration& config,
                   const transport::ClusterId& cluster_id) {
    if (Status s = create_directories(dir); !s.ok()) return s;
    auto store = SnapshotStore::open(dir + "/snapshots", files);
    if (!store.ok()) return store.status();
    auto reader =
        SnapshotStore::open_reader(file_slice(archive, group.offset, group.snapshot.size_bytes),
                                   archived_snapshot_name(archive_path, group));
    if (!reader.ok()) return reader.status();
    const raft::SnapshotMeta meta{group.snapshot.index, group.snapshot.term, config};
    if (Status s = write_restored_snapshot(**store, **reader, meta); !s.ok()) return s;
    return write_cluster_id(files, dir, cluster_id);
}

// Every group's reset at its snapshot and its hard state, in the shared
// WAL at `dir` (new).
Status seed_wal(wal::FileSystem& files, const std::string& dir, std::uint64_t segment_bytes,
                const BackupArchiveInfo& info) {
    wal::Options wo;
    wo.fs = &files;
    wo.segment_bytes = segment_bytes;
    auto shared = SharedWal::open(dir, wo);
    if (!shared.ok()) return shared.status();
    std::vector<std::future<Status>> written;
    for (std::size_t from = 0; from < info.groups.size(); from += kSeedGroupsPerAppend) {
        const std::size_t to = std::min(info.groups.size(), from + kSeedGroupsPerAppend);
        std::vector<wal::Record> records;
        records.reserve(2 * (to - from));
        for (std::size_t i = from; i < to; ++i) {
            const SnapshotFileInfo& snapshot = info.groups[i].snapshot;
            records.push_back(encode_reset(snapshot.index, snapshot.term));
            records.push_back(
                encode_hard_state(raft::HardState{snapshot.term, raft::kNoNode, snapshot.index}));
            records[records.size() - 2].group = info.groups[i].group;
            records.back().group = info.groups[i].group;
        }
        auto done = std::make_shared<std::promise<Status>>();
        written.push_back(done->get_future());
        std::uint64_t first = 0;
        Status s = (*shared)->append(
            std::move(records), [done](Status st) { done->set_value(std::move(st)); },
            wal::Wal::Writer::flusher, &first);
        if (!s.ok()) {
            written.pop_back();
            for (std::future<Status>& w : written) w.wait();
            return s;
        }
    }
    Status result;
    for (std::future<Status>& w : written)
        if (Status s = w.get(); !s.ok() && result.ok()) result = s;
    return result;
}

// Everything into `building.data_dir` (created already).
Status build(const HostRestoreOptions& options, const NodeOptions& building, wal::FileSystem& files,
             const std::string& archive_path, const BackupArchiveInfo& info,
             const raft::Configuration& config) {
    // The cluster id first, as at bootstrap: a lone founder makes one,
    // several need the one they were all given.
    auto cluster_id = resolve_cluster_id(building, /*has_state=*/false, files);
    if (!cluster_id.ok()) return cluster_id.status();
    auto opened = files.open(archive_path, wal::OpenMode::read_only);
    if (!opened.ok()) return opened.status();
    const std::shared_ptr<wal::File> archive(std::move(opened.value()));
    const std::string groups_dir = building.data_dir + "/groups";
    if (Status s = create_directories(groups_dir); !s.ok()) return s;
    for (const BackupArchiveGroup& group : info.groups) {
        const std::string dir = fmt::format("{}/{}", groups_dir, group.group);
        if (Status s = build_group(files, dir, archive, archive_path, group, config, *cluster_id);
            !s.ok())
            return s;
    }
    if (Status s = files.sync_dir(groups_dir); !s.ok()) return s;
    if (Status s = seed_wal(files, building.data_dir + "/wal", building.wal_segment_bytes, info);
        !s.ok())
        return s;
    if (options.before_publish) {
        if (Status s = options.before_publish(building.data_dir); !s.ok()) return s;
    }
    return files.sync_dir(building.data_dir);
}

}  // namespace

Result<BackupArchiveInfo> restore_host_data_dir_on(wal::FileSystem& files,
                                                   const HostRestoreOptions& options,
                                                   const std::string& archive_path) {
    const NodeOptions& node = options.node;
    if (node.data_dir.empty()) return Status(ErrorCode::invalid_argument, "data_dir is empty");
    if (node.join)
        return Status(ErrorCode::invalid_argument,
                      "a restore founds a cluster: a joining node gets its state from the leader");
    if (Status s = check_restore_target(node.data_dir); !s.ok()) return s;
    auto config = initial_configuration(node);
    if (!config.ok()) return config.status();
    auto info = read_backup_archive(files, archive_path);
    if (!info.ok()) return info.status();
    if (Status s = check_groups(*info, options.groups, archive_path); !s.ok()) return s;

    NodeOptions building = node;
    building.data_dir = node.data_dir + ".restoring";
    if (Status s = start_building(building.data_dir); !s.ok()) return s;
    if (Status s = build(options, building, files, archive_path, *info, *config); !s.ok()) {
        std::error_code ec;
        std::filesystem::remove_all(building.data_dir, ec);  // nothing refers to it yet
        return s;
    }
    if (Status s = publish_restored(files, building.data_dir, node.data_dir); !s.ok()) return s;
    return info;
}

}  // namespace keel::runtime

namespace keel {

Result<BackupArchiveInfo> restore_host_data_dir(const HostRestoreOptions& options,
                                                const std::string& archive_path) {
    return runtime::restore_host_data_dir_on(*wal::default_file_system(), options, archive_path);
}

}  // namespace keel
