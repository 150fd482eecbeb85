#include "runtime/bootstrap.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>

#include <fmt/format.h>
#include "keel/wal/reader.hpp"
#include "runtime/cluster_identity.hpp"
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

// What the read-only check of the data dir decided.
struct StartPlan {
    std::optional<SnapshotFile> snapshot;  // the one to start from, data verified
    // Newer snapshots whose trailer checked out but whose data did not.
    std::vector<DamagedSnapshot> data_damaged;
    bool any_snapshot_file = false;  // valid or damaged
};

std::string describe_snapshots(const SnapshotStore::Listing& listing,
                               const std::vector<DamagedSnapshot>& data_damaged) {
    std::string out;
    for (const SnapshotFile& f : listing.valid) {
        const bool damaged =
            std::any_of(data_damaged.begin(), data_damaged.end(),
                        [&](const DamagedSnapshot& d) { return d.path == f.path; });
        if (!damaged) out += fmt::format("; {} ends at index {}", f.path, f.meta.index);
    }
    for (const DamagedSnapshot& d : listing.damaged) out += "; " + d.why.to_string();
    for (const DamagedSnapshot& d : data_damaged) out += "; " + d.why.to_string();
    return out.empty() ? "; there is no snapshot file" : out;
}

// Where the log starts and the floor it holds: read only from the WAL of
// its own in `wal_dir`, or from the group's store on the shared WAL.
struct LogStart {
    std::uint64_t first = 1;  // the first index the log still holds
    std::optional<raft::SnapshotMeta> floor;
};

Result<LogStart> read_log_start(const std::string& wal_dir, wal::FileSystem& fs,
                                const LogStore* shared) {
    LogStart start;
    if (shared != nullptr) {
        auto floor = shared->floor();
        if (!floor.ok()) return floor.status();
        start.floor = *floor;
        start.first = shared->first_index();
        return start;
    }
    auto layout = wal::read_wal_layout(wal_dir, &fs);
    if (layout.ok()) {
        auto decoded = decode_floor(layout->meta.metadata.opaque, wal_dir);
        if (!decoded.ok()) return decoded.status();
        start.floor = *decoded;
        start.first = std::max<std::uint64_t>(layout->meta.log_floor, 1);
        for (const wal::SegmentInfo& segment : layout->segments) {
            if (!segment.header_ok) continue;
            start.first = std::max(start.first, segment.first_index);
            break;
        }
    } else if (layout.status().code() != ErrorCode::not_found) {
        return layout.status();
    }
    return start;
}

// Read only: where the log starts, which snapshot the node can start from.
// `sm_applied`: what a durable state machine holds (0: nothing).  `shared`:
// the group's store on a shared WAL, or null for a WAL of its own.
Result<StartPlan> check_data_dir(const std::string& data_dir, wal::FileSystem& fs,
                                 std::uint64_t sm_applied, const LogStore* shared) {
    const std::string wal_dir = shared != nullptr ? shared->wal().dir() : data_dir + "/wal";
    const std::string snapshot_dir = data_dir + "/snapshots";
    auto start = read_log_start(wal_dir, fs, shared);
    if (!start.ok()) return start.status();
    const std::uint64_t log_first = start->first;
    const std::optional<raft::SnapshotMeta>& floor = start->floor;
    auto listing = SnapshotStore::list(snapshot_dir, fs);
    if (!listing.ok()) return listing.status();
    StartPlan plan;
    plan.any_snapshot_file = !listing->valid.empty() || !listing->damaged.empty();
    // The newest intact snapshot that the log continues.  (Older ones than
    // the log's start cannot be continued: the entries after them are gone.)
    for (auto it = listing->valid.rbegin(); it != listing->valid.rend(); ++it) {
        if (it->meta.index + 1 < log_first) break;
        auto verified = SnapshotStore::verify(fs, it->path, &it->meta);
        if (verified.ok()) {
            plan.snapshot = std::move(verified.value());
            break;
        }
        plan.data_damaged.push_back(DamagedSnapshot{it->path, verified.status()});
    }
    // A durable state machine that holds everything up to the point the log
    // was compacted to on its word needs no snapshot.
    const bool state_machine_covers =
        floor && floor->index + 1 >= log_first && sm_applied >= floor->index;
    if (!plan.snapshot && log_first > 1 && floor && !state_machine_covers) {
        return Status(
            ErrorCode::corruption,
            fmt::format("data dir {}: the log in {} starts at index {}, compacted through index {} "
                        "on the state machine's word (StateMachine::applied_index), but the state "
                        "machine now reports applied index {} and no intact snapshot in {} reaches "
                        "index {}{}. The state machine lost state it reported durable: restore its "
                        "files, or empty the data dir and add the node to its cluster again",
                        data_dir, wal_dir, log_first, floor->index, sm_applied, snapshot_dir,
                        log_first - 1, describe_snapshots(*listing, plan.data_damaged)));
    }
    if (!plan.snapshot && log_first > 1 && !state_machine_covers) {
        return Status(
            ErrorCode::corruption,
            fmt::format(
                "data dir {}: the log in {} starts at index {} (the entries before it were "
                "compacted into a snapshot), but no intact snapshot in {} reaches index {}{}. The "
                "state before the log's first entry is lost here: restore the snapshot files, or "
                "empty the data dir and add the node to its cluster again",
                data_dir, wal_dir, log_first, snapshot_dir, log_first - 1,
                describe_snapshots(*listing, plan.data_damaged)));
    }
    return plan;
}

