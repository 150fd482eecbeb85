// raft/core.cpp — construction, the Core's inputs and the assembly of
// Actions, inspection.  A message's receipt and dispatch is in step.cpp, the
// algorithm itself in the files named in state.hpp.
#include "raft/core.hpp"

#include <algorithm>

#include "keel/assert.hpp"
#include "raft/state.hpp"
#include "raft/str_cat.hpp"

namespace keel::raft {

namespace {

void check_options(const Options& o) {
    KEEL_ASSERT(o.id != kNoNode, "Options::id must be set (0 means nobody)");
    KEEL_ASSERT(o.heartbeat_ticks >= 1, "heartbeat_ticks must be at least 1");
    KEEL_ASSERT(o.election_ticks_min > o.heartbeat_ticks,
                "election_ticks_min must exceed heartbeat_ticks");
    KEEL_ASSERT(o.election_ticks_max >= o.election_ticks_min,
                "election_ticks_max must be at least election_ticks_min");
    KEEL_ASSERT(o.max_inflight_messages >= 1, "max_inflight_messages must be at least 1");
    KEEL_ASSERT(!o.lease_reads || o.check_quorum, "lease_reads requires check_quorum");
    KEEL_ASSERT(o.quiesce_after_ticks >= 1, "quiesce_after_ticks must be at least 1");
}

}  // namespace

RestoredState bootstrap(const Configuration& initial) {
    KEEL_ASSERT(initial.voter_count() >= 1, "a cluster needs at least one voter");
    RestoredState r;
    r.hard_state = HardState{1, kNoNode, 1};
    r.entries.push_back(Entry{1, 1, EntryType::config, encode_configuration(initial)});
    return r;
}

Core::State::State(const Options& options, RestoredState restored)
    : opt(options), rng(options.random_seed) {
    check_options(opt);
    term = restored.hard_state.term;
    vote = restored.hard_state.vote;
    Index prev_index = 0;
    Term prev_term = 0;
    if (restored.snapshot) {
        prev_index = restored.snapshot->index;
        prev_term = restored.snapshot->term;
        configs.reset(prev_index, restored.snapshot->config);
        if (restored.snapshot_is_floor) {
            compaction.compacted_without_snapshot = prev_index > 0;
        } else {
            snapshot = restored.snapshot;
        }
    }
    // Entries the snapshot covers are not needed (they are committed and applied).
    std::erase_if(restored.entries, [&](const Entry& e) { return e.index <= prev_index; });
    log.reset(prev_index, prev_term, restored.entries);
    for (const Entry& e : restored.entries) {
        if (e.type != EntryType::config) continue;
        auto config = decode_configuration(e.data);
        KEEL_ASSERT(config.has_value(), "restored configuration entry does not decode");
        configs.add(e.index, std::move(*config));
    }
    Index applied = std::max(restored.applied, prev_index);
    log.restore_indexes(std::max(restored.hard_state.commit, applied), applied);
    KEEL_ASSERT(log.last_term() <= term || log.last_index() == 0,
                "restored log holds an entry of a term newer than the hard state");
    reported.hard_state = hard_state();
    reported.soft_state = soft_state();
    become_follower(term, kNoNode);
    maybe_campaign_alone();
}

HardState Core::State::hard_state() const {
    // Only durable entries may be recorded as committed on disk: a restart
    // must never find a commit index beyond its log.
    return HardState{term, vote, std::min(log.committed(), log.persisted())};
}

SoftState Core::State::soft_state() const {
    return SoftState{role, leader, term, quiet.quiescent};
}

Status Core::State::not_leader_status() const {
    if (leader == kNoNode) return {ErrorCode::not_leader, "not leader (leader unknown)"};
    return {ErrorCode::not_leader, str_cat("not leader (leader is ", leader, ")")};
}

void Core::State::send(Message m) {
    m.from = opt.id;
    if (m.term == 0) m.term = term;
    // Room for one message per follower at once: a leader's steps send to
    // each, and growing the batch one by one reallocated it (decision 0050).
    if (out.msgs.capacity() == 0) out.msgs.reserve(std::max<std::size_t>(progress.size(), 1));
    out.msgs.push_back(std::move(m));
}

void Core::State::send_after_persist(Message m) {
    m.from = opt.id;
    if (m.term == 0) m.term = term;
    out.msgs_after_persist.push_back(std::move(m));
}

// ---- Core: thin forwarding to State ------------------------------------------

Core::Core(const Options& options, RestoredState restored)
    : s_(std::make_unique<State>(options, std::move(restored))) {}
Core::~Core() = default;
Core::Core(Core&&) noexcept = default;
Core& Core::operator=(Core&&) noexcept = default;

Status Core::step(const Message& message) {
    Status st = s_->step(message);
    // A leader's count rises with its followers' acknowledgements, a
    // follower's with what its leader tells.
    s_->forget_stored_everywhere();
    return st;
}

void Core::tick() {
    s_->tick();
}

void Core::tick(std::uint64_t ticks) {
    s_->tick_many(ticks);
}

Result<Proposed> Core::propose(SharedBytes data) {
    State& s = *s_;
    if (s.role != Role::leader) return s.not_leader_status();
    s.wake();
    if (!s.lead.term_durable) return Status{ErrorCode::busy, "leader's term is not durable yet"};
    if (s.leadership_transfer.target != kNoNode) {
        return Status{ErrorCode::busy, str_cat("leadership transfer to ",
                                               s.leadership_transfer.target, " in progress")};
    }
    if (data.size() > s.opt.max_proposal_bytes) {
        return Status{ErrorCode::too_large,
                      str_cat("proposal of ", data.size(), " bytes over max_proposal_bytes")};
    }
    if (s.lead.uncommitted_bytes > 0 &&
        s.lead.uncommitted_bytes + data.size() > s.opt.max_uncommitted_bytes) {
        return Status{ErrorCode::busy, "too many uncommitted bytes (max_uncommitted_bytes)"};
    }
    s.append_own(EntryType::normal, std::move(data));
    return Proposed{s.log.last_index(), s.term};
}

// A leader wakes for every request of its application, accepted or not.
Result<Proposed> Core::propose_config_change(const ConfigChange& change) {
    if (s_->role == Role::leader) s_->wake();
    return s_->propose_config_change(change);
}

Status Core::read_index(std::uint64_t request_id) {
    if (s_->role == Role::leader) s_->wake();
    return s_->read_index(request_id);
}

Status Core::transfer_leadership(NodeId target) {
    if (s_->role == Role::leader) s_->wake();
    return s_->transfer_leadership(target);
}

void Core::on_persisted(WriteId write) {
    State& s = *s_;
    if (s.log.persisted_to(write) && s.role == Role::leader) {
        if (s.log.persisted() >= s.lead.term_start_index) s.lead.term_durable = true;
        // The leader's own durable append counts toward the quorum only now.
        s.maybe_commit();
        s.forget_stored_everywhere();
    }
}

void Core::on_applied(Index index) {
    s_->log.applied_to(index);
    s_->forget_stored_everywhere();
}

Result<SnapshotMeta> Core::on_snapshot_taken(Index index) {
    return s_->on_snapshot_taken(index);
}

Result<SnapshotMeta> Core::on_state_machine_durable(Index index) {
    return s_->on_state_machine_durable(index);
}

void Core::report_unreachable(NodeId peer) {
    if (s_->role != Role::leader) return;
    auto it = s_->progress.find(peer);
    if (it != s_->progress.end() && it->second.state == Progress::State::replicate) {
        it->second.become_probe();
    }
}

void Core::report_snapshot(NodeId peer, bool ok) {
    s_->report_snapshot(peer, ok);
}

void Core::peer_down(NodeId peer) {
    s_->peer_down(peer);
}

bool Core::has_actions() const {
    const State& s = *s_;
    return !s.out.msgs.empty() || !s.out.msgs_after_persist.empty() || !s.out.read_states.empty() ||
           !s.out.read_failures.empty() || s.out.snapshot_to_install || s.log.has_unstable() ||
           s.log.has_committed_to_hand() || s.hard_state() != s.reported.hard_state ||
           s.soft_state() != s.reported.soft_state ||
           (s.configs.version() != s.reported.config_version && s.config() != s.reported.config) ||
           ((s.lead.appends_pending || s.commit_news_due()) && s.role == Role::leader) ||
           s.out.snapshot_wanted;
}

Actions Core::take_actions() {
    Actions a;
    take_actions(a);
    return a;
}

void Core::take_actions(Actions& a) {
    KEEL_ASSERT(a.empty(), "take_actions fills an empty batch");
    State& s = *s_;
    s.send_pending_appends();
    if (SoftState ss = s.soft_state(); ss != s.reported.soft_state) {
        a.soft_state = s.reported.soft_state = ss;
    }
    a.snapshot = std::exchange(s.out.snapshot_to_install, std::nullopt);
    a.write_id = s.log.take_unstable(a.entries);
    if (HardState hs = s.hard_state(); hs != s.reported.hard_state) {
        KEEL_ASSERT(hs.term >= s.reported.hard_state.term, "term never decreases");
        a.hard_state = s.reported.hard_state = hs;
    }
    a.messages = std::exchange(s.out.msgs, {});
    a.messages_after_persist = std::exchange(s.out.msgs_after_persist, {});
    s.log.take_committed(s.opt.max_committed_bytes_per_batch, a.committed_entries);
    a.read_states = std::exchange(s.out.read_states, {});
    a.read_failures = std::exchange(s.out.read_failures, {});
    if (s.configs.version() != s.reported.config_version) {
        if (s.config() != s.reported.config) a.configuration = s.reported.config = s.config();
        s.reported.config_version = s.configs.version();
    }
    a.snapshot_wanted = std::exchange(s.out.snapshot_wanted, false);
}

// ---- inspection ----------------------------------------------------------------

NodeId Core::id() const {
    return s_->opt.id;
}
Role Core::role() const {
    return s_->role;
}
Term Core::term() const {
    return s_->term;
}
NodeId Core::leader() const {
    return s_->leader;
}
NodeId Core::vote() const {
    return s_->vote;
}
Index Core::commit_index() const {
    return s_->log.committed();
}
Index Core::applied_index() const {
    return s_->log.applied();
}
Index Core::first_index() const {
    return s_->log.first_index();
}
Index Core::stored_everywhere() const {
    return s_->compaction.stored_everywhere;
}
Index Core::last_index() const {
    return s_->log.last_index();
}
Index Core::persisted_index() const {
    return s_->log.persisted();
}
std::optional<Term> Core::term_at(Index index) const {
    return s_->log.term_at(index);
}

std::vector<Entry> Core::entries(Index from, Index to_exclusive) const {
    const RaftLog& log = s_->log;
    from = std::max(from, log.first_index());
    to_exclusive = std::min(to_exclusive, log.last_index() + 1);
    if (from >= to_exclusive) return {};
    return log.slice(from, to_exclusive, SIZE_MAX);
}

const Configuration& Core::configuration() const {
    return s_->config();
}
std::optional<SnapshotMeta> Core::snapshot() const {
    return s_->snapshot;
}

std::vector<PeerProgress> Core::progress() const {
    const State& s = *s_;
    if (s.role != Role::leader) return {};
    const Configuration& config = s.config();
    std::vector<PeerProgress> out;
    out.reserve(s.progress.size() + 1);
    bool self_added = false;
    auto add_self = [&] {
        // What maybe_commit() counts for the leader: its durable log, not its
        // last index (an entry counts once the runtime says it is on disk).
        out.push_back(PeerProgress{.id = s.opt.id,
                                   .voter = config.is_voter(s.opt.id),
                                   .match = s.log.persisted(),
                                   .next = s.log.last_index() + 1,
                                   .state = ProgressState::replicate});
        self_added = true;
    };
    for (const auto& [id, pr] : s.progress) {  // a std::map: ordered by id
        if (!self_added && id > s.opt.id) add_self();
        out.push_back(PeerProgress{.id = id,
                                   .voter = config.is_voter(id),
                                   .match = pr.match,
                                   .next = pr.next,
                                   .state = pr.state});
    }
    if (!self_added) add_self();
    KEEL_ASSERT(!s.progress.count(s.opt.id), "a leader keeps no Progress for itself");
    return out;
}

bool Core::replicating(NodeId id) const {
    const State& s = *s_;
    if (s.role != Role::leader) return false;
    if (id == s.opt.id) return true;
    auto it = s.progress.find(id);
    return it != s.progress.end() && it->second.state == Progress::State::replicate;
}

Index Core::match_index(NodeId id) const {
    const State& s = *s_;
    if (s.role != Role::leader) return 0;
    if (id == s.opt.id) return s.log.persisted();
    auto it = s.progress.find(id);
    return it == s.progress.end() ? 0 : it->second.match;
}

bool Core::needs_ticks() const {
    if (s_->quiet.quiescent) return false;
    const Configuration& c = s_->config();
    return !(c.members.size() == 1 && c.is_voter(s_->opt.id) && s_->role == Role::leader);
}

bool Core::quiescent() const {
    return s_->quiet.quiescent;
}

std::uint64_t Core::ticks_until_due() const {
    return s_->ticks_until_due();
}

}  // namespace keel::raft
