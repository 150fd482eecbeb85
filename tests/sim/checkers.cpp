#include "checkers.hpp"

#include <algorithm>

namespace keel::sim {

using raft::Entry;
using raft::Index;
using raft::NodeId;
using raft::Term;

namespace {

std::string n_(NodeId id) {
    return std::string("n") + std::to_string(id);
}
std::string s_(std::uint64_t v) {
    return std::to_string(v);
}

}  // namespace

void Checker::fail(const std::string& what) {
    if (failed_) return;  // the first violation is the one worth reading
    failed_ = true;
    fail_(what);
}

void Checker::bootstrapped(const raft::RestoredState& restored) {
    if (!ref_.empty()) return;
    prefix_hash_.assign(1, ValueLog().hash());
    prefix_count_.assign(1, 0);
    for (const Entry& e : restored.entries) {
        if (e.index > restored.hard_state.commit) break;
        reference(e.index, RefEntry{e.term, e.type, entry_digest(e)}, "bootstrap");
    }
    leader_commit_max_ = std::max(leader_commit_max_, restored.hard_state.commit);
    commit_term_.resize(leader_commit_max_, 0);
}

void Checker::node_started(NodeId node, const raft::RestoredState& restored) {
    if (prefix_hash_.empty()) {
        prefix_hash_.assign(1, ValueLog().hash());
        prefix_count_.assign(1, 0);
    }
    // What a correct node left on its disk always opens (the runtime refuses
    // to open a data dir that fails this check).
    if (keel::Status st = raft::validate_restored(restored); !st.ok())
        fail(n_(node) + " restarts from a state validate_restored refuses: " + st.to_string());
    Mirror& m = mirrors_[node];
    m = Mirror{};
    if (restored.snapshot) {
        m.snap_index = restored.snapshot->index;
        m.snap_term = restored.snapshot->term;
        if (m.snap_index > commit_known() || committed_term(m.snap_index) != m.snap_term) {
            fail(std::string("State Machine Safety: ") + n_(node) +
                 " restarts from a snapshot at " + s_(m.snap_index) + "/t" + s_(m.snap_term) +
                 " that is not committed");
        }
    }
    for (const Entry& e : restored.entries) append_to_mirror(node, e);
    NodeWatch& w = watch_[node];
    const std::uint64_t incarnation = w.incarnation + 1;
    w = NodeWatch{};
    w.incarnation = incarnation;
    w.commit_observed = m.snap_index;
}

void Checker::reference(Index index, const RefEntry& e, const std::string& who) {
    if (index <= ref_.size()) {
        const RefEntry& r = ref_[index - 1];
        if (r.term != e.term || r.digest != e.digest || r.type != e.type) {
            fail(std::string("State Machine Safety: ") + who + " has entry " + s_(index) + "/t" +
                 s_(e.term) + " (digest " + s_(e.digest) + ") but the committed entry there is " +
                 s_(index) + "/t" + s_(r.term) + " (digest " + s_(r.digest) + ")");
        }
        return;
    }
    if (index != ref_.size() + 1) {
        fail(std::string("State Machine Safety: ") + who + " shows entry " + s_(index) +
             " committed, but entries after " + s_(ref_.size()) + " were never seen committed");
        return;
    }
    ref_.push_back(e);
    ValueLog v(index - 1, prefix_count_.back(), prefix_hash_.back());
    v.apply(index, e.type, e.digest);
    prefix_hash_.push_back(v.hash());
    prefix_count_.push_back(v.count());
}

void Checker::log_matching(NodeId node, Index index, Term prev_term, const RefEntry& e) {
    for (const auto& [other, m] : mirrors_) {
        if (other == node || index <= m.snap_index || m.term_at(index) != e.term) continue;
        const RefEntry& theirs = m.entries[index - m.snap_index - 1];
        const auto their_prev = index == 1 ? std::optional<Term>(0) : m.term_at(index - 1);
        if (theirs.digest != e.digest || (their_prev && *their_prev != prev_term)) {
            fail(std::string("Log Matching: ") + n_(node) + " holds entry " + s_(index) + "/t" +
                 s_(e.term) + " (digest " + s_(e.digest) + ", previous term " + s_(prev_term) +
                 ") but " + n_(other) + " holds " + s_(index) + "/t" + s_(e.term) + " (digest " +
                 s_(theirs.digest) + ", previous term " +
                 (their_prev ? s_(*their_prev) : std::string("compacted")) + ")");
            return;
        }
    }
}

Checker::Mirror Checker::mirror_of(const raft::RestoredState& restored) {
    Mirror m;
    if (restored.snapshot) {
        m.snap_index = restored.snapshot->index;
        m.snap_term = restored.snapshot->term;
    }
    for (const Entry& e : restored.entries) {
        if (e.index > m.snap_index) m.entries.push_back(RefEntry{e.term, e.type, entry_digest(e)});
    }
    return m;
}

void Checker::node_crashed(NodeId node, const raft::RestoredState& durable) {
    mirrors_[node] = mirror_of(durable);
}

void Checker::append_to_mirror(NodeId node, const Entry& e) {
    Mirror& m = mirrors_[node];
    if (e.index <= m.snap_index) return;  // covered by the snapshot
    if (e.index > m.last() + 1) {
        fail(n_(node) + " asked to persist entry " + s_(e.index) + " after a log ending at " +
             s_(m.last()) + " (a gap)");
        return;
    }
    m.entries.resize(e.index - m.snap_index - 1);  // truncates a conflicting suffix
    const Term prev = e.index == 1 ? 0 : m.term_at(e.index - 1).value_or(0);
    RefEntry r{e.term, e.type, entry_digest(e)};
    log_matching(node, e.index, prev, r);
    m.entries.push_back(r);
}

void Checker::on_entries(NodeId node, bool leader, const std::vector<Entry>& entries) {
    const Mirror& m = mirrors_[node];
    if (leader && entries.front().index <= m.last()) {
        fail(std::string("Leader Append-Only: leader ") + n_(node) +
             " rewrites its log from entry " + s_(entries.front().index) + " (its log ends at " +
             s_(m.last()) + ")");
    }
    for (const Entry& e : entries) append_to_mirror(node, e);
}

void Checker::on_snapshot_installed(NodeId node, bool leader, const raft::SnapshotMeta& meta,
                                    const ValueLog& state) {
    if (leader)
        fail(std::string("Leader Append-Only: leader ") + n_(node) +
             " installs a snapshot over its log");
    if (meta.index > commit_known() || committed_term(meta.index) != meta.term) {
        fail(std::string("State Machine Safety: ") + n_(node) + " installs a snapshot at " +
             s_(meta.index) + "/t" + s_(meta.term) + " that is not committed");
    }
    check_state(node, state, "installed snapshot");
    Mirror& m = mirrors_[node];
    m.snap_index = meta.index;
    m.snap_term = meta.term;
    m.entries.clear();
    watch_[node].commit_observed = std::max(watch_[node].commit_observed, meta.index);
}

void Checker::on_snapshot_taken(NodeId node, const raft::SnapshotMeta& meta,
                                const ValueLog& state) {
    if (meta.index > commit_known() || committed_term(meta.index) != meta.term) {
        fail(std::string("State Machine Safety: ") + n_(node) + " takes a snapshot at " +
             s_(meta.index) + "/t" + s_(meta.term) + " that is not committed");
    }
    check_state(node, state, "snapshot taken");
}

void Checker::on_applied(NodeId node, const Entry& entry, const ValueLog& state) {
    reference(entry.index, RefEntry{entry.term, entry.type, entry_digest(entry)},
              n_(node) + " applying");
    check_state(node, state, "state machine");
}

void Checker::check_state(NodeId node, const ValueLog& state, const char* what) {
    const Index i = state.applied();
    if (i > commit_known()) {
        fail(std::string("State Machine Safety: ") + n_(node) + " " + what + " reflects index " +
             s_(i) + ", beyond anything committed (" + s_(commit_known()) + ")");
        return;
    }
    if (state.hash() != prefix_hash_[i] || state.count() != prefix_count_[i]) {
        fail(std::string("State Machine Safety: ") + n_(node) + " " + what + " at index " + s_(i) +
             " holds " + s_(state.count()) + " values (hash " + s_(state.hash()) +
             ") but the committed prefix has " + s_(prefix_count_[i]) + " (hash " +
             s_(prefix_hash_[i]) + ")");
    }
}

void Checker::on_read_served(NodeId node, Index read_index, Index commit_at_start,
                             const ValueLog& state) {
    if (read_index < commit_at_start) {
        fail(std::string("Linearizability: ") + n_(node) + " serves a read at index " +
             s_(read_index) + " but index " + s_(commit_at_start) +
             " was committed before the read started");
    }
    if (state.applied() < read_index) {
        fail(std::string("Linearizability: ") + n_(node) + " serves a read at index " +
             s_(read_index) + " from a state applied only to " + s_(state.applied()));
    }
    check_state(node, state, "read result");
}

void Checker::after_step(const Nodes& nodes, const Disks& disks) {
    if (failed_) return;
    for (const auto& [id, node] : nodes) {
        const raft::Core& core = node->core();
        NodeWatch& w = watch_[id];
        if (core.term() < w.term_seen) {
            fail(n_(id) + " term went back from " + s_(w.term_seen) + " to " + s_(core.term()));
        }
        w.term_seen = core.term();
        if (core.commit_index() < w.commit_seen) {
            fail(n_(id) + " commit index went back from " + s_(w.commit_seen) + " to " +
                 s_(core.commit_index()));
        }
        w.commit_seen = core.commit_index();
        const Mirror& m = mirrors_[id];
        if (core.last_index() != m.last() ||
            (m.last() > m.snap_index && core.term_at(m.last()) != m.term_at(m.last()))) {
            fail(n_(id) + " core log (last " + s_(core.last_index()) +
                 ") differs from what it asked the runtime to persist (last " + s_(m.last()) + ")");
        }
        // A leader that removed itself steps down in the very step that
        // commits its removal: that commit is still a leader's to verify.
        const bool leader = core.role() == raft::Role::leader;
        if (leader || (w.was_leader && core.term() == w.leader_term))
            check_leader(id, *node, w, disks);
        if (leader && core.stored_everywhere() > w.stored_seen)
            check_stored_everywhere(id, core, disks);
        w.stored_seen = core.stored_everywhere();
        w.was_leader = leader;
    }
    for (const auto& [id, node] : nodes) {
        const raft::Core& core = node->core();
        if (core.commit_index() > leader_commit_max_) {
            fail(std::string("Commit: ") + n_(id) + " has commit index " + s_(core.commit_index()) +
                 " but no leader ever committed past " + s_(leader_commit_max_));
        }
        observe_commits(id, core, watch_[id]);
        check_forgotten(id, core);
    }
    // Every disk, of running nodes and of crashed or removed ones alike.
    for (const auto& [id, disk] : disks) check_durable(id, *disk, disk_watch_[id]);
}

// The saved commit index is written apart from the WAL and may reach the
// disk before appends and truncations queued ahead of it: it must never
// claim more than the WAL holds, as it stands now (docs/runtime.md).  The
// disk reports the lowest index whose recovered entry may have changed since
// the last look, so each entry is compared with the reference once per change.
void Checker::check_durable(NodeId id, SimDisk& disk, DiskWatch& w) {
    if (failed_ || disk.version() == w.version) return;
    w.version = disk.version();
    const Index changed_from = disk.changed_from();
    disk.reset_changes();
    if (changed_from != UINT64_MAX) w.verified = std::min(w.verified, changed_from - 1);
    if (changed_from == 0) w.verified = 0;
    const DurableState d = disk.durable();
    const raft::HardState& hs = d.hard_state();
    const Index snap = d.snapshot_index();
    const Index last = d.last_index();
    const std::string who = std::string("Durability: ") + n_(id) + "'s disk";
    if (last > snap && !d.term_at(snap + 1)) {
        fail(who + " has a snapshot at " + s_(snap) + " and log entries up to " + s_(last) +
             " but not " + s_(snap + 1));
        return;
    }
    if (last > snap && *d.term_at(last) > hs.term) {
        fail(who + " holds entry " + s_(last) + "/t" + s_(*d.term_at(last)) +
             " under a saved term " + s_(hs.term));
        return;
    }
    if (hs.commit > last) {
        fail(who + " holds commit index " + s_(hs.commit) + " past its durable log (last " +
             s_(last) + ", snapshot " + s_(snap) + ")");
        return;
    }
    for (Index i = std::max(w.verified, snap) + 1; i <= hs.commit; ++i) {
        const Entry& e = d.at(i);
        if (i > commit_known()) {
            fail(who + " holds commit index " + s_(hs.commit) + " over entry " + s_(i) + "/t" +
                 s_(e.term) + ", beyond anything committed (" + s_(commit_known()) + ")");
            return;
        }
        const RefEntry& r = ref_[i - 1];
        if (r.term != e.term || r.digest != entry_digest(e) || r.type != e.type) {
            fail(who + " holds commit index " + s_(hs.commit) + " over entry " + s_(i) + "/t" +
                 s_(e.term) + ", but the committed entry there is " + s_(i) + "/t" + s_(r.term));
            return;
        }
    }
    w.verified = std::max(w.verified, hs.commit);
}

void Checker::check_leader(NodeId id, const SimNode& n, NodeWatch& w, const Disks& disks) {
    const raft::Core& core = n.core();
    const Term term = core.term();
    // Election Safety counts a leadership once the leader's term and its vote
    // for itself are durable.  A lone voter elects itself in the step that
    // makes it alone, before that write; if it crashes first it forgets the
    // term and may vote in it again (seed 12918 of --nodes 3 --membership).
    // Harmless: until the write is durable nothing of that leadership
    // escapes (its messages wait for the write, and it refuses proposals
    // until its no-op is durable, docs/raft.md), so it is as if it never led.
    if (core.role() == raft::Role::leader && w.leader_durable != term) {
        const raft::HardState& hs = disks.at(id)->raw().hard_state;
        if (hs.term == term && hs.vote == id) {
            w.leader_durable = term;
            auto [it, inserted] = leader_of_term_.try_emplace(term, id);
            if (!inserted && it->second != id) {
                fail(std::string("Election Safety: ") + n_(id) + " and " + n_(it->second) +
                     " are both leader of term " + s_(term));
            }
        }
    }
    if (core.role() == raft::Role::leader && w.leader_term != term) {
        ++leaders_elected_;
        check_new_leader_complete(id, term);
        w.leader_term = term;
        w.leader_checked = std::min(core.commit_index(), leader_commit_max_);
    }
    for (Index i = w.leader_checked + 1; i <= core.commit_index(); ++i) {
        check_quorum_durable(id, core, i, disks);
    }
    w.leader_checked = std::max(w.leader_checked, core.commit_index());
    // This leader is the first to commit whatever lies past every earlier
    // leader's commit index: those entries are committed in its term.
    KEEL_ASSERT(commit_term_.size() == leader_commit_max_, "one commit term per committed index");
    while (commit_term_.size() < core.commit_index()) commit_term_.push_back(term);
    leader_commit_max_ = std::max(leader_commit_max_, core.commit_index());
}

// Leader Completeness (§5.4.3): an entry committed in a term is in the log
// of every leader of a *higher* term.  A leader of a lower term may still win
// after a newer leader committed more (its vote responses were delayed): the
// voters that moved on reject its appends, so it can commit nothing, and it
// need not hold what the newer term committed.  Commit terms never decrease
// along the log, so the check stops at the first entry committed in this
// term or later.  Entries past commit_term_ were committed (and already
// applied) in the step being checked, by the leader taking it: this one.
void Checker::check_new_leader_complete(NodeId id, Term term) {
    const Mirror& m = mirrors_[id];
    for (Index i = std::max<Index>(1, m.snap_index); i <= commit_known(); ++i) {
        if (i > commit_term_.size() || commit_term_[i - 1] >= term) break;
        const auto t = m.term_at(i);
        const RefEntry& r = ref_[i - 1];
        if (!t || *t != r.term ||
            (i > m.snap_index && m.entries[i - m.snap_index - 1].digest != r.digest)) {
            fail(std::string("Leader Completeness: ") + n_(id) + " becomes leader of term " +
                 s_(term) + " without committed entry " + s_(i) + "/t" + s_(r.term) +
                 " (its log has " + (t ? std::string("t") + s_(*t) : std::string("nothing")) +
                 " there, last " + s_(m.last()) + ")");
            return;
        }
    }
}

void Checker::check_quorum_durable(NodeId leader, const raft::Core& core, Index index,
                                   const Disks& disks) {
    const auto term = mirrors_[leader].term_at(index);
    if (!term) return;  // inside the leader's own snapshot: already committed
    const auto voters = core.configuration().voters();
    std::size_t durable = 0;
    std::string holders;
    for (NodeId v : voters) {
        auto it = disks.find(v);
        if (it == disks.end()) continue;
        const DurableState d = it->second->durable();
        if (d.term_at(index) == term || d.snapshot_index() >= index) {
            ++durable;
            holders += std::string(" ") + n_(v);
        }
    }
    if (durable * 2 <= voters.size()) {
        fail(std::string("Commit: leader ") + n_(leader) + " commits entry " + s_(index) + "/t" +
             s_(*term) + " but only " + s_(durable) + " of its " + s_(voters.size()) +
             " voters hold it durably:" + (holders.empty() ? std::string(" none") : holders) +
             " (config " + raft::to_string(core.configuration()) + ")");
    }
}

void Checker::observe_commits(NodeId id, const raft::Core& core, NodeWatch& w) {
    const Mirror& m = mirrors_[id];
    const Index c = core.commit_index();
    for (Index i = std::max(w.commit_observed, m.snap_index) + 1; i <= c; ++i) {
        if (i > m.last()) {
            fail(n_(id) + " commit index " + s_(c) + " is past its log (last " + s_(m.last()) +
                 ")");
            return;
        }
        reference(i, m.entries[i - m.snap_index - 1], n_(id) + " committed");
    }
    w.commit_observed = std::max(w.commit_observed, c);
}

// A leader's count of what every member stored (lib/raft/forgetting.cpp),
// risen in this step: the entry there is on the durable disk of every member
// the leader replicates to and of the leader itself.  (A leader's count only
// rises by its own counting: what it was told as a follower it carries in
// unchanged, and a node becomes leader on a vote, never on an append.)
void Checker::check_stored_everywhere(NodeId leader, const raft::Core& core, const Disks& disks) {
    const Index count = core.stored_everywhere();
    stored_everywhere_max_ = std::max(stored_everywhere_max_, count);
    std::optional<Term> term = mirrors_[leader].term_at(count);
    if (!term && count <= commit_known()) term = committed_term(count);
    if (!term) return;
    for (const raft::PeerProgress& p : core.progress()) {
        auto it = disks.find(p.id);
        if (it == disks.end()) continue;
        const DurableState d = it->second->durable();
        if (d.term_at(count) == term || d.snapshot_index() >= count) continue;
        fail(std::string("Forgetting: leader ") + n_(leader) + " counts entry " + s_(count) + "/t" +
             s_(*term) + " stored on every member, but " + n_(p.id) +
             "'s disk does not hold it (last " + s_(d.last_index()) + ", snapshot " +
             s_(d.snapshot_index()) + ")");
        return;
    }
}

// What a node dropped from memory lies behind a snapshot it knows or what it
// counts stored everywhere; and a count is one some leader made.
void Checker::check_forgotten(NodeId node, const raft::Core& core) {
    const Index count = core.stored_everywhere();
    if (count > stored_everywhere_max_) {
        fail(std::string("Forgetting: ") + n_(node) + " counts entries through " + s_(count) +
             " stored everywhere, but no leader ever counted past " + s_(stored_everywhere_max_));
        return;
    }
    const Index dropped = core.first_index() - 1;
    const Index snapshot = core.snapshot() ? core.snapshot()->index : 0;
    if (dropped > std::max(count, snapshot)) {
        fail(std::string("Forgetting: ") + n_(node) + " dropped its log through " + s_(dropped) +
             " from memory, past its snapshot (" + s_(snapshot) +
             ") and what it counts stored everywhere (" + s_(count) + ")");
    }
}

}  // namespace keel::sim