// The core asserts what validate_restored checks: a data dir it refuses
// fails open() with the reason instead of aborting every start.
Status check_restored(const NodeOptions& options, const raft::RestoredState& state) {
    Status s = raft::validate_restored(state);
    if (s.ok()) return s;
    return Status(s.code(), fmt::format("data dir {} cannot be opened: {} (remove this member and "
                                        "add it back with an empty data dir)",
                                        options.data_dir, s.message()));
}

Status restore_from(SnapshotStore& store, const SnapshotFile& file, StateMachine& sm) {
    auto reader = store.open_reader(file);
    if (!reader.ok()) return reader.status();
    Status s = sm.restore(*reader.value());
    if (!s.ok())
        return Status(s.code(), fmt::format("the state machine could not restore snapshot {}: {}",
                                            file.path, s.message()));
    return s;
}

// Where a reopened node starts: the state it continues (`base`: keel's
// snapshot, or a durable state machine's compaction point), and whether
// the state machine is restored from that snapshot or holds its state.
struct Start {
    std::optional<raft::SnapshotMeta> base;
    bool base_is_floor = false;
    bool restore = false;
};

// A durable state machine (sm_applied > 0) that holds at least the chosen
// snapshot's state and the compaction point's is not restored: applying
// resumes after sm_applied.  Otherwise keel's snapshot restores it, as for a
// state machine that keeps nothing (check_data_dir made sure the log
// continues one of the two).
Start choose_start(const std::optional<SnapshotFile>& chosen,
                   const std::optional<raft::SnapshotMeta>& floor, std::uint64_t sm_applied) {
    Start start;
    const raft::Index snapshot_index = chosen ? chosen->meta.index : 0;
    const bool own_state =
        sm_applied > 0 && sm_applied >= snapshot_index && (!floor || sm_applied >= floor->index);
    if (!own_state) {
        if (chosen) {
            start.base = chosen->meta;
            start.restore = true;
        }
        return start;
    }
    if (floor && floor->index > snapshot_index) {
        start.base = *floor;
        start.base_is_floor = true;
    } else if (chosen) {
        start.base = chosen->meta;
    }
    return start;
}

// The state machine's position at `index`: its term and the configuration
// as of it, from the restored base and the entries after it.  An index
// beyond the log is the state machine's error (it reports entries keel
// never gave it).
Result<raft::SnapshotMeta> applied_as_of(const raft::RestoredState& state, raft::Index index,
                                         const NodeOptions& options) {
    raft::SnapshotMeta at;
    if (state.snapshot) at = *state.snapshot;
    if (index < at.index)
        return Status(ErrorCode::corruption,
                      fmt::format("data dir {}: the state machine reports applied index {}, behind "
                                  "the state {} it must continue",
                                  options.data_dir, index, at.index));
    for (const raft::Entry& e : state.entries) {
        if (e.index > index) break;
        at.index = e.index;
        at.term = e.term;
        if (e.type == raft::EntryType::config) {
            auto config = raft::decode_configuration(e.data);
            if (!config)
                return Status(ErrorCode::corruption,
                              fmt::format("configuration entry {} does not decode", e.index));
            at.config = std::move(*config);
        }
    }
    if (at.index != index)
        return Status(
            ErrorCode::invalid_argument,
            fmt::format("the state machine reports applied index {} (StateMachine::applied_index), "
                        "beyond the last index {} of the log in {}/wal: its state belongs to "
                        "another data dir, or keel's log lost entries it had acknowledged",
                        index, at.index, options.data_dir));
    return at;
}

