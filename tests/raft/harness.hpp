// tests/raft/harness.hpp — a tiny synchronous cluster for unit tests of the
// Raft core: N Cores, a FIFO network with cuttable links, storage that
// persists instantly (or holds acknowledgements on request), and a state
// machine that applies at once.  Deterministic: no clock, no threads; the
// only randomness is each Core's seeded generator.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "raft/core.hpp"
#include "raft/str_cat.hpp"

namespace keel::raft::test {

inline Options test_options(NodeId id) {
    Options o;
    o.id = id;
    o.election_ticks_min = 10;
    o.election_ticks_max = 20;
    o.heartbeat_ticks = 1;
    o.random_seed = id;
    return o;
}

// An append from `from` to `to`: `entries` after (prev_index, prev_term).
inline Message append_message(NodeId from, NodeId to, Term term, Index prev_index, Term prev_term,
                              std::vector<Entry> entries, Index commit) {
    return Message{.type = MessageType::append,
                   .from = from,
                   .to = to,
                   .term = term,
                   .log_index = prev_index,
                   .log_term = prev_term,
                   .commit = commit,
                   .entries = std::move(entries)};
}

inline Configuration make_config(const std::vector<NodeId>& voters,
                                 const std::vector<NodeId>& learners = {}) {
    Configuration c;
    for (NodeId id : voters) c.members[id] = MemberInfo{true, str_cat("addr-", id)};
    for (NodeId id : learners) c.members[id] = MemberInfo{false, str_cat("addr-", id)};
    return c;
}

// The runtime side of one node.
struct Node {
    std::unique_ptr<Core> core;
    std::vector<Entry> storage;  // the durable log as the runtime wrote it
    HardState hard_state;
    std::optional<SnapshotMeta> installed;  // last snapshot installed
    std::vector<Entry> applied;             // entries applied to the state machine, in order
    Index applied_index = 0;
    std::vector<ReadState> read_states;
    std::vector<ReadFailure> read_failures;
    std::vector<SoftState> soft_states;
    bool hold_persist = false;             // do not acknowledge appends yet
    std::optional<WriteId> unacked_write;  // last write not yet acknowledged
    std::vector<Message> held_messages;    // messages_after_persist waiting for the ack
};

class Cluster {
public:
    // A founding cluster: every member bootstrapped with the same config.
    explicit Cluster(const std::vector<NodeId>& voters, const std::vector<NodeId>& learners = {},
                     std::function<void(Options&)> tweak = nullptr,
                     std::vector<std::string>* trace_to = nullptr)
        : trace(trace_to) {
        Configuration c = make_config(voters, learners);
        std::vector<NodeId> all = voters;
        all.insert(all.end(), learners.begin(), learners.end());
        for (NodeId id : all) {
            Options o = test_options(id);
            if (tweak) tweak(o);
            add(id, o, bootstrap(c));
        }
    }

    void add(NodeId id, const Options& o, RestoredState r) {
        Node& n = nodes_[id];
        n.storage = r.entries;
        n.hard_state = r.hard_state;
        n.core = std::make_unique<Core>(o, std::move(r));
        process(id);
    }

    Core& core(NodeId id) { return *nodes_.at(id).core; }
    Node& node(NodeId id) { return nodes_.at(id); }
    std::vector<NodeId> ids() const {
        std::vector<NodeId> out;
        for (const auto& [id, n] : nodes_) out.push_back(id);
        return out;
    }

    // ---- network -------------------------------------------------------------
    void cut(NodeId a, NodeId b) {
        cut_.insert({a, b});
        cut_.insert({b, a});
    }
    void isolate(NodeId a) {
        for (const auto& [id, n] : nodes_) {
            if (id != a) cut(a, id);
        }
    }
    void heal() { cut_.clear(); }
    // Drop messages of one type (for flow-control tests).
    std::set<MessageType> drop_types;
    std::deque<Message> network;
    std::vector<Message> sent_log;  // every message sent, for inspection

