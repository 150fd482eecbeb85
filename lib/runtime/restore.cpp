// runtime/restore.cpp — keel::restore_data_dir (keel/snapshot_file.hpp): a
// new data dir whose state is a backup, in a new cluster; and the steps it
// shares with a Host's restore (restore_steps.hpp, host_restore.cpp).
//
// The data dir is built next to its final place (<data_dir>.restoring) and
// renamed into place only once complete, so a crash at any step leaves
// either no data dir (run the restore again, after deleting the leftover
// .restoring directory) or a complete one.  What it holds, as a node that
// installed a leader's snapshot would: the snapshot file with the new
// configuration, an empty log that continues after the snapshot's index,
// the hard state (the snapshot's term, no vote, commit at its index) and
// the cluster id.
#include "runtime/restore_steps.hpp"

#include <cstdio>
#include <filesystem>
#include <future>
#include <system_error>

#include <fmt/format.h>
#include "keel/snapshot_file.hpp"
#include "runtime/bootstrap.hpp"
#include "runtime/cluster_identity.hpp"
#include "runtime/member_context.hpp"
#include "runtime/snapshot_store.hpp"

namespace keel {
namespace runtime {

namespace fs = std::filesystem;

constexpr std::size_t kCopyChunkBytes = 1 << 20;

Status check_restore_target(const std::string& data_dir) {
    std::error_code ec;
    const fs::file_status st = fs::status(data_dir, ec);
    if (ec && ec != std::errc::no_such_file_or_directory)
        return Status(ErrorCode::io_error, fmt::format("{}: {}", data_dir, ec.message()));
    if (!fs::exists(st)) return Status();
    if (!fs::is_directory(st))
        return Status(ErrorCode::invalid_argument, data_dir + " exists and is not a directory");
    if (!fs::is_empty(data_dir, ec) || ec)
        return Status(ErrorCode::invalid_argument,
                      data_dir +
                          " is not empty: a restore builds a new data dir (move the old "
                          "one away first)");
    return Status();
}

Status write_restored_snapshot(SnapshotStore& store, SnapshotFileReader& data,
                               const raft::SnapshotMeta& meta) {
    auto writer = store.begin();
    if (!writer.ok()) return writer.status();
    std::string chunk(kCopyChunkBytes, '\0');
    for (;;) {
        auto n = data.read(chunk.data(), chunk.size());
        if (!n.ok()) return n.status();
        if (*n == 0) break;
        if (Status s = (*writer)->write(std::string_view(chunk.data(), *n)); !s.ok()) return s;
    }
    auto published = store.publish(**writer, meta);
    return published.ok() ? Status() : published.status();
}

Status start_building(const std::string& building) {
    std::error_code ec;
    if (fs::exists(building, ec))
        return Status(ErrorCode::invalid_argument,
                      building + " exists: an earlier restore stopped half way; delete it");
    return create_directories(building);
}

Status publish_restored(wal::FileSystem& files, const std::string& building,
                        const std::string& data_dir) {
    // rename(2) replaces an empty directory, and the parent is synced so
    // that the new name survives a crash.
    if (Status s = files.rename(building, data_dir); !s.ok()) return s;
    const fs::path parent = fs::absolute(data_dir).parent_path();
    return files.sync_dir(parent.string());
}

}  // namespace runtime

namespace {

namespace fs = std::filesystem;

// An empty log after the snapshot and the hard state of a node that holds it.
Status write_log(const NodeOptions& options, const std::string& data_dir, wal::FileSystem& fs,
                 const raft::SnapshotMeta& meta) {
    wal::Options wo;
    wo.fs = &fs;
    wo.segment_bytes = options.wal_segment_bytes;
    auto log = runtime::LogStore::open(data_dir + "/wal", wo);
    if (!log.ok()) return log.status();
    std::promise<Status> reset;
    Status s = (*log)->reset_after_snapshot(
        meta.index, meta.term, [&reset](Status st) { reset.set_value(std::move(st)); });
    if (!s.ok()) return s;
    if (s = reset.get_future().get(); !s.ok()) return s;
    return (*log)->save_hard_state(raft::HardState{meta.term, raft::kNoNode, meta.index});
}

// Everything from the cluster id on, into `dir` (created already).
Status build(const NodeOptions& options, const NodeOptions& building, wal::FileSystem& files,
             const runtime::SnapshotFile& backup, const raft::Configuration& config) {
    // The cluster id first, as at bootstrap: a lone founder makes one,
    // several need the one they were all given.
    auto id = runtime::resolve_cluster_id(building, /*has_state=*/false, files);
    if (!id.ok()) return id.status();
    auto store = runtime::SnapshotStore::open(building.data_dir + "/snapshots", files);
    if (!store.ok()) return store.status();
    const raft::SnapshotMeta meta{backup.meta.index, backup.meta.term, config};
    auto reader = (*store)->open_reader(backup);
    if (!reader.ok()) return reader.status();
    if (Status s = runtime::write_restored_snapshot(**store, **reader, meta); !s.ok()) return s;
    return write_log(options, building.data_dir, files, meta);
}

}  // namespace

Status restore_data_dir(const NodeOptions& options, const std::string& snapshot_path) {
    if (options.data_dir.empty()) return Status(ErrorCode::invalid_argument, "data_dir is empty");
    if (options.join)
        return Status(ErrorCode::invalid_argument,
                      "a restore founds a cluster: a joining node gets its state from the leader");
    if (Status s = runtime::check_restore_target(options.data_dir); !s.ok()) return s;
    auto config = runtime::initial_configuration(options);
    if (!config.ok()) return config.status();
    wal::FileSystem& files = *wal::default_file_system();
    auto backup = runtime::SnapshotStore::verify(files, snapshot_path);
    if (!backup.ok()) return backup.status();

    NodeOptions building = options;
    building.data_dir = options.data_dir + ".restoring";
    if (Status s = runtime::start_building(building.data_dir); !s.ok()) return s;
    if (Status s = build(options, building, files, *backup, *config); !s.ok()) {
        std::error_code ec;
        fs::remove_all(building.data_dir, ec);  // nothing refers to it yet
        return s;
    }
    return runtime::publish_restored(files, building.data_dir, options.data_dir);
}

}  // namespace keel
