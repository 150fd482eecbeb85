// daemon/storage_quota.hpp — --quota-bytes: a cap on what raftd's data takes:
// neither the state machine's size (as a snapshot writes it) nor the WAL's
// bytes may pass it (the usage is the larger of the two).  A write that would take the usage past
// the quota is refused (507 no_space) and raises the no_space alarm; while it is raised, every
// write is refused.  Reads and deletes go on.  The alarm clears by itself
// once deletes and compaction bring the usage down to kClearPercent of the
// quota: the margin keeps it from flapping on every write near the limit.
// keel raises its own no_space alarm when the disk is full; either refuses
// writes, and /v1/status shows both as one (alarms.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "alarms.hpp"

namespace keel::daemon {

class StorageQuota {
public:
    static constexpr std::uint64_t kClearPercent = 90;
    // How old the WAL figure may be when a write is checked: reading keel's
    // status costs more than a PUT should pay every time.
    static constexpr std::chrono::milliseconds kWalBytesMaxAge{50};

    // REQUIRES: quota_bytes > 0.
    StorageQuota(std::uint64_t quota_bytes, std::shared_ptr<DaemonAlarms> alarms);

    // May a write adding `entry_bytes` go ahead with `usage_bytes` in use?
    // Refreshes the alarm first; a refusal raises it.  Thread-safe.
    bool admit(std::uint64_t usage_bytes, std::uint64_t entry_bytes);
    // Raises the alarm if the usage is past the quota, clears it once it is
    // at most clear_at_bytes().  Thread-safe.
    void refresh(std::uint64_t usage_bytes);

    std::uint64_t quota_bytes() const { return quota_bytes_; }
    std::uint64_t clear_at_bytes() const { return quota_bytes_ / 100 * kClearPercent; }

    // The WAL's size as last read from keel's status (see kWalBytesMaxAge).
    bool wal_bytes_stale(std::chrono::steady_clock::time_point now) const;
    void note_wal_bytes(std::uint64_t bytes, std::chrono::steady_clock::time_point now);
    std::uint64_t wal_bytes() const { return wal_bytes_.load(std::memory_order_relaxed); }

private:
    const std::uint64_t quota_bytes_;
    std::shared_ptr<DaemonAlarms> alarms_;
    std::atomic<std::uint64_t> wal_bytes_{0};
    std::atomic<std::int64_t> wal_read_ns_{0};  // steady clock; 0: never read
};

}  // namespace keel::daemon
