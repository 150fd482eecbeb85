// sim/checkers.hpp — the Raft safety properties, checked after every step.
//
// The checker watches what each node asks its runtime to do (entries to
// persist, snapshots, entries to apply, reads served) and inspects every
// core after each simulation step.  It keeps one reference log: the
// committed entries, extended by whichever node first shows an entry
// committed (its commit index covers it, or it applies it).  Properties
// (Raft paper Figure 3, plus the durability and read guarantees):
//
//   Election Safety      at most one leader per term.
//   Leader Append-Only   a leader never truncates or overwrites its log
//                        (nor installs a snapshot over it).
//   Log Matching         two logs holding an entry with the same index and
//                        term hold the same entry and agree on the term just
//                        before it (which, by induction, makes the whole
//                        prefixes identical).  "Logs" are those that exist
//                        at the moment: a live node's log, a crashed node's
//                        durable log.  (A term whose entries were all lost in
//                        a crash before anything was sent or made durable may
//                        legitimately be reused.)
//   Leader Completeness  a node that becomes leader holds every entry known
//                        committed at that moment.
//   State Machine Safety every node's committed / applied / snapshotted
//                        entry at an index equals the reference, and its
//                        state machine equals the reference prefix.
//   Commit               a node's commit index never decreases (within one
//                        incarnation); when a leader's commit index covers a
//                        new index, a majority of the voters of the leader's
//                        configuration hold that entry on their *durable*
//                        disk; no node's commit index exceeds the highest
//                        commit index any leader reached.
//   Durability           what every disk holds — the state a restart would
//                        recover at any instant — has a commit index no
//                        higher than its recovered log, every entry up to it
//                        is the committed one, and no entry has a term above
//                        the saved term.  Checked whenever a disk changes:
//                        a completed write, a synchronous save, a crash.
//   Forgetting           an entry leaves a node's in-memory log only behind
//                        a snapshot it knows or what it counts stored on
//                        every member (Core::stored_everywhere); when a
//                        leader's count covers a new index, every member it
//                        replicates to (and itself) holds that entry on its
//                        durable disk; no node's count exceeds the highest
//                        any leader reached.
//   Reads                the index a ReadIndex read is served at is at least
//                        the highest commit index known anywhere when the
//                        read started, and the state it returns is exactly the
//                        committed prefix at the applied index.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/core.hpp"
#include "sim_disk.hpp"
#include "sim_node.hpp"
#include "value_log.hpp"

namespace keel::sim {

class Checker {
public:
    using Fail = std::function<void(const std::string&)>;
    explicit Checker(Fail fail) : fail_(std::move(fail)) {}

    // A node incarnation started from `restored` (bootstrap, empty, or its disk).
    void node_started(raft::NodeId node, const raft::RestoredState& restored);
    // A crashed node's log is what its disk holds; a stopped node has none.
    void node_crashed(raft::NodeId node, const raft::RestoredState& durable);
    void node_stopped(raft::NodeId node) { mirrors_.erase(node); }
    // Founding members start with entry 1 committed.
    void bootstrapped(const raft::RestoredState& restored);

    void on_entries(raft::NodeId node, bool leader, const std::vector<raft::Entry>& entries);
    void on_snapshot_installed(raft::NodeId node, bool leader, const raft::SnapshotMeta& meta,
                               const ValueLog& state);
    void on_snapshot_taken(raft::NodeId node, const raft::SnapshotMeta& meta,
                           const ValueLog& state);
    void on_applied(raft::NodeId node, const raft::Entry& entry, const ValueLog& state);
    void on_read_served(raft::NodeId node, raft::Index read_index, raft::Index commit_at_start,
                        const ValueLog& state);

    using Nodes = std::map<raft::NodeId, std::unique_ptr<SimNode>>;
    using Disks = std::map<raft::NodeId, SimDisk*>;  // one group's files on each drive
    void after_step(const Nodes& nodes, const Disks& disks);

