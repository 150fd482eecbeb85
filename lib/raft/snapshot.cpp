// raft/snapshot.cpp — log compaction and InstallSnapshot (Raft §7).
//
// The runtime takes snapshots of its state machine and tells the core
// (on_snapshot_taken); the core then drops the log up to the snapshot minus
// some trailing entries.  A follower whose next entry is gone gets a
// `snapshot` message carrying only metadata: the runtime streams the data
// in chunks and steps the message into the receiving core only once the
// whole snapshot is there.
#include "keel/assert.hpp"
#include "raft/state.hpp"

namespace keel::raft {

void Core::State::send_snapshot(NodeId to, Progress& pr) {
    KEEL_ASSERT(snapshot.has_value(), "entries were compacted without a snapshot");
    send(Message{.type = MessageType::snapshot, .to = to, .snapshot = snapshot});
    // Nothing more is sent until report_snapshot() or the follower's answer.
    pr.become_snapshot(snapshot->index);
}

// InstallSnapshot receiver (Figure 13): "If existing log entry has same index
// and term as snapshot's last included entry, retain log entries following
// it and reply.  Discard the entire log.  Reset state machine using snapshot
// contents (and load snapshot's cluster configuration)."
void Core::State::handle_snapshot(const Message& m) {
    const SnapshotMeta& meta = *m.snapshot;
    if (meta.index <= log.committed()) {
        // Stale: we already have (and will apply) everything it holds.
        send_after_persist(
            Message{.type = MessageType::append_response, .to = m.from, .index = log.committed()});
        return;
    }
    if (log.matches(meta.index, meta.term)) {
        log.commit_to(meta.index);
        send_after_persist(
            Message{.type = MessageType::append_response, .to = m.from, .index = log.committed()});
        return;
    }
    log.restore_snapshot(meta.index, meta.term);
    configs.reset(meta.index, meta.config);
    snapshot = meta;
    snapshot_to_install = meta;
    on_config_changed();
    send_after_persist(
        Message{.type = MessageType::append_response, .to = m.from, .index = meta.index});
}

Result<SnapshotMeta> Core::State::on_snapshot_taken(Index index) {
    if (index > log.applied()) {
        return Status{ErrorCode::invalid_argument, "snapshot index beyond the applied index"};
    }
    if (snapshot && index <= snapshot->index) {
        return Status{ErrorCode::invalid_argument, "snapshot not newer than the latest one"};
    }
    std::optional<Term> t = log.term_at(index);
    if (!t || index == 0)
        return Status{ErrorCode::invalid_argument, "snapshot index not in the log"};
    SnapshotMeta meta{index, *t, configs.at(index)};
    snapshot = meta;
    Index keep = static_cast<Index>(opt.snapshot_trailing_entries);
    Index compact_to = index > keep ? index - keep : 0;
    if (compact_to > log.prev_index()) {
        log.compact(compact_to);
        configs.compact(compact_to);
    }
    return meta;
}

void Core::State::report_snapshot(NodeId peer, bool ok) {
    if (role != Role::leader) return;
    auto it = progress.find(peer);
    if (it == progress.end() || it->second.state != Progress::State::snapshot) return;
    Progress& pr = it->second;
    if (!ok) pr.pending_snapshot = 0;
    pr.become_probe();
    // Success: wait for the follower's append_response; failure: retry after
    // the next heartbeat answer.
    pr.probe_sent = true;
}

}  // namespace keel::raft
