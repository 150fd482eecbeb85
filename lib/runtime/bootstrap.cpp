#include "runtime/bootstrap.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>

#include "runtime/member_context.hpp"

namespace keel::runtime {

namespace {

// Waits for a WAL operation (never called from a WAL callback).
template <typename Submit>
Status wait_wal(Submit submit) {
    auto promise = std::make_shared<std::promise<Status>>();
    auto future = promise->get_future();
    Status s = submit([promise](Status st) { promise->set_value(std::move(st)); });
    if (!s.ok()) return s;
    return future.get();
}

// The core asserts what validate_restored checks: a data dir it refuses
// fails open() with the reason instead of aborting every start.
Status check_restored(const NodeOptions& options, const raft::RestoredState& state) {
    Status s = raft::validate_restored(state);
    if (s.ok()) return s;
    return Status(s.code(), "data dir " + options.data_dir + " cannot be opened: " + s.message() +
                                " (remove this member and add it back with an empty data dir)");
}

Status restore_from(SnapshotStore& store, const SnapshotFile& file, StateMachine& sm) {
    auto reader = store.open_reader(file);
    if (!reader.ok()) return reader.status();
    Status s = sm.restore(*reader.value());
    if (!s.ok()) return Status(s.code(), "restoring snapshot " + file.path + ": " + s.message());
    return s;
}

}  // namespace

Status create_directories(const std::string& path) {
    if (path.empty()) return Status(ErrorCode::invalid_argument, "data_dir is empty");
    for (std::size_t pos = 1; pos <= path.size(); ++pos) {
        if (pos != path.size() && path[pos] != '/') continue;
        const std::string prefix = path.substr(0, pos);
        if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
            return Status(ErrorCode::io_error, "mkdir " + prefix + ": " + std::strerror(errno));
    }
    return Status::ok_status();
}

Result<Recovered> recover_or_bootstrap(const NodeOptions& options, StateMachine& sm,
                                       const wal::Options& wal_options) {
    if (Status s = create_directories(options.data_dir); !s.ok()) return s;
    Recovered r;
    auto snapshots = SnapshotStore::open(options.data_dir + "/snapshots");
    if (!snapshots.ok()) return snapshots.status();
    r.snapshots = std::move(snapshots.value());
    auto log = LogStore::open(options.data_dir + "/wal", wal_options);
    if (!log.ok()) return log.status();
    r.log = std::move(log.value());
    const std::optional<SnapshotFile> latest = r.snapshots->latest();

    // A crash during bootstrap may leave metadata without the entry (or the
    // reverse): with no snapshot and no entry there is nothing to lose.
    if ((r.log->fresh() || r.log->wal().last_index() == 0) && !latest) {
        r.first_start = true;
        if (options.join) {
            // Empty log: the leader sends a snapshot or the log.  A vote cast
            // before a restart is kept (never vote twice in a term).
            r.state.hard_state = r.log->hard_state();
            r.state.hard_state.commit = 0;
            if (Status s = check_restored(options, r.state); !s.ok()) return s;
            return r;
        }
        auto config = initial_configuration(options);
        if (!config.ok()) return config.status();
        r.state = raft::bootstrap(config.value());
        if (!r.state.entries.empty()) {
            std::vector<raft::Entry> entries = r.state.entries;
            Status s = wait_wal([&](wal::Wal::Callback cb) {
                return r.log->append(entries, wal::Wal::Writer::flusher, std::move(cb));
            });
            if (!s.ok()) return s;
        }
        if (Status s = r.log->save_hard_state(r.state.hard_state); !s.ok()) return s;
        return r;
    }

    raft::HardState hs = r.log->hard_state();
    if (latest) {
        if (Status s = restore_from(*r.snapshots, *latest, sm); !s.ok()) return s;
        r.state.snapshot = latest->meta;
        r.applied = latest->meta;
    }
    const raft::Index snap_index = latest ? latest->meta.index : 0;
    const raft::Term snap_term = latest ? latest->meta.term : 0;
    auto entries = r.log->entries_after(snap_index, snap_term);
    if (!entries.ok()) return entries.status();
    r.state.entries = std::move(entries.value());
    const raft::Index expected_next =
        r.state.entries.empty() ? snap_index + 1 : r.state.entries.back().index + 1;
    if (r.log->wal().next_index() != expected_next) {
        // A snapshot from the leader was published but the log reset after
        // it did not happen before the crash: finish it now.
        Status s = wait_wal([&](wal::Wal::Callback cb) {
            return r.log->reset_after_snapshot(snap_index, snap_term, std::move(cb));
        });
        if (!s.ok()) return s;
    }
    const raft::Index last = r.state.entries.empty() ? snap_index : r.state.entries.back().index;
    hs.commit = std::clamp<raft::Index>(hs.commit, snap_index, last);
    // The term is at least the last stored entry's (bootstrap writes the
    // entry before the metadata; a crash in between leaves term 0).
    const raft::Term last_term = r.state.entries.empty() ? snap_term : r.state.entries.back().term;
    if (hs.term < last_term) {
        hs.term = last_term;
        hs.vote = raft::kNoNode;
    }
    r.state.hard_state = hs;
    r.state.applied = snap_index;
    if (Status s = check_restored(options, r.state); !s.ok()) return s;
    return r;
}

}  // namespace keel::runtime
