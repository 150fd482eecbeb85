// raft/core.cpp — construction, message dispatch and the assembly of
// Actions.  The algorithm itself lives in the files named in state.hpp.
#include "raft/core.hpp"

#include <algorithm>

#include "keel/assert.hpp"
#include "raft/state.hpp"
#include "raft/str_cat.hpp"

namespace keel::raft {

bool from_leader(const Message& m) {
    return m.type == MessageType::append || m.type == MessageType::heartbeat ||
           m.type == MessageType::snapshot || m.type == MessageType::timeout_now;
}

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
            compacted_without_snapshot = prev_index > 0;
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
    reported_hard_state = hard_state();
    reported_soft_state = soft_state();
    become_follower(term, kNoNode);
    maybe_campaign_alone();
}

HardState Core::State::hard_state() const {
    // Only durable entries may be recorded as committed on disk: a restart
    // must never find a commit index beyond its log.
    return HardState{term, vote, std::min(log.committed(), log.persisted())};
}

SoftState Core::State::soft_state() const {
    return SoftState{role, leader, term, quiescent};
}

Status Core::State::not_leader_status() const {
    if (leader == kNoNode) return {ErrorCode::not_leader, "not leader (leader unknown)"};
    return {ErrorCode::not_leader, str_cat("not leader (leader is ", leader, ")")};
}

void Core::State::send(Message m) {
    m.from = opt.id;
    if (m.term == 0) m.term = term;
    msgs.push_back(std::move(m));
}

void Core::State::send_after_persist(Message m) {
    m.from = opt.id;
    if (m.term == 0) m.term = term;
    msgs_after_persist.push_back(std::move(m));
}

Status Core::State::step(const Message& m) {
    Status st = step_message(m);
    // A lone voter deposed by a higher term (from a removed member that does
    // not know it yet) is never ticked (needs_ticks() is false): it must take
    // leadership back now, or nothing would ever wake it.
    maybe_campaign_alone();
    return st;
}

Status Core::State::step_message(const Message& m) {
    // Fields first, then the sender (admission.cpp): a refused message
    // touches nothing.
    if (Status st = validate_message(m, opt.id); !st.ok()) return st;
    if (Status st = admit(m); !st.ok()) return st;
    // A quiescent leader hears from a member that is not quiescent (one
    // that declined the quiesce heartbeat, restarted, or campaigns): it
    // wakes and heartbeats again.  A follower wakes in step_follower, or on
    // a change of term (reset).
    if (quiescent && role == Role::leader && m.term >= term && wakes_leader(m)) wake();
    // A quiescent follower asked for its vote by the very node it follows:
    // that node no longer leads (it restarted, or stepped down), so the
    // election timer must run again, whatever the host's liveness says.
    const bool vote_request = m.type == MessageType::vote || m.type == MessageType::pre_vote;
    if (quiescent && role != Role::leader && vote_request && m.from == leader) wake();
    bool handled = false;
    Status st = step_by_term(m, handled);
    if (handled) return st;
    if (m.type == MessageType::vote || m.type == MessageType::pre_vote) {
        handle_vote_request(m);
        return {};
    }
    switch (role) {
        case Role::follower:
            step_follower(m);
            break;
        case Role::pre_candidate:
        case Role::candidate:
            step_candidate(m);
            break;
        case Role::leader:
            return step_leader(m);
    }
    return {};
}

// Figure 2, "Rules for all servers": "If RPC request or response contains
// term T > currentTerm: set currentTerm = T, convert to follower."  With the
// PreVote and leader-stickiness exceptions of dissertation §9.6.
Status Core::State::step_by_term(const Message& m, bool& handled) {
    bool vote_request = m.type == MessageType::vote || m.type == MessageType::pre_vote;
    if (m.term > term) {
        if (vote_request) {
            // Leader stickiness: we heard from a live leader within the minimum
            // election timeout, so ignore the (pre-)vote unless a transfer asks.
            bool in_lease = opt.check_quorum && leader != kNoNode &&
                            election_elapsed_ticks < opt.election_ticks_min;
            // With lease reads, the promise behind a leader's lease: no vote
            // within election_ticks_min ticks of acknowledging it, whatever
            // happened since (a restart, a higher term seen; read_index.cpp).
            if (opt.lease_reads && ticks_since_leader_contact < opt.election_ticks_min)
                in_lease = true;
            if (in_lease && !m.transfer) {
                handled = true;
                return {ErrorCode::aborted, "vote request ignored: a leader is in its lease"};
            }
        }
        bool no_term_change = m.type == MessageType::pre_vote ||
                              (m.type == MessageType::pre_vote_response && !m.reject);
        if (!no_term_change) become_follower(m.term, from_leader(m) ? m.from : kNoNode);
        return {};
    }
    if (m.term < term) {
        handled = true;
        if (m.type == MessageType::append || m.type == MessageType::heartbeat) {
            // Figure 2, AppendEntries receiver: "Reply false if term <
            // currentTerm" (the reply carries our term): a stale leader, e.g.
            // back from a partition, learns it and steps down.  etcd answers
            // only with CheckQuorum or PreVote on, counting on the node with
            // the higher term to campaign otherwise; but a member that does
            // not know it is one (its log predates its addition) never
            // campaigns, and was cut off for good: seed 204075 of
            // `keel_sim --nodes 3 --membership`, both options off, where a
            // failed candidate's vote request had taken it one term ahead.
            send(Message{.type = MessageType::append_response, .to = m.from});
        } else if (vote_request) {
            // Figure 2, RequestVote receiver: "Reply false if term < currentTerm."
            auto reply = m.type == MessageType::vote ? MessageType::vote_response
                                                     : MessageType::pre_vote_response;
            send(Message{.type = reply, .to = m.from, .reject = true});
        }
        return {ErrorCode::aborted, "message from an older term"};
    }
    return {};
}

