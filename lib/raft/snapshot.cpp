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
        // Entries were dropped while this leader was alone
        // (forget_applied_when_alone), or on a durable state machine's word
        // (on_state_machine_durable), and no snapshot covers them: ask the
        // runtime for one.  The follower waits in probe; on_snapshot_taken()
        // sends it the snapshot (and its next answer would ask again).
        KEEL_ASSERT(opt.forget_applied_when_alone || compaction.compacted_without_snapshot,
                    "entries were compacted without a snapshot");
        out.snapshot_wanted = true;
        return false;
    }
    send(Message{.type = MessageType::snapshot, .to = to, .snapshot = snapshot});
    // Nothing more is sent until report_snapshot() or the follower's answer.
    pr.become_snapshot(snapshot->index);
    return true;
}

// The only member of its configuration, and its leader, replicating to no
// one (a member whose removal is not committed yet keeps its Progress, and
// gets the entries it lacks: sync_progress): no one will ask for an entry.
// A configuration entry that adds a member takes effect when appended
// (config() is the latest in the log), so this turns false before the new
// member can be sent anything.
bool Core::State::alone() const {
    const Configuration& c = config();
    return role == Role::leader && progress.empty() && c.members.size() == 1 && c.is_voter(opt.id);
}

// A lone leader keeps only what is not yet applied in memory: every applied
// entry is durable (a lone voter commits what it persisted) and in storage,
// and nothing else will read it from the in-memory log.  Without this the
// log grows by every entry until a snapshot; with snapshots off, without
// bound (and growing a heap a page at a time is not free: docs/runtime.md).
void Core::State::forget_applied_when_alone() {
    if (!opt.forget_applied_when_alone || !alone()) return;
    const Index upto = log.applied();
    if (upto <= log.prev_index()) return;
    KEEL_ASSERT(upto <= log.persisted(), "a lone leader applied an entry it has not persisted");
    // Terms never decrease along the log: when the first and the last entry
    // dropped share a term (every batch but the one crossing a new term's
    // no-op), so do all between, and no entry needs a look.
    auto note_term_of = [&](Index i) {
        const Term t = log.at(i).term;
        if (compaction.forgotten_terms.empty() || compaction.forgotten_terms.back().second != t)
            compaction.forgotten_terms.emplace_back(i, t);
    };
    const Index first = log.prev_index() + 1;
    if (log.at(first).term == log.at(upto).term) {
        note_term_of(first);
    } else {
        for (Index i = first; i <= upto; ++i) note_term_of(i);
    }
    log.compact(upto);
    // The configuration history stays: on_snapshot_taken() may still ask
    // for the configuration at a dropped index.
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
