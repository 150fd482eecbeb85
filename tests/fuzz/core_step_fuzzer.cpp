// libFuzzer target: Core::step fed arbitrary messages, from members and
// strangers, between the runtime's own inputs (ticks, proposals,
// acknowledgements, snapshots, restarts from what the core had persisted).
// Nothing may abort, and after every input the core's own invariants hold:
//   - the term never decreases; the commit and applied indexes never go back
//     (until a restart, which starts from what is durable);
//   - a refused message (refusal.hpp) changes nothing and produces nothing;
//   - the in-memory log is contiguous, its terms never decrease;
//   - a leader never truncates its own log within its term;
//   - committed entries are handed out in order, once;
//   - every message the core sends is one its receiver's validation accepts;
//   - whatever the core persisted reopens: validate_restored() accepts it
//     and a Core is built from it (a forged term must never brick a node).
// Built and run by scripts/fuzz.sh (tests/fuzz/targets.txt).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/core.hpp"
#include "raft/limits.hpp"
#include "raft/state.hpp"

using namespace keel::raft;

namespace {

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

[[noreturn]] void violated(const std::string& what) {
    std::fprintf(stderr, "core_step_fuzzer: invariant violated: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

void require(bool cond, const std::string& what) {
    if (!cond) violated(what);
}

Configuration config_of(const std::vector<NodeId>& voters, const std::vector<NodeId>& learners) {
    Configuration c;
    for (NodeId id : voters) c.members[id] = MemberInfo{true, "v"};
    for (NodeId id : learners) c.members[id] = MemberInfo{false, "l"};
    return c;
}

// What the runtime keeps on disk, as the core told it (actions.hpp).
struct Disk {
    HardState hard_state;
    std::optional<SnapshotMeta> snapshot;
    std::vector<Entry> log;  // after the snapshot
    Index durable_last = 0;  // entries up to here were acknowledged durable
};

class Driver {
public:
    explicit Driver(FuzzedDataProvider& in) : in_(in) {
        options_.id = 1;
        options_.pre_vote = in_.ConsumeBool();
        options_.check_quorum = in_.ConsumeBool();
        options_.lease_reads = options_.check_quorum && in_.ConsumeBool();
        options_.max_inflight_messages = in_.ConsumeIntegralInRange<std::size_t>(1, 8);
        options_.max_message_bytes = in_.ConsumeIntegralInRange<std::size_t>(1, 64);
        options_.snapshot_trailing_entries = in_.ConsumeIntegralInRange<std::size_t>(0, 4);
        options_.forget_stored_everywhere = in_.ConsumeBool();
        options_.random_seed = in_.ConsumeIntegral<std::uint8_t>();
        RestoredState start = starting_state(in_.ConsumeIntegralInRange<int>(0, 4));
        disk_.hard_state = start.hard_state;
        disk_.snapshot = start.snapshot;
        disk_.log = start.entries;
        disk_.durable_last = start.entries.empty() ? 0 : start.entries.back().index;
        open(std::move(start));
    }

    void run() {
        while (in_.remaining_bytes() > 0) {
            switch (in_.ConsumeIntegralInRange<int>(0, 13)) {
                case 0:
                case 1:
                case 2:
                case 3:
                    step(message());
                    break;
                case 4:
                    for (int n = in_.ConsumeIntegralInRange<int>(1, 25); n > 0; --n) core_->tick();
                    break;
                case 5:
                    (void)core_->propose(std::string(in_.ConsumeIntegralInRange<int>(0, 40), 'p'));
                    break;
                case 6:
                    (void)core_->propose_config_change(change());
                    break;
                case 7:
                    (void)core_->read_index(in_.ConsumeIntegral<std::uint8_t>());
                    (void)core_->transfer_leadership(id());
                    break;
                case 8:
                    hold_persist_ = !hold_persist_;
                    if (!hold_persist_) persist();
                    break;
                case 9:
                    (void)core_->on_snapshot_taken(core_->applied_index());
                    disk_.snapshot = core_->snapshot();
                    trim_disk_log();
                    break;
                case 10:
                    core_->report_unreachable(id());
                    core_->report_snapshot(id(), in_.ConsumeBool());
                    break;
                case 11:
                    restart();
                    break;
                default:
                    step(answer());
                    break;
            }
            process();
            check();
        }
    }

private:
    // ---- the states a node may start in -------------------------------------------
    RestoredState starting_state(int kind) {
        switch (kind) {
            case 0:  // the lone voter (raftd's default)
                return bootstrap(config_of({1}, {}));
            case 1: {  // a follower of {1, 2, 3} with a log of terms 1, 2, 2, 3
                RestoredState r = bootstrap(config_of({1, 2, 3}, {}));
                Term t[] = {2, 2, 3};
                for (Term term : t)
                    r.entries.push_back(
                        Entry{term, r.entries.back().index + 1, EntryType::normal, "x"});
                r.hard_state = HardState{3, 2, 2};
                return r;
            }
            case 2:  // a member of {1, 2, 3} that will win its election
                return bootstrap(config_of({1, 2, 3}, {}));
            case 3:  // started to join, still empty
                return RestoredState{};
            default:  // a learner of {2, 3, 4}
                return bootstrap(config_of({2, 3, 4}, {1}));
        }
    }

    void open(RestoredState r) {
        require(validate_restored(r).ok(), "the state the core persisted does not reopen: " +
                                               validate_restored(r).to_string());
        core_ = std::make_unique<Core>(options_, std::move(r));
        reset_watermarks();
        process();
        check();
    }

    void reset_watermarks() {
        term_ = core_->term();
        commit_ = core_->commit_index();
        applied_ = core_->applied_index();
        leading_term_ = 0;
    }

    // What a restart finds: the durable log and the hard state (as
    // runtime/bootstrap.cpp reconciles them).
    void restart() {
        RestoredState r;
        r.hard_state = disk_.hard_state;
        r.snapshot = disk_.snapshot;
        const Index snap = disk_.snapshot ? disk_.snapshot->index : 0;
        for (const Entry& e : disk_.log)
            if (e.index > snap && e.index <= disk_.durable_last) r.entries.push_back(e);
        disk_.log = r.entries;
        const Index last = r.entries.empty() ? snap : r.entries.back().index;
        const Term last_term =
            r.entries.empty() ? (disk_.snapshot ? disk_.snapshot->term : 0) : r.entries.back().term;
        r.hard_state.commit = std::clamp(r.hard_state.commit, snap, last);
        if (r.hard_state.term < last_term)
            r.hard_state = HardState{last_term, kNoNode, r.hard_state.commit};
        r.applied = snap;
        unacked_.reset();
        open(std::move(r));
    }

    // ---- inputs ---------------------------------------------------------------------
    NodeId id() {
        static constexpr NodeId kIds[] = {1, 2, 3, 4, 5, 9, 0, kU64Max};
        return kIds[in_.ConsumeIntegralInRange<std::size_t>(0, std::size(kIds) - 1)];
    }

    Term term_near(Term around) {
        switch (in_.ConsumeIntegralInRange<int>(0, 9)) {
            case 0:
                return kMaxTerm + in_.ConsumeIntegralInRange<std::uint64_t>(0, 2) - 1;
            case 1:
                return kU64Max - in_.ConsumeIntegralInRange<std::uint64_t>(0, 2);
            case 2:
                return in_.ConsumeIntegral<std::uint64_t>();
            default:
                return around + in_.ConsumeIntegralInRange<std::uint64_t>(0, 4) -
                       std::min<Term>(around, 2);
        }
    }

    Index index_near(Index around) {
        switch (in_.ConsumeIntegralInRange<int>(0, 9)) {
            case 0:
                return kMaxIndex + in_.ConsumeIntegralInRange<std::uint64_t>(0, 2) - 1;
            case 1:
                return kU64Max - in_.ConsumeIntegralInRange<std::uint64_t>(0, 2);
            case 2:
                return in_.ConsumeIntegral<std::uint64_t>();
            default:
                return around + in_.ConsumeIntegralInRange<std::uint64_t>(0, 6) -
                       std::min<Index>(around, 3);
        }
    }

    Configuration configuration() {
        Configuration c;
        for (int n = in_.ConsumeIntegralInRange<int>(0, 4); n > 0; --n)
            c.members[in_.ConsumeIntegralInRange<NodeId>(1, 6)] =
                MemberInfo{in_.ConsumeBool(), std::string(in_.ConsumeIntegralInRange(0, 3), 'c')};
        return c;
    }

    std::vector<Entry> entries(Index after, Term from_term, Term up_to_term) {
        std::vector<Entry> out;
        Term term = from_term;
        for (int n = in_.ConsumeIntegralInRange<int>(0, 3); n > 0; --n) {
            if (in_.ConsumeBool() && term < up_to_term) term += 1;
            Entry e{in_.ConsumeIntegralInRange<int>(0, 15) == 0 ? term_near(term) : term,
                    in_.ConsumeIntegralInRange<int>(0, 15) == 0 ? index_near(after + 1) : after + 1,
                    static_cast<EntryType>(in_.ConsumeIntegralInRange<int>(1, 3)), "e"};
            if (e.type == EntryType::config)
                e.data = in_.ConsumeBool() ? encode_configuration(configuration())
                                           : in_.ConsumeBytesAsString(8);
            after = e.index;
            out.push_back(std::move(e));
        }
        return out;
    }

    // Anything a peer could put in a message.
    Message message() {
        Message m;
        m.type = static_cast<MessageType>(in_.ConsumeIntegralInRange<int>(1, 10));
        m.from = id();
        m.to = in_.ConsumeIntegralInRange<int>(0, 9) == 0 ? id() : core_->id();
        m.term = term_near(core_->term());
        m.log_index = index_near(core_->last_index());
        m.log_term = term_near(core_->term_at(m.log_index).value_or(core_->term()));
        m.commit = index_near(core_->commit_index());
        m.index = index_near(core_->last_index());
        m.reject = in_.ConsumeBool();
        m.hint_index = index_near(m.index);
        m.hint_term = term_near(m.log_term);
        m.context = in_.ConsumeIntegralInRange<std::uint64_t>(0, 40);
        m.transfer = in_.ConsumeBool();
        if (m.type == MessageType::append || in_.ConsumeIntegralInRange<int>(0, 15) == 0)
            m.entries = entries(m.log_index, m.log_term, m.term);
        if (m.type == MessageType::snapshot || in_.ConsumeIntegralInRange<int>(0, 15) == 0)
            m.snapshot = SnapshotMeta{index_near(core_->commit_index() + 2),
                                      term_near(core_->term()), configuration()};
        return m;
    }

    // A plausible answer from a member to what this node sends.
    Message answer() {
        Message m;
        static constexpr MessageType kAnswers[] = {
            MessageType::append_response, MessageType::heartbeat_response,
            MessageType::vote_response, MessageType::pre_vote_response};
        m.type = kAnswers[in_.ConsumeIntegralInRange<std::size_t>(0, 3)];
        m.from = in_.ConsumeIntegralInRange<NodeId>(1, 4);
        m.to = core_->id();
        m.term = core_->term() + (m.type == MessageType::pre_vote_response ? 1 : 0);
        m.index = in_.ConsumeIntegralInRange<Index>(0, core_->last_index());
        m.reject = in_.ConsumeBool();
        m.hint_index = in_.ConsumeIntegralInRange<Index>(0, m.index);
        m.hint_term = in_.ConsumeIntegralInRange<Term>(0, core_->term());
        m.context = in_.ConsumeIntegralInRange<std::uint64_t>(0, 40);
        return m;
    }

    ConfigChange change() {
        ConfigChange c;
        c.kind = static_cast<ConfigChange::Kind>(in_.ConsumeIntegralInRange<int>(1, 4));
        c.node = in_.ConsumeIntegralInRange<NodeId>(0, 6);
        c.context = "n";
        return c;
    }

    // ---- stepping, and what a refusal must leave alone --------------------------------
    void step(const Message& m) {
        const Term term = core_->term();
        const Role role = core_->role();
        const NodeId leader = core_->leader();
        const Index last = core_->last_index();
        const Index commit = core_->commit_index();
        const keel::Status st = core_->step(m);
        if (refusal_reason(st).empty()) return;
        require(
            core_->term() == term && core_->role() == role && core_->leader() == leader &&
                core_->last_index() == last && core_->commit_index() == commit &&
                !core_->has_actions(),
            "a refused message changed the core: " + to_string(m) + " (" + st.to_string() + ")");
    }

    // ---- the runtime ------------------------------------------------------------------
    void persist() {
        if (!unacked_) return;
        disk_.durable_last = unacked_->last;
        core_->on_persisted(unacked_->id);
        unacked_.reset();
    }

    void trim_disk_log() {
        if (!disk_.snapshot) return;
        std::erase_if(disk_.log, [&](const Entry& e) { return e.index <= disk_.snapshot->index; });
    }

    void process() {
        for (int rounds = 0; core_->has_actions(); ++rounds) {
            require(rounds < 1000, "the core keeps producing actions");
            Actions a = core_->take_actions();
            if (a.hard_state) {
                require(a.hard_state->term >= disk_.hard_state.term, "the saved term went back");
                disk_.hard_state = *a.hard_state;
            }
            if (a.snapshot) {
                disk_.snapshot = a.snapshot;
                disk_.log.clear();
                disk_.durable_last = a.snapshot->index;
            }
            if (!a.entries.empty()) {
                const Index first = a.entries.front().index;
                std::erase_if(disk_.log, [&](const Entry& e) { return e.index >= first; });
                disk_.durable_last = std::min(disk_.durable_last, first - 1);
                for (const Entry& e : a.entries) disk_.log.push_back(e);
            }
            if (a.write_id != 0) {
                const Index last = !disk_.log.empty() ? disk_.log.back().index
                                   : disk_.snapshot   ? disk_.snapshot->index
                                                      : 0;
                unacked_ = UnackedWrite{a.write_id, last};
                if (!hold_persist_) persist();
            }
            for (const Message& m : a.messages) check_sent(m);
            for (const Message& m : a.messages_after_persist) check_sent(m);
            Index applied = core_->applied_index();
            if (a.snapshot) applied = a.snapshot->index;
            for (const Entry& e : a.committed_entries) {
                require(e.index == applied + 1, "committed entries out of order");
                applied = e.index;
            }
            if (!a.committed_entries.empty()) core_->on_applied(applied);
            if (a.snapshot_wanted) {
                if (core_->on_snapshot_taken(core_->applied_index()).ok()) {
                    disk_.snapshot = core_->snapshot();
                    trim_disk_log();
                }
            }
        }
    }

    void check_sent(const Message& m) {
        require(m.from == core_->id(), "a message not from this node");
        // (A node that took a term or an index near kMaxTerm / kMaxIndex goes
        // past it by its own campaigns and appends, and its peers refuse
        // those: that node is lost to its cluster, but nothing aborts.)
        if (m.term > kMaxTerm || core_->last_index() > kMaxIndex - 1000) return;
        const keel::Status st = validate_message(m, m.to);
        require(st.ok(), "the core sent what its receiver refuses: " + to_string(m) + " (" +
                             st.to_string() + ")");
    }

    void check() {
        require(core_->term() >= term_, "the term went back");
        require(core_->commit_index() >= commit_, "the commit index went back");
        require(core_->applied_index() >= applied_, "the applied index went back");
        // Past kMaxTerm only by its own campaigns (one per election timeout).
        require(core_->term() <= kMaxTerm + 100000, "the term ran away");
        term_ = core_->term();
        commit_ = core_->commit_index();
        applied_ = core_->applied_index();
        // The log: contiguous, terms never decreasing, within the commit index.
        const Index first = core_->first_index();
        const Index last = core_->last_index();
        require(commit_ <= last && first <= last + 1, "log indexes out of order");
        std::vector<Entry> log = core_->entries(first, last + 1);
        require(log.size() == last + 1 - first, "the log has a gap");
        Term previous = core_->term_at(first - 1).value_or(0);
        for (std::size_t i = 0; i < log.size(); ++i) {
            require(log[i].index == first + i, "the log is not contiguous");
            require(log[i].term >= previous, "log terms go back");
            previous = log[i].term;
        }
        // A leader never truncates its own log within its term.
        if (core_->role() == Role::leader) {
            if (leading_term_ == core_->term()) {
                require(last >= leading_last_ &&
                            core_->term_at(leading_last_).value_or(leading_last_term_) ==
                                leading_last_term_,
                        "a leader truncated its own log");
            }
            leading_term_ = core_->term();
            leading_last_ = last;
            leading_last_term_ = core_->term_at(last).value_or(0);
        } else {
            leading_term_ = 0;
        }
    }

    FuzzedDataProvider& in_;
    Options options_;
    std::unique_ptr<Core> core_;
    Disk disk_;
    // The last write taken, not yet acknowledged, and the last log index on
    // disk once it (and every write before it) is durable.
    struct UnackedWrite {
        WriteId id;
        Index last;
    };
    std::optional<UnackedWrite> unacked_;
    bool hold_persist_ = false;
    Term term_ = 0;
    Index commit_ = 0;
    Index applied_ = 0;
    Term leading_term_ = 0;
    Index leading_last_ = 0;
    Term leading_last_term_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    Driver(in).run();
    return 0;
}