    // Carry out one batch of node id's actions.
    void process(NodeId id) {
        Node& n = nodes_.at(id);
        while (n.core->has_actions()) {
            Actions a = n.core->take_actions();
            if (a.soft_state) {
                n.soft_states.push_back(*a.soft_state);
                note(str_cat(id, ": ", role_name(a.soft_state->role), " term=", a.soft_state->term,
                             " leader=", a.soft_state->leader));
            }
            if (a.snapshot)
                note(str_cat(id, ": install snapshot ", a.snapshot->index, '/', a.snapshot->term));
            if (a.configuration) note(str_cat(id, ": config ", to_string(*a.configuration)));
            if (a.snapshot) {
                n.installed = a.snapshot;
                n.storage.clear();
            }
            if (a.hard_state) n.hard_state = *a.hard_state;
            for (Message& m : a.messages) send(std::move(m));
            if (!a.entries.empty()) {
                Index first = a.entries.front().index;
                while (!n.storage.empty() && n.storage.back().index >= first) n.storage.pop_back();
                for (Entry& e : a.entries) n.storage.push_back(e);
                n.unacked_write = a.write_id;
            }
            for (Message& m : a.messages_after_persist) n.held_messages.push_back(std::move(m));
            if (!n.hold_persist) ack_persist(id);
            if (a.snapshot) n.applied_index = a.snapshot->index;
            for (Entry& e : a.committed_entries) {
                if (e.index != n.applied_index + 1) {
                    throw std::runtime_error("committed entries out of order");
                }
                n.applied_index = e.index;
                n.applied.push_back(e);
                note(str_cat(id, ": apply ", to_string(e)));
                n.core->on_applied(e.index);
            }
            if (a.snapshot_wanted) {
                // As the runtime does: snapshot the state machine (here: its
                // applied index) and report it.
                auto meta = n.core->on_snapshot_taken(n.applied_index);
                note(str_cat(id, ": snapshot wanted, taken at ", n.applied_index, ": ",
                             meta.ok() ? "ok" : meta.status().to_string()));
            }
            for (ReadState& r : a.read_states) {
                note(str_cat(id, ": read ", r.request_id, " at index ", r.index));
                n.read_states.push_back(r);
            }
            for (ReadFailure& f : a.read_failures) {
                note(str_cat(id, ": read ", f.request_id, " failed, leader hint ", f.leader_hint));
                n.read_failures.push_back(f);
            }
        }
    }

    // The runtime's durable append completed: acknowledge and release replies.
    void ack_persist(NodeId id) {
        Node& n = nodes_.at(id);
        if (n.unacked_write) {
            const WriteId w = *n.unacked_write;
            n.unacked_write.reset();
            n.core->on_persisted(w);
        }
        for (Message& m : n.held_messages) send(std::move(m));
        n.held_messages.clear();
    }
    void release(NodeId id) {
        node(id).hold_persist = false;
        ack_persist(id);
        process(id);
    }

    void send(Message m) {
        note(to_string(m));
        sent_log.push_back(m);
        network.push_back(std::move(m));
    }

    // Deliver one message; returns false when the network is empty.
    bool deliver_one() {
        if (network.empty()) return false;
        Message m = std::move(network.front());
        network.pop_front();
        bool dropped =
            cut_.count({m.from, m.to}) || drop_types.count(m.type) || !nodes_.count(m.to);
        if (dropped) note(str_cat("dropped ", m.from, "->", m.to, ' ', message_type_name(m.type)));
        if (!dropped) {
            (void)core(m.to).step(m);
            process(m.to);
        }
        if (m.type == MessageType::snapshot && nodes_.count(m.from)) {
            // The runtime reports how streaming the snapshot data went.
            core(m.from).report_snapshot(m.to, !dropped);
            process(m.from);
        }
        return true;
    }

    // Deliver until quiet (bounded: a livelock fails the test).
    void deliver_all(int max_messages = 100000) {
        for (NodeId id : ids()) process(id);
        int n = 0;
        while (deliver_one()) {
            if (++n > max_messages) throw std::runtime_error("network never went quiet");
        }
    }

    void tick(NodeId id, int ticks = 1) {
        for (int i = 0; i < ticks; ++i) {
            core(id).tick();
            process(id);
        }
    }
    // One tick on every node, then deliver everything.
    void tick_all(int ticks = 1) {
        for (int i = 0; i < ticks; ++i) {
            for (NodeId id : ids()) tick(id);
            deliver_all();
        }
    }

