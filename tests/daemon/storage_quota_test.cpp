#include <catch2/catch.hpp>

#include "storage_quota.hpp"

using namespace keel::daemon;

TEST_CASE("a write that would pass the quota is refused and raises no_space", "[daemon][quota]") {
    auto alarms = std::make_shared<DaemonAlarms>();
    StorageQuota quota(1000, alarms);
    CHECK(quota.clear_at_bytes() == 900);
    CHECK(quota.admit(0, 1000));  // exactly at the quota
    CHECK(quota.admit(999, 1));
    CHECK_FALSE(alarms->raised(keel::kAlarmNoSpace));
    CHECK_FALSE(quota.admit(999, 2));  // one byte over
    CHECK(alarms->raised(keel::kAlarmNoSpace));
    CHECK_FALSE(quota.admit(0, 1001));
}

TEST_CASE("while raised every write is refused; it clears by itself at 90 %", "[daemon][quota]") {
    auto alarms = std::make_shared<DaemonAlarms>();
    StorageQuota quota(1000, alarms);
    CHECK_FALSE(quota.admit(950, 100));
    CHECK_FALSE(quota.admit(950, 1));  // small writes do not sneak in
    quota.refresh(901);
    CHECK(alarms->raised(keel::kAlarmNoSpace));
    CHECK_FALSE(quota.admit(901, 1));
    quota.refresh(900);
    CHECK_FALSE(alarms->raised(keel::kAlarmNoSpace));
    CHECK(quota.admit(900, 100));
    // Usage past the quota (a follower replicating, the WAL's framing)
    // raises it even without a write.
    quota.refresh(1001);
    CHECK(alarms->raised(keel::kAlarmNoSpace));
    CHECK_FALSE(quota.admit(0 + 1001, 0));
    CHECK(quota.admit(10, 10));  // deletes and compaction brought it down
    CHECK_FALSE(alarms->raised(keel::kAlarmNoSpace));
}

TEST_CASE("the WAL figure is re-read once it is older than kWalBytesMaxAge", "[daemon][quota]") {
    StorageQuota quota(1 << 20, std::make_shared<DaemonAlarms>());
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(quota.wal_bytes_stale(t0));
    quota.note_wal_bytes(4096, t0);
    CHECK(quota.wal_bytes() == 4096);
    CHECK_FALSE(quota.wal_bytes_stale(t0 + StorageQuota::kWalBytesMaxAge));
    CHECK(quota.wal_bytes_stale(t0 + StorageQuota::kWalBytesMaxAge + std::chrono::nanoseconds(1)));
}
