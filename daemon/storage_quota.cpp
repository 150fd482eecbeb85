#include "storage_quota.hpp"

#include "keel/assert.hpp"

namespace keel::daemon {

StorageQuota::StorageQuota(std::uint64_t quota_bytes, std::shared_ptr<DaemonAlarms> alarms)
    : quota_bytes_(quota_bytes), alarms_(std::move(alarms)) {
    KEEL_ASSERT(quota_bytes_ > 0 && alarms_, "a quota is positive and has somewhere to alarm");
}

void StorageQuota::refresh(std::uint64_t usage_bytes) {
    if (usage_bytes > quota_bytes_) {
        alarms_->set(kAlarmNoSpace, true);
    } else if (usage_bytes <= clear_at_bytes()) {
        alarms_->set(kAlarmNoSpace, false);
    }
}

bool StorageQuota::admit(std::uint64_t usage_bytes, std::uint64_t entry_bytes) {
    refresh(usage_bytes);
    if (alarms_->raised(kAlarmNoSpace)) return false;
    if (entry_bytes > quota_bytes_ || usage_bytes > quota_bytes_ - entry_bytes) {
        alarms_->set(kAlarmNoSpace, true);
        return false;
    }
    return true;
}

bool StorageQuota::wal_bytes_stale(std::chrono::steady_clock::time_point now) const {
    const std::int64_t read_ns = wal_read_ns_.load(std::memory_order_relaxed);
    return read_ns == 0 ||
           now.time_since_epoch() - std::chrono::nanoseconds(read_ns) > kWalBytesMaxAge;
}

void StorageQuota::note_wal_bytes(std::uint64_t bytes, std::chrono::steady_clock::time_point now) {
    wal_bytes_.store(bytes, std::memory_order_relaxed);
    wal_read_ns_.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count(),
        std::memory_order_relaxed);
}

}  // namespace keel::daemon
