// Coalescing the acknowledgements one fsync releases (runtime/acknowledgements.hpp).
#include <catch2/catch.hpp>

#include "runtime/acknowledgements.hpp"

using keel::raft::Message;
using keel::raft::MessageType;

namespace {
Message ack(keel::raft::NodeId to, keel::raft::Term term, keel::raft::Index index) {
    Message m;
    m.type = MessageType::append_response;
    m.to = to;
    m.term = term;
    m.index = index;
    return m;
}
// The messages left after coalescing.
std::vector<Message> coalesced(std::vector<Message> messages) {
    keel::runtime::coalesce_acknowledgements(messages);
    return messages;
}
}  // namespace

TEST_CASE("only the last acknowledgement to each leader goes") {
    auto out = coalesced({ack(1, 3, 10), ack(1, 3, 12), ack(1, 3, 15)});
    REQUIRE(out.size() == 1);
    CHECK(out[0].index == 15);
}

TEST_CASE("acknowledgements that say something new stay, in order") {
    Message reject = ack(1, 3, 20);
    reject.reject = true;
    Message vote;
    vote.type = MessageType::vote_response;
    vote.to = 2;
    vote.term = 4;
    auto out = coalesced({
        ack(1, 3, 10),  // superseded by 12 below
        reject,         // a rejection always goes
        ack(2, 3, 11),  // another node
        ack(1, 2, 13),  // another term
        ack(1, 3, 12),
        ack(1, 3, 9),  // lower than 12 before it: not superseded by anything after it
        vote,
    });
    REQUIRE(out.size() == 6);
    CHECK((out[0].reject && out[0].index == 20));
    CHECK((out[1].to == 2 && out[1].index == 11));
    CHECK((out[2].term == 2 && out[2].index == 13));
    CHECK(out[3].index == 12);
    CHECK(out[4].index == 9);
    CHECK(out[5].type == MessageType::vote_response);
}

TEST_CASE("nothing or one message passes as it is") {
    CHECK(coalesced({}).empty());
    auto one = coalesced({ack(1, 1, 5)});
    REQUIRE(one.size() == 1);
    CHECK(one[0].index == 5);
}
