#include "client_counts.hpp"

#include "keel/assert.hpp"

namespace keel::daemon {

ClientSlot& ClientSlot::operator=(ClientSlot&& other) noexcept {
    if (this != &other) {
        release();
        counts_ = std::move(other.counts_);
        client_ = std::move(other.client_);
    }
    return *this;
}

void ClientSlot::release() {
    if (counts_) counts_->release(client_);
    counts_.reset();
}

ClientCounts::ClientCounts(std::size_t max_per_client) : max_per_client_(max_per_client) {
    KEEL_ASSERT(max_per_client_ > 0, "a client may hold at least one connection");
}

std::optional<ClientSlot> ClientCounts::acquire(const std::string& client) {
    {
        std::lock_guard lock(mu_);
        std::size_t& open = open_[client];
        if (open >= max_per_client_) return std::nullopt;
        ++open;
    }
    return ClientSlot(shared_from_this(), client);
}

void ClientCounts::release(const std::string& client) {
    std::lock_guard lock(mu_);
    auto it = open_.find(client);
    KEEL_ASSERT(it != open_.end() && it->second > 0, "a slot is released once");
    if (--it->second == 0) open_.erase(it);
}

std::size_t ClientCounts::count(const std::string& client) const {
    std::lock_guard lock(mu_);
    auto it = open_.find(client);
    return it == open_.end() ? 0 : it->second;
}

std::size_t ClientCounts::clients() const {
    std::lock_guard lock(mu_);
    return open_.size();
}

}  // namespace keel::daemon
