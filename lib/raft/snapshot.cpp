// raft/snapshot.cpp — log compaction and InstallSnapshot (Raft §7).
//
// The runtime takes snapshots of its state machine and tells the core
// (on_snapshot_taken); the core then drops the log up to the snapshot minus
// some trailing entries.  A follower whose next entry is gone gets a
// `snapshot` message carrying only metadata: the runtime streams the data
// in chunks and steps the message into the receiving core only once the
// whole snapshot is there.
#include <algorithm>
#include <iterator>

#include "keel/assert.hpp"
#include "raft/state.hpp"

namespace keel::raft {

// Returns false if there is no snapshot to send yet.
bool Core::State::send_snapshot(NodeId to, Progress& pr) {
    if (!snapshot || snapshot->index < log.prev_index()) {
        // Entries were dropped once stored everywhere (forgetting.cpp: the
        // follower joined since), or on a durable state machine's word
        // (on_state_machine_durable), and no snapshot covers them: ask the
        // runtime for one.  The follower waits in probe; on_snapshot_taken()
        // sends it the snapshot (and its next answer would ask again).
        KEEL_ASSERT(opt.forget_stored_everywhere || compaction.compacted_without_snapshot,
                    "entries were compacted without a snapshot");
        out.snapshot_wanted = true;
        return false;
    }
    send(Message{.type = MessageType::snapshot, .to = to, .snapshot = snapshot});
    // Nothing more is sent until report_snapshot() or the follower's answer.
    pr.become_snapshot(snapshot->index);
    return true;
}

std::optional<Term> Core::State::term_at_or_forgotten(Index index) const {
    if (std::optional<Term> t = log.term_at(index)) return t;
    if (index >= log.prev_index() || compaction.forgotten_terms.empty() ||
        index < compaction.forgotten_terms.front().first)
        return std::nullopt;
    auto after =
        std::upper_bound(compaction.forgotten_terms.begin(), compaction.forgotten_terms.end(),
                         index, [](Index i, const auto& run) { return i < run.first; });
    return std::prev(after)->second;
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
    compaction.forgotten_terms.clear();
    configs.reset(meta.index, meta.config);
    snapshot = meta;
    out.snapshot_to_install = meta;
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
    std::optional<Term> t = term_at_or_forgotten(index);
    if (!t || index == 0)
        return Status{ErrorCode::invalid_argument, "snapshot index not in the log"};
    SnapshotMeta meta{index, *t, configs.at(index)};
    snapshot = meta;
    Index keep = static_cast<Index>(opt.snapshot_trailing_entries);
    Index compact_to = index > keep ? index - keep : 0;
    if (compact_to > log.prev_index()) log.compact(compact_to);
    configs.compact(std::min(compact_to, log.prev_index()));
    // Terms the snapshot covers are no longer asked for.
    while (compaction.forgotten_terms.size() > 1 &&
           compaction.forgotten_terms[1].first <= index + 1)
        compaction.forgotten_terms.erase(compaction.forgotten_terms.begin());
    if (!compaction.forgotten_terms.empty() && index >= log.prev_index())
        compaction.forgotten_terms.clear();
    // Followers that waited for a snapshot (send_snapshot) get it now.
    if (role == Role::leader) {
        for (auto& [id, pr] : progress) {
            if (pr.state != Progress::State::snapshot && !log.term_at(pr.next - 1))
                send_append(id, /*send_if_empty=*/false);
        }
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

// The state machine holds everything up to `index` itself: the in-memory
// log behind it may go as it would behind a snapshot (keeping the trailing
// entries for slightly lagging followers), with no snapshot to send; the
// next follower that needs a dropped entry makes the leader ask for one
// (send_snapshot).
Result<SnapshotMeta> Core::State::on_state_machine_durable(Index index) {
    if (index > log.applied())
        return Status{ErrorCode::invalid_argument, "durable index beyond the applied index"};
    std::optional<Term> t = term_at_or_forgotten(index);
    if (!t || index == 0)
        return Status{ErrorCode::invalid_argument, "durable index not in the log"};
    SnapshotMeta meta{index, *t, configs.at(index)};
    const Index keep = static_cast<Index>(opt.snapshot_trailing_entries);
    const Index compact_to = index > keep ? index - keep : 0;
    if (compact_to > log.prev_index()) {
        log.compact(compact_to);
        configs.compact(compact_to);
        compaction.compacted_without_snapshot = true;
    }
    return meta;
}

}  // namespace keel::raft