void Core::State::step_follower(const Message& m) {
    switch (m.type) {
        case MessageType::append:
        case MessageType::heartbeat:
        case MessageType::snapshot:
            election_elapsed_ticks = 0;
            ticks_since_leader_contact = 0;
            leader = m.from;
            // handle_heartbeat decides for heartbeats; a late copy of an
            // append this follower had before it quiesced is no news either.
            if (m.type != MessageType::heartbeat && !stale_append(m)) wake();
            if (m.type == MessageType::append) handle_append(m);
            if (m.type == MessageType::heartbeat) handle_heartbeat(m);
            if (m.type == MessageType::snapshot) handle_snapshot(m);
            break;
        case MessageType::timeout_now:
            wake();
            // A learner (or a removed node) never campaigns.
            if (may_campaign()) campaign(/*pre=*/false, /*transfer=*/true);
            break;
        default:
            break;  // responses to a role we no longer hold
    }
}

void Core::State::step_candidate(const Message& m) {
    switch (m.type) {
        case MessageType::append:
        case MessageType::heartbeat:
        case MessageType::snapshot:
            // Figure 2, Candidates: "If AppendEntries RPC received from new
            // leader: convert to follower."
            become_follower(term, m.from);
            step_follower(m);
            break;
        case MessageType::vote_response:
        case MessageType::pre_vote_response:
            handle_vote_response(m);
            break;
        default:
            break;
    }
}

Status Core::State::step_leader(const Message& m) {
    switch (m.type) {
        case MessageType::append_response:
            return handle_append_response(m);
        case MessageType::heartbeat_response:
            handle_heartbeat_response(m);
            break;
        default:
            break;  // at most one leader per term: nothing else concerns us
    }
    return {};
}

// ---- Core: thin forwarding to State ------------------------------------------

Core::Core(const Options& options, RestoredState restored)
    : s_(std::make_unique<State>(options, std::move(restored))) {}
Core::~Core() = default;
Core::Core(Core&&) noexcept = default;
Core& Core::operator=(Core&&) noexcept = default;

Status Core::step(const Message& message) {
    return s_->step(message);
}

void Core::tick() {
    s_->tick();
}

Result<Proposed> Core::propose(SharedBytes data) {
    State& s = *s_;
    if (s.role != Role::leader) return s.not_leader_status();
    s.wake();
    if (!s.term_durable) return Status{ErrorCode::busy, "leader's term is not durable yet"};
    if (s.transfer_target != kNoNode) {
        return Status{ErrorCode::busy,
                      str_cat("leadership transfer to ", s.transfer_target, " in progress")};
    }
    if (data.size() > s.opt.max_proposal_bytes) {
        return Status{ErrorCode::too_large,
                      str_cat("proposal of ", data.size(), " bytes over max_proposal_bytes")};
    }
    if (s.uncommitted_bytes > 0 &&
        s.uncommitted_bytes + data.size() > s.opt.max_uncommitted_bytes) {
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
        if (s.log.persisted() >= s.term_start_index) s.term_durable = true;
        // The leader's own durable append counts toward the quorum only now.
        s.maybe_commit();
    }
}

void Core::on_applied(Index index) {
    s_->log.applied_to(index);
    s_->forget_applied_when_alone();
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
    return !s.msgs.empty() || !s.msgs_after_persist.empty() || !s.read_states.empty() ||
           !s.read_failures.empty() || s.snapshot_to_install || s.log.has_unstable() ||
           s.log.has_committed_to_hand() || s.hard_state() != s.reported_hard_state ||
           s.soft_state() != s.reported_soft_state || s.config() != s.reported_config ||
           ((s.appends_pending || s.commit_news_due()) && s.role == Role::leader) ||
           s.snapshot_wanted;
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
    if (SoftState ss = s.soft_state(); ss != s.reported_soft_state) {
        a.soft_state = s.reported_soft_state = ss;
    }
    a.snapshot = std::exchange(s.snapshot_to_install, std::nullopt);
    a.write_id = s.log.take_unstable(a.entries);
    if (HardState hs = s.hard_state(); hs != s.reported_hard_state) {
        KEEL_ASSERT(hs.term >= s.reported_hard_state.term, "term never decreases");
        a.hard_state = s.reported_hard_state = hs;
    }
    a.messages = std::exchange(s.msgs, {});
    a.messages_after_persist = std::exchange(s.msgs_after_persist, {});
    s.log.take_committed(s.opt.max_committed_bytes_per_batch, a.committed_entries);
    a.read_states = std::exchange(s.read_states, {});
    a.read_failures = std::exchange(s.read_failures, {});
    if (s.config() != s.reported_config) a.configuration = s.reported_config = s.config();
    a.snapshot_wanted = std::exchange(s.snapshot_wanted, false);
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

bool Core::needs_ticks() const {
    if (s_->quiescent) return false;
    const Configuration& c = s_->config();
    return !(c.members.size() == 1 && c.is_voter(s_->opt.id) && s_->role == Role::leader);
}

bool Core::quiescent() const {
    return s_->quiescent;
}

}  // namespace keel::raft
