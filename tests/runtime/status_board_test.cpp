// StatusBoard's count of the messages a replica steps in, by kind
// (NodeStatus::messages_received): raft-bench's messages_per_op reads it.
#include <catch2/catch.hpp>

#include "runtime/status_board.hpp"

using keel::raft::Message;
using keel::raft::MessageType;

TEST_CASE("messages stepped in are counted by kind; a heartbeat of context 0 is a notice",
          "[status_board]") {
    keel::runtime::StatusBoard board(1);
    CHECK(board.received().total() == 0);
    auto step = [&board](MessageType type, std::uint64_t context = 0) {
        Message m;
        m.type = type;
        m.context = context;
        board.count_received(m);
    };
    step(MessageType::append);
    step(MessageType::append);
    step(MessageType::append_response);
    step(MessageType::heartbeat, 7);  // a ReadIndex round's, or a check's
    step(MessageType::heartbeat, keel::raft::kCommitNoticeContext);  // wants no answer
    step(MessageType::heartbeat_response, 7);
    step(MessageType::pre_vote);
    step(MessageType::vote);
    step(MessageType::pre_vote_response);
    step(MessageType::vote_response);
    step(MessageType::timeout_now);
    step(MessageType::snapshot);
    const keel::MessageCounts c = board.received();
    CHECK(c.appends == 2);
    CHECK(c.append_answers == 1);
    CHECK(c.heartbeats == 1);
    CHECK(c.notices == 1);
    CHECK(c.heartbeat_answers == 1);
    CHECK(c.votes == 2);
    CHECK(c.vote_answers == 2);
    CHECK(c.other == 2);
    CHECK(c.total() == 12);
    keel::MessageCounts twice = c;
    twice += c;
    CHECK(twice.total() == 24);
    CHECK(twice.notices == 2);
    CHECK(twice.other == 4);
}