    // Make `id` campaign (ticks it alone past its election timeout) and
    // deliver until quiet.
    void elect(NodeId id) {
        for (int i = 0; i < 100 && core(id).role() == Role::follower; ++i) tick(id);
        deliver_all();
    }

    // Ticks only `candidates` (delivering after each round) until one of
    // them leads; returns it, or 0 after 100 rounds.  The other nodes do not
    // tick: an isolated old leader keeps believing it leads.
    NodeId tick_until_one_leads(const std::vector<NodeId>& candidates) {
        for (int i = 0; i < 100; ++i) {
            for (NodeId id : candidates)
                if (core(id).role() == Role::leader) return id;
            for (NodeId id : candidates) tick(id);
            deliver_all();
        }
        for (NodeId id : candidates)
            if (core(id).role() == Role::leader) return id;
        return 0;
    }

    NodeId leader() {
        for (const auto& [id, n] : nodes_) {
            if (n.core->role() == Role::leader) return id;
        }
        return kNoNode;
    }

    // Propose on `id` and deliver until quiet.
    Proposed propose(NodeId id, const std::string& data) {
        auto r = core(id).propose(data);
        if (!r.ok()) throw std::runtime_error("propose failed: " + r.status().to_string());
        deliver_all();
        return *r;
    }

    // When set, every message sent and every state change is recorded here
    // (the scenario tests print it).
    std::vector<std::string>* trace = nullptr;

private:
    void note(std::string line) {
        if (trace) trace->push_back(std::move(line));
    }

    std::map<NodeId, Node> nodes_;
    std::set<std::pair<NodeId, NodeId>> cut_;
};

// A lone core of a cluster of `voters` (plus `learners`): bootstrapped, then
// restored with extra entries of the given terms (indexes 2, 3, ...), the
// hard state at `term` and commit index `commit`.
inline std::unique_ptr<Core> lone_core(NodeId id, const std::vector<NodeId>& voters, Term term = 1,
                                       const std::vector<Term>& extra_terms = {}, Index commit = 1,
                                       const std::function<void(Options&)>& tweak = nullptr,
                                       const std::vector<NodeId>& learners = {}) {
    RestoredState r = bootstrap(make_config(voters, learners));
    for (Term t : extra_terms) {
        Index i = r.entries.back().index + 1;
        r.entries.push_back(Entry{t, i, EntryType::normal, str_cat("e", i)});
    }
    r.hard_state.term = std::max<Term>(term, 1);
    r.hard_state.commit = commit;
    Options o = test_options(id);
    if (tweak) tweak(o);
    auto core = std::make_unique<Core>(o, std::move(r));
    (void)core->take_actions();
    return core;
}

// Drive a lone core through (pre-)campaign to leader by answering its vote
// requests with grants.  Returns the leader's first batch.
inline Actions win_election(Core& c) {
    for (int i = 0; i < 100 && c.role() == Role::follower; ++i) c.tick();
    Actions a;
    for (int round = 0; round < 4 && c.role() != Role::leader; ++round) {
        a = c.take_actions();
        for (const Message& m : a.messages) {
            if (m.type != MessageType::vote && m.type != MessageType::pre_vote) continue;
            Message reply;
            reply.type = m.type == MessageType::vote ? MessageType::vote_response
                                                     : MessageType::pre_vote_response;
            reply.from = m.to;
            reply.to = c.id();
            reply.term = m.term;
            (void)c.step(reply);
        }
    }
    if (c.role() != Role::leader) throw std::runtime_error("win_election: not leader");
    return c.take_actions();
}

// A follower's successful answer to an append: it holds everything up to `index`.
inline Message append_ok(NodeId from, NodeId to, Term term, Index index) {
    return Message{
        .type = MessageType::append_response, .from = from, .to = to, .term = term, .index = index};
}

// Messages of one type in a batch.
inline std::vector<Message> of_type(const std::vector<Message>& msgs, MessageType type) {
    std::vector<Message> out;
    for (const Message& m : msgs) {
        if (m.type == type) out.push_back(m);
    }
    return out;
}

// Step one message into a lone core and return the batch it produced.
inline Actions step_and_take(Core& core, const Message& m) {
    (void)core.step(m);
    return core.take_actions();
}

}  // namespace keel::raft::test