// A founding member's or a joining node's first start.
Status first_start(const NodeOptions& options, Recovered& r) {
    r.first_start = true;
    if (options.join) {
        // Empty log: the leader sends a snapshot or the log.  A vote cast
        // before a restart is kept (never vote twice in a term).
        r.state.hard_state = r.log->hard_state();
        r.state.hard_state.commit = 0;
        return check_restored(options, r.state);
    }
    auto config = initial_configuration(options);
    if (!config.ok()) return config.status();
    r.state = raft::bootstrap(config.value());
    if (!r.state.entries.empty() && r.log->queues_hard_state()) {
        // A shared WAL: the entries and the hard state in one write (a Host
        // opening many groups waits for one fdatasync per group, not two).
        std::vector<raft::Entry> entries = r.state.entries;
        auto appended = std::make_shared<std::promise<Status>>();
        Status s = r.log->append(entries, wal::Wal::Writer::flusher,
                                 [appended](Status st) { appended->set_value(std::move(st)); });
        if (!s.ok()) return s;
        const Status saved = wait_wal([&](wal::Wal::Callback cb) {
            return r.log->queue_hard_state(r.state.hard_state, std::move(cb));
        });
        s = appended->get_future().get();
        return s.ok() ? saved : s;
    }
    if (!r.state.entries.empty()) {
        std::vector<raft::Entry> entries = r.state.entries;
        Status s = wait_wal([&](wal::Wal::Callback cb) {
            return r.log->append(entries, wal::Wal::Writer::flusher, std::move(cb));
        });
        if (!s.ok()) return s;
    }
    return r.log->save_hard_state(r.state.hard_state);
}

// The configuration in effect at the end of the recovered state: the last
// configuration entry of the log, else the snapshot's.
raft::Configuration latest_configuration(const raft::RestoredState& state) {
    for (auto it = state.entries.rbegin(); it != state.entries.rend(); ++it) {
        if (it->type != raft::EntryType::config) continue;
        if (auto config = raft::decode_configuration(it->data)) return *config;
    }
    return state.snapshot ? state.snapshot->config : raft::Configuration{};
}

// NodeOptions::force_new_cluster: this node alone as a voter, in a new
// term, written to the log (durably, before the core starts) after what it
// holds.  The new term keeps the entry apart from anything a leader of the
// current term wrote at that index elsewhere.  Crash windows: the entry is
// appended before the hard state is saved with the new term; a crash in
// between leaves an entry of a term newer than the saved one, which
// recovery takes the term from (the hard state's term is raised to the last
// entry's), so the next start holds the new configuration either way.
Status force_new_cluster(const NodeOptions& options, Recovered& r, const LogFunction& log) {
    if (options.join)
        return Status(ErrorCode::invalid_argument, "force_new_cluster and join exclude each other");
    const raft::Configuration old = latest_configuration(r.state);
    raft::MemberInfo self{true, ""};
    if (auto it = old.members.find(options.id); it != old.members.end()) {
        self.context = it->second.context;
    } else {
        MemberSpec spec{options.id, options.listen_address, "", true};
        for (const MemberSpec& m : options.initial_members)
            if (m.id == options.id) spec = m;
        if (Status s = validate_member(spec); !s.ok()) return s;
        self.context = encode_member_context(spec);
    }
    raft::Configuration alone;
    alone.members[options.id] = self;
    const raft::Index last =
        r.state.entries.empty() ? r.applied.index : r.state.entries.back().index;
    raft::HardState& hs = r.state.hard_state;
    const raft::Term term = hs.term + 1;
    std::vector<raft::Entry> entry{
        raft::Entry{term, last + 1, raft::EntryType::config, raft::encode_configuration(alone)}};
    r.state.entries.push_back(entry.front());
    Status s = wait_wal([&](wal::Wal::Callback cb) {
        return r.log->append(entry, wal::Wal::Writer::flusher, std::move(cb));
    });
    if (!s.ok()) return s;
    hs = raft::HardState{term, raft::kNoNode, hs.commit};
    if (s = r.log->save_hard_state(hs); !s.ok()) return s;
    log(LogLevel::warn,
        fmt::format(
            "force_new_cluster: node {} is now the only voter (term {}, configuration entry {}, {} "
            "member(s) before); the old members must not come back with their data",
            options.id, term, last + 1, old.members.size()));
    return Status();
}

}  // namespace

