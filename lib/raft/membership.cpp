// raft/membership.cpp — single-server membership changes (dissertation
// §4.1): every change adds, removes or promotes one member, so majorities
// of the old and new configurations always overlap.  A configuration takes
// effect on a node as soon as its entry is in the log (committed or not)
// and reverts if the entry is truncated.  Keel does not implement joint
// consensus: single-server changes cover every operation it offers (grow,
// shrink, replace = add learner, promote, remove) with much less machinery.
#include "keel/assert.hpp"
#include "raft/limits.hpp"
#include "raft/state.hpp"
#include "raft/str_cat.hpp"

namespace keel::raft {

Result<Configuration> Core::State::apply_change(const ConfigChange& change) const {
    Configuration next = config();
    NodeId id = change.node;
    std::string who = str_cat("node ", id);
    if (id == kNoNode) return Status{ErrorCode::invalid_argument, "node id 0 is reserved"};
    if (change.context.size() > kMaxContextBytes) {
        return Status{ErrorCode::invalid_argument, "member context over kMaxContextBytes"};
    }
    switch (change.kind) {
        case ConfigChange::Kind::add_voter:
        case ConfigChange::Kind::add_learner:
            if (next.contains(id))
                return Status{ErrorCode::invalid_argument, who + " is already a member"};
            if (next.members.size() >= kMaxMembers) {
                return Status{ErrorCode::invalid_argument, "configuration is at kMaxMembers"};
            }
            next.members.emplace(
                id, MemberInfo{change.kind == ConfigChange::Kind::add_voter, change.context});
            break;
        case ConfigChange::Kind::promote:
            if (!next.contains(id))
                return Status{ErrorCode::invalid_argument, who + " is not a member"};
            if (next.is_voter(id))
                return Status{ErrorCode::invalid_argument, who + " is already a voter"};
            next.members[id].voter = true;
            if (!change.context.empty()) next.members[id].context = change.context;
            break;
        case ConfigChange::Kind::remove:
            if (!next.contains(id))
                return Status{ErrorCode::invalid_argument, who + " is not a member"};
            next.members.erase(id);
            if (next.voter_count() == 0) {
                return Status{ErrorCode::invalid_argument,
                              str_cat("removing ", who, " would leave no voter")};
            }
            break;
        default:
            return Status{ErrorCode::invalid_argument, "unknown configuration change kind"};
    }
    return next;
}

// The leader accepts a change only (a) once an entry of its own term is
// committed — otherwise a change from a previous term may still be pending
// unseen (the single-server change bug, Ongaro's raft-dev post of 2015) —
// and (b) when no other configuration entry is uncommitted.
Result<Proposed> Core::State::propose_config_change(const ConfigChange& change) {
    if (role != Role::leader) return not_leader_status();
    if (leadership_transfer.target != kNoNode) {
        return Status{ErrorCode::busy, "leadership transfer in progress"};
    }
    if (!committed_own_term()) {
        return Status{ErrorCode::busy, "no entry of the leader's term is committed yet"};
    }
    if (configs.latest_index() > log.committed()) {
        return Status{ErrorCode::busy, "another configuration change is not yet committed"};
    }
    Result<Configuration> next = apply_change(change);
    if (!next.ok()) return next.status();
    append_own(EntryType::config, encode_configuration(*next));
    return Proposed{log.last_index(), term};
}

// Records the config entries among `entries` that are in the log and newer
// than the effective configuration.  Returns true if it changed.
bool Core::State::note_config_entries(const std::vector<Entry>& entries) {
    bool changed = false;
    for (const Entry& e : entries) {
        if (e.type != EntryType::config || e.index <= configs.latest_index()) continue;
        if (e.index <= log.prev_index()) continue;
        auto decoded = decode_configuration(e.data);
        KEEL_ASSERT(decoded.has_value(), "config entries are validated before they are appended");
        configs.add(e.index, std::move(*decoded));
        changed = true;
    }
    return changed;
}

void Core::State::on_config_changed() {
    if (role == Role::leader) {
        sync_progress();
        if (leadership_transfer.target != kNoNode && !config().is_voter(leadership_transfer.target))
            abort_transfer();
        // The voter set changed, so the quorum did: something may commit now.
        maybe_commit();
    }
    maybe_campaign_alone();
}

// Leader: one Progress per member other than itself; new members start
// probing from the end of the log.  A removed member keeps its Progress
// until its removal commits, so it normally receives the entry that removes
// it and stops campaigning (it never counts toward any quorum meanwhile).
void Core::State::sync_progress() {
    const Configuration& c = config();
    const Configuration& committed = configs.at(log.committed());
    for (auto it = progress.begin(); it != progress.end();) {
        if (c.contains(it->first) || committed.contains(it->first)) {
            ++it;
            continue;
        }
        // A last word before forgetting it: the entries it lacks and the commit
        // index (whatever the flow control state), so that it learns its
        // removal is committed and stops campaigning.
        it->second.become_probe();
        send_append(it->first, /*send_if_empty=*/true);
        it = progress.erase(it);
    }
    for (const auto& [id, info] : c.members) {
        if (id == opt.id || progress.count(id) != 0) continue;
        progress.emplace(id, Progress(log.last_index() + 1, opt.max_inflight_messages));
    }
}

}  // namespace keel::raft
