// runtime/peer_directory.cpp — see peer_directory.hpp.
#include "runtime/peer_directory.hpp"

#include <algorithm>
#include <utility>

namespace keel::runtime {

void PeerDirectory::set_configured(std::map<raft::NodeId, std::string> peers) {
    peers.erase(self_);
    configured_ = std::move(peers);
    std::erase_if(learned_, [this](const auto& l) { return configured_.count(l.first) != 0; });
}

bool PeerDirectory::learn(raft::NodeId id, const std::string& address) {
    if (id == self_ || address.empty() || configured_.count(id)) return false;
    auto it = learned_.find(id);
    if (it != learned_.end()) {
        it->second.seq = ++seq_;
        if (it->second.address == address) return false;
        it->second.address = address;
        return true;
    }
    if (learned_.size() >= kMaxLearnedPeerAddresses) {
        auto oldest = std::min_element(
            learned_.begin(), learned_.end(),
            [](const auto& a, const auto& b) { return a.second.seq < b.second.seq; });
        learned_.erase(oldest);
    }
    learned_.emplace(id, Learned{address, ++seq_});
    return true;
}

std::map<raft::NodeId, std::string> PeerDirectory::addresses() const {
    std::map<raft::NodeId, std::string> all = configured_;
    for (const auto& [id, l] : learned_) all.emplace(id, l.address);
    return all;
}

}  // namespace keel::runtime
