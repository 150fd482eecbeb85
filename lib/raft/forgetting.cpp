// raft/forgetting.cpp — dropping from memory the entries every member stored
// (Options::forget_stored_everywhere; docs/raft.md, "Forgetting what every
// member stored", argues why no rule of Figure 2 depends on them).
//
// An entry may leave this node's in-memory log once it is applied here and
// durable on every member of the configuration.  Applied: the runtime has
// taken it (it is in storage and in the state machine).  Stored everywhere:
// no member will ever ask for it, because a member's durable committed
// entries are never removed (Leader Completeness and Log Matching) and a
// leader only sends a follower what lies after the follower's log.  The
// only members that can need a dropped entry are those added since, and
// they get a snapshot (send_snapshot asks the runtime for one).  The term of
// the last dropped entry stays as the log's prev_term, so every prevLogTerm,
// lastLogTerm and commit-term question is still answered; the terms of the
// others stay as a few runs for a snapshot taken at a dropped index
// (term_at_or_forgotten).
#include <algorithm>

#include "keel/assert.hpp"
#include "raft/state.hpp"

namespace keel::raft {

// A leader's count: the least of its own durable log, its commit index and
// every follower's match (Progress holds every member of the latest
// configuration but this node, plus any member whose removal is not
// committed).  A follower's match is what it acknowledged after making it
// durable (handle_append answers after persisting), so each holds the entries
// up to it on disk.  The result never goes down: it says what was true when
// counted, and entries durable and committed stay so (a member added later,
// with a match of 0, stops the count from rising, not what was dropped).
void Core::State::raise_stored_everywhere() {
    if (role != Role::leader) return;
    Index floor = std::min(log.persisted(), log.committed());
    if (!opt.unsafe_forget_unstored) {
        for (const auto& [id, pr] : progress) floor = std::min(floor, pr.match);
    }
    compaction.stored_everywhere = std::max(compaction.stored_everywhere, floor);
}

Index Core::State::stored_everywhere_to_send(Index commit) const {
    return std::min(compaction.stored_everywhere, commit);
}

// Called after every input that can raise the applied index or the count.
// What goes is at most the applied index, which is at most the handed and
// the durable index (RaftLog's invariants): an entry leaves memory only once
// the runtime has it in storage and in the state machine.
void Core::State::forget_stored_everywhere() {
    if (!opt.forget_stored_everywhere) return;
    raise_stored_everywhere();
    const Index upto = std::min(log.applied(), compaction.stored_everywhere);
    if (upto <= log.prev_index()) return;
    KEEL_ASSERT(upto <= log.persisted(), "an applied entry that is not durable here");
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

}  // namespace keel::raft
