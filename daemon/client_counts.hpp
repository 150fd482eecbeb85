// daemon/client_counts.hpp — open HTTP connections per client address, so
// that one client cannot take every connection the server allows
// (--http-max-conns-per-client, besides the global --http-max-conns).
// A connection holds a ClientSlot for its lifetime.  Thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace keel::daemon {

class ClientCounts;

// One connection's place in its client's count; released when destroyed.
class ClientSlot {
public:
    ClientSlot() = default;
    ClientSlot(std::shared_ptr<ClientCounts> counts, std::string client)
        : counts_(std::move(counts)), client_(std::move(client)) {}
    ClientSlot(ClientSlot&&) noexcept = default;
    ClientSlot& operator=(ClientSlot&& other) noexcept;
    ClientSlot(const ClientSlot&) = delete;
    ClientSlot& operator=(const ClientSlot&) = delete;
    ~ClientSlot() { release(); }

private:
    void release();

    std::shared_ptr<ClientCounts> counts_;
    std::string client_;
};

class ClientCounts : public std::enable_shared_from_this<ClientCounts> {
public:
    // REQUIRES: max_per_client > 0.
    explicit ClientCounts(std::size_t max_per_client);

    // A slot for one more connection from `client` (an address as text), or
    // nullopt when it already holds max_per_client.
    std::optional<ClientSlot> acquire(const std::string& client);
    std::size_t count(const std::string& client) const;
    std::size_t clients() const;  // addresses holding at least one slot

private:
    friend class ClientSlot;
    void release(const std::string& client);

    const std::size_t max_per_client_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, std::size_t> open_;  // GUARDED_BY(mu_); no zero counts
};

}  // namespace keel::daemon
