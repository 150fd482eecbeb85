// raft/refusal.hpp — why Core::step refused a message, as a short stable name.
//
// A refused message never reaches the algorithm: it changes no term, no
// log and no timer.  step() returns it as a Status with code
// invalid_argument whose message is "<reason>: <detail>", so that a log
// line says both; the runtime counts refusals by reason
// (NodeStatus::peer_messages_rejected).  Messages Raft itself drops (a
// stale term, a vote request inside a leader's lease) are not refusals.
#pragma once

#include <string_view>

#include "keel/status.hpp"

namespace keel::raft {

// The sender is not a member this node knows of (core.hpp, step()).
inline constexpr std::string_view kRefusedNotAMember = "not_a_member";
// A term at or above 2^63 (past kMaxTerm), or a snapshot of a term newer than its message.
inline constexpr std::string_view kRefusedTermOutOfRange = "term_out_of_range";
// An index at or above 2^63 (past kMaxIndex), or one this node never sent
// (an acknowledgement past the leader's log, a hint past the rejected index).
inline constexpr std::string_view kRefusedIndexOutOfRange = "index_out_of_range";
// Not for this node (the addressee is another id).
inline constexpr std::string_view kRefusedMisaddressed = "misaddressed";
// Anything else no correct member sends: no term, a sender id of 0 or our
// own, entries out of order, a configuration that does not decode or has
// no voter, snapshot metadata missing or where it does not belong.
inline constexpr std::string_view kRefusedMalformed = "malformed";

// The refusal `reason` with `detail`, as step() returns it.
Status refused(std::string_view reason, std::string_view detail);

// The reason of a Status step() returned, or empty if it was no refusal
// (ok, or a message Raft drops by its own rules).
std::string_view refusal_reason(const Status& status);

}  // namespace keel::raft
