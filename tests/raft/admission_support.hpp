// tests/raft/admission_support.hpp — what the admission tests share: a
// picture of the state a refused message must leave unchanged, the check
// that a message is refused, and the followers and leaders they start from.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string_view>
#include <vector>

#include "harness.hpp"
#include "raft/limits.hpp"

namespace keel::raft::test {
inline constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

// What a refused message must not change.
struct Snapshot {
    Term term;
    NodeId vote;
    NodeId leader;
    Role role;
    Index last_index;
    Index commit_index;
    std::vector<PeerProgress> progress;

    explicit Snapshot(const Core& c)
        : term(c.term()),
          vote(c.vote()),
          leader(c.leader()),
          role(c.role()),
          last_index(c.last_index()),
          commit_index(c.commit_index()),
          progress(c.progress()) {}
    bool operator==(const Snapshot& o) const {
        return term == o.term && vote == o.vote && leader == o.leader && role == o.role &&
               last_index == o.last_index && commit_index == o.commit_index &&
               progress.size() == o.progress.size() &&
               std::equal(progress.begin(), progress.end(), o.progress.begin(),
                          [](const PeerProgress& a, const PeerProgress& b) {
                              return a.id == b.id && a.match == b.match && a.next == b.next &&
                                     a.state == b.state;
                          });
    }
};

// Steps `m` into `c`, requires it refused for `reason`, and that nothing changed
// (no state, no output).
inline void require_refused(Core& c, const Message& m, std::string_view reason) {
    (void)c.take_actions();
    const Snapshot before(c);
    keel::Status st = c.step(m);
    INFO(to_string(m) << " -> " << st.to_string());
    CHECK(refusal_reason(st) == reason);
    CHECK(Snapshot(c) == before);
    CHECK_FALSE(c.has_actions());
}

// A follower of a 3-voter cluster at term 2 that heard from its leader (1).
inline std::unique_ptr<Core> follower_of_1(NodeId id = 2) {
    auto c = lone_core(id, {1, 2, 3}, 2, {2});
    (void)c->step(Message{.type = MessageType::heartbeat, .from = 1, .to = id, .term = 2});
    (void)c->take_actions();
    REQUIRE(c->leader() == 1);
    return c;
}

// A leader of {1, 2, 3} whose no-op is durable and acknowledged by 2.
inline std::unique_ptr<Core> leader_1() {
    auto c = lone_core(1, {1, 2, 3});
    const Actions won = win_election(*c);
    REQUIRE(won.write_id != 0);  // the no-op
    c->on_persisted(won.write_id);
    (void)c->step(append_ok(2, 1, c->term(), c->last_index()));
    (void)c->take_actions();
    REQUIRE(c->role() == Role::leader);
    return c;
}

inline Message heartbeat(NodeId from, NodeId to, Term term) {
    return Message{.type = MessageType::heartbeat, .from = from, .to = to, .term = term};
}

}  // namespace keel::raft::test
