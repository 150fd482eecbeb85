// runtime/peer_directory.hpp — where a replica sends to each peer: the
// addresses its configuration gives, and those peers' hellos gave for ids
// the configuration does not place.
//
// Why the second kind: a joiner has no configuration yet, and a member whose
// log predates a new leader's addition does not know that leader.  Both hear
// such a leader (raft/admission.cpp) and must answer it, or it never learns
// what they lack; the transport is one-way (each side dials the other), so
// the answer needs the leader's address, which its hello says.  What the
// configuration (or the operator's initial_members) says wins; a learned
// address only fills a gap, and only the newest kMaxLearnedPeerAddresses are
// kept, so that strangers saying hello cannot grow it.
//
// Not thread-safe: the replica calls it under its core lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "raft/types.hpp"

namespace keel::runtime {

inline constexpr std::size_t kMaxLearnedPeerAddresses = 64;

class PeerDirectory {
public:
    explicit PeerDirectory(raft::NodeId self) : self_(self) {}

    // The configuration's addresses (self excluded by the caller or here).
    // Learned addresses of ids it places are forgotten.
    void set_configured(std::map<raft::NodeId, std::string> peers);
    // Node `id` said hello from `address`.  Returns true if the directory
    // changed (a new id or a new address for one).  Ignored (false) for
    // this node, an empty address, or an id the configuration places.  At
    // the limit, the address learned or confirmed longest ago goes.
    bool learn(raft::NodeId id, const std::string& address);
    // Every peer's address: the configured ones and the learned ones.
    std::map<raft::NodeId, std::string> addresses() const;
    std::size_t learned_count() const { return learned_.size(); }

private:
    struct Learned {
        std::string address;
        std::uint64_t seq = 0;  // when it was last said
    };
    const raft::NodeId self_;
    std::map<raft::NodeId, std::string> configured_;
    std::map<raft::NodeId, Learned> learned_;
    std::uint64_t seq_ = 0;
};

}  // namespace keel::runtime