Status create_directories(const std::string& path, std::set<std::string>* created_parents) {
    if (path.empty()) return Status(ErrorCode::invalid_argument, "data_dir is empty");
    auto made = [&](std::size_t end) {
        if (created_parents == nullptr) return;
        const std::size_t slash = path.rfind('/', end - 1);
        if (slash == std::string::npos)
            created_parents->insert(".");
        else
            created_parents->insert(slash == 0 ? "/" : path.substr(0, slash));
    };
    // Most paths exist but their last part (a group's data dir): one call.
    if (::mkdir(path.c_str(), 0700) == 0) {
        made(path.size());
        return Status::ok_status();
    }
    if (errno == EEXIST) return Status::ok_status();
    for (std::size_t pos = 1; pos <= path.size(); ++pos) {
        if (pos != path.size() && path[pos] != '/') continue;
        const std::string prefix = path.substr(0, pos);
        if (::mkdir(prefix.c_str(), 0700) == 0) {
            made(pos);
        } else if (errno != EEXIST) {
            return Status(ErrorCode::io_error,
                          fmt::format("mkdir {}: {}", prefix, std::strerror(errno)));
        }
    }
    return Status::ok_status();
}

Result<Recovered> recover_or_bootstrap(const NodeOptions& options, StateMachine& sm,
                                       const wal::Options& wal_options, const LogFunction& log,
                                       std::unique_ptr<LogStore> shared_log) {
    wal::FileSystem& fs = wal_options.fs != nullptr ? *wal_options.fs : *wal::default_file_system();
    if (Status s = create_directories(options.data_dir); !s.ok()) return s;
    // Asked once: what a durable state machine holds already (0: nothing).
    const std::uint64_t sm_applied = sm.applied_index();
    auto plan = check_data_dir(options.data_dir, fs, sm_applied, shared_log.get());
    if (!plan.ok()) return plan.status();

    Recovered r;
    auto snapshots = SnapshotStore::open(options.data_dir + "/snapshots", fs);
    if (!snapshots.ok()) return snapshots.status();
    r.snapshots = std::move(snapshots.value());
    for (const DamagedSnapshot& d : plan->data_damaged) {
        for (const SnapshotFile& f : r.snapshots->all())
            if (f.path == d.path) r.snapshots->mark_damaged(f, d.why);
    }
    for (const DamagedSnapshot& d : r.snapshots->damaged())
        log(LogLevel::warn,
            "skipping a damaged snapshot (left in place for inspection): " + d.why.to_string());
    if (shared_log) {
        r.log = std::move(shared_log);
    } else {
        auto log_store = LogStore::open(options.data_dir + "/wal", wal_options);
        if (!log_store.ok()) return log_store.status();
        r.log = std::move(log_store.value());
    }
    const std::optional<SnapshotFile>& chosen = plan->snapshot;

    // A crash during bootstrap may leave metadata without the entry (or the
    // reverse): with no snapshot and no entry there is nothing to lose.
    const bool empty = (r.log->fresh() || r.log->empty()) && !plan->any_snapshot_file;
    // Before the bootstrap entry: a cluster's entries never exist without its id.
    Result<transport::ClusterId> cluster_id = resolve_cluster_id(options, !empty, fs);
    if (!cluster_id.ok()) return cluster_id.status();
    r.cluster_id = *cluster_id;
    if (empty) {
        if (options.force_new_cluster)
            return Status(
                ErrorCode::invalid_argument,
                fmt::format("force_new_cluster needs a data dir that holds state; {} holds none",
                            options.data_dir));
        if (sm_applied != 0)
            return Status(
                ErrorCode::invalid_argument,
                fmt::format(
                    "the state machine reports applied index {} (StateMachine::applied_index), but "
                    "data dir {} holds no log: its state belongs to another data dir",
                    sm_applied, options.data_dir));
        if (Status s = first_start(options, r); !s.ok()) return s;
        return r;
    }
    auto floor = r.log->floor();
    if (!floor.ok()) return floor.status();
    Start start = choose_start(chosen, *floor, sm_applied);
    const raft::Index base_index = start.base ? start.base->index : 0;
    const raft::Term base_term = start.base ? start.base->term : 0;
    if (r.log->first_index() > base_index + 1) {
        // check_data_dir rules this out; the log changed under us otherwise.
        return Status(
            ErrorCode::corruption,
            fmt::format(
                "the log in {}/wal starts at index {}, after the state it must continue (index {})",
                options.data_dir, r.log->first_index(), base_index));
    }
    raft::HardState hs = r.log->hard_state();
    if (chosen) {
        if (Status s = r.snapshots->make_durable(*chosen); !s.ok()) return s;
        if (r.snapshots->latest() && r.snapshots->latest()->path != chosen->path)
            log(LogLevel::warn, "restarting from the older snapshot " + chosen->path);
    }
    if (start.restore) {
        if (Status s = restore_from(*r.snapshots, *chosen, sm); !s.ok()) return s;
    }
    if (start.base) {
        r.state.snapshot = *start.base;
        r.state.snapshot_is_floor = start.base_is_floor;
    }
    auto entries = r.log->entries_after(base_index, base_term);
    if (!entries.ok()) return entries.status();
    r.state.entries = std::move(entries.value());
    const raft::Index expected_next =
        r.state.entries.empty() ? base_index + 1 : r.state.entries.back().index + 1;
    auto replaced = r.log->replaced_by_snapshot(base_index, base_term);
    if (!replaced.ok()) return replaced.status();
    if (replaced.value() || r.log->next_index() != expected_next) {
        // A snapshot from the leader was published but the log reset after
        // it did not happen before the crash: finish it now.  Crash window:
        // the old log either does not end where the entries kept do, or
        // holds the snapshot's index with another term — even ending exactly
        // at the snapshot, its record there would void every record
        // appended after it at the next start (seed 53021 of `keel_sim
        // --nodes 3`; tests/runtime/recovery_test.cpp).
        Status s = wait_wal([&](wal::Wal::Callback cb) {
            return r.log->reset_after_snapshot(base_index, base_term, std::move(cb));
        });
        if (!s.ok()) return s;
    }
    const raft::Index last = r.state.entries.empty() ? base_index : r.state.entries.back().index;
    // Where applying resumes: after the restored snapshot, or after what
    // the durable state machine holds.
    auto applied = applied_as_of(r.state, start.restore ? base_index : sm_applied, options);
    if (!applied.ok()) return applied.status();
    r.applied = std::move(*applied);
    r.last_snapshot_index = start.base && !start.base_is_floor ? base_index : 0;
    // Everything the state machine applied was committed (and durable here
    // before it was applied); the commit index on disk is saved lazily.
    hs.commit = std::clamp<raft::Index>(std::max(hs.commit, r.applied.index), base_index, last);
    // The term is at least the last stored entry's (bootstrap writes the
    // entry before the metadata; a crash in between leaves term 0).
    const raft::Term last_term = r.state.entries.empty() ? base_term : r.state.entries.back().term;
    if (hs.term < last_term) {
        hs.term = last_term;
        hs.vote = raft::kNoNode;
    }
    r.state.hard_state = hs;
    r.state.applied = r.applied.index;
    if (Status s = check_restored(options, r.state); !s.ok()) return s;
    if (options.force_new_cluster) {
        if (Status s = force_new_cluster(options, r, log); !s.ok()) return s;
    }
    r.log->forget_recovered();
    return r;
}

}  // namespace keel::runtime