    // The highest index known committed (the reference log's length).
    raft::Index commit_known() const { return static_cast<raft::Index>(ref_.size()); }
    // The committed term at `index` (<= commit_known()).
    raft::Term committed_term(raft::Index index) const { return ref_.at(index - 1).term; }
    raft::EntryType committed_type(raft::Index index) const { return ref_.at(index - 1).type; }
    std::uint64_t leaders_elected() const { return leaders_elected_; }

private:
    struct RefEntry {
        raft::Term term;
        raft::EntryType type;
        std::uint64_t digest;
    };
    // What a node's log holds, as told through its Actions.
    struct Mirror {
        raft::Index snap_index = 0;
        raft::Term snap_term = 0;
        std::vector<RefEntry> entries;  // snap_index + 1, ...
        raft::Index last() const { return snap_index + entries.size(); }
        std::optional<raft::Term> term_at(raft::Index i) const {
            if (i == snap_index) return snap_term;
            if (i < snap_index || i > last()) return std::nullopt;
            return entries[i - snap_index - 1].term;
        }
    };
    struct NodeWatch {
        std::uint64_t incarnation = 0;
        raft::Index commit_seen = 0;      // commit index at the previous step
        raft::Index commit_observed = 0;  // committed entries already compared with ref_
        raft::Term term_seen = 0;
        raft::Term leader_term = 0;      // term in which it was last seen leader
        raft::Term leader_durable = 0;   // leadership counted by Election Safety (durable)
        raft::Index leader_checked = 0;  // commit indexes verified against durable quorums
        bool was_leader = false;         // leader at the end of the previous step
        raft::Index stored_seen = 0;     // Core::stored_everywhere() after the previous step
    };

    void fail(const std::string& what);
    // Extends or compares with the reference; `who` names the source.
    void reference(raft::Index index, const RefEntry& e, const std::string& who);
    void log_matching(raft::NodeId node, raft::Index index, raft::Term prev_term,
                      const RefEntry& e);
    static Mirror mirror_of(const raft::RestoredState& restored);
    void append_to_mirror(raft::NodeId node, const raft::Entry& e);
    void check_leader(raft::NodeId node, const SimNode& n, NodeWatch& w, const Disks& disks);
    void check_new_leader_complete(raft::NodeId node, raft::Term term);
    void check_quorum_durable(raft::NodeId leader, const raft::Core& core, raft::Index index,
                              const Disks& disks);
    void observe_commits(raft::NodeId node, const raft::Core& core, NodeWatch& w);
    void check_stored_everywhere(raft::NodeId leader, const raft::Core& core, const Disks& disks);
    void check_forgotten(raft::NodeId node, const raft::Core& core);
    // What the disk would give a restart now (its durable state).
    struct DiskWatch {
        std::uint64_t version = 0;  // SimDisk::version() when last checked
        raft::Index verified = 0;   // its entries up to here matched the reference
    };
    void check_durable(raft::NodeId node, SimDisk& disk, DiskWatch& w);
    void check_state(raft::NodeId node, const ValueLog& state, const char* what);

    Fail fail_;
    bool failed_ = false;
    std::vector<RefEntry> ref_;               // committed entries, index 1, 2, ...
    std::vector<std::uint64_t> prefix_hash_;  // ValueLog hash after index i (i = 0 first)
    std::vector<std::uint64_t> prefix_count_;
    raft::Index leader_commit_max_ = 0;
    raft::Index stored_everywhere_max_ = 0;  // the highest count of any leader
    // The term of the leader that first committed each index 1, 2, ...
    // (0: committed at bootstrap); as long as leader_commit_max_.
    std::vector<raft::Term> commit_term_;
    std::map<raft::Term, raft::NodeId> leader_of_term_;
    std::uint64_t leaders_elected_ = 0;
    std::map<raft::NodeId, Mirror> mirrors_;
    std::map<raft::NodeId, NodeWatch> watch_;
    std::map<raft::NodeId, DiskWatch> disk_watch_;
};

}  // namespace keel::sim
