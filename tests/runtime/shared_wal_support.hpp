// Helpers of the shared WAL's tests (shared_wal_test.cpp,
// shared_wal_rewrite_test.cpp): entries, appends and resets waited for until
// durable, a group's log as text, and a SharedWal opened without
// preallocation.  Each REQUIREs what it does to succeed.
#pragma once

#include <catch2/catch.hpp>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "runtime/shared_wal.hpp"

namespace keel::runtime::shared_wal_support {

inline raft::Entry entry(raft::Index index, raft::Term term, const std::string& data) {
    return raft::Entry{term, index, raft::EntryType::normal, SharedBytes(data)};
}

// Appends and waits until durable.
inline void append(LogStore& log, std::vector<raft::Entry> entries) {
    std::promise<Status> done;
    REQUIRE(log.append(entries, wal::Wal::Writer::flusher,
                       [&done](Status s) { done.set_value(std::move(s)); })
                .ok());
    REQUIRE(done.get_future().get().ok());
}

inline void reset(LogStore& log, raft::Index index, raft::Term term) {
    std::promise<Status> done;
    REQUIRE(
        log.reset_after_snapshot(index, term, [&done](Status s) { done.set_value(std::move(s)); })
            .ok());
    REQUIRE(done.get_future().get().ok());
}

inline std::vector<std::string> log_of(const LogStore& log, raft::Index after, raft::Term term) {
    auto entries = log.entries_after(after, term);
    REQUIRE(entries.ok());
    std::vector<std::string> out;
    for (const raft::Entry& e : entries.value())
        out.push_back(std::to_string(e.index) + "@" + std::to_string(e.term) + ":" + e.data.str());
    return out;
}

inline std::unique_ptr<SharedWal> open_shared(const std::string& dir,
                                              std::uint64_t segment_bytes = 0) {
    wal::Options o;
    if (segment_bytes != 0) o.segment_bytes = segment_bytes;
    o.preallocate = false;
    auto s = SharedWal::open(dir, o);
    REQUIRE(s.ok());
    return std::move(s.value());
}

inline std::unique_ptr<LogStore> open_group(SharedWal& shared, GroupId g) {
    auto log = shared.open_group(g, SharedWal::Hooks{});
    REQUIRE(log.ok());
    return std::move(log.value());
}

}  // namespace keel::runtime::shared_wal_support
