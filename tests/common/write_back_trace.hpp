// tests/common/write_back_trace.hpp — what a paced write asked of the disk
// (keel/wal/write_back_pacer.hpp), replayed from FaultFs's before-mutation
// events on the file written: "write_back PATH OFFSET SIZE",
// "write_back_wait PATH OFFSET SIZE" and "datasync PATH".
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace keel::test {

struct WriteBackTrace {
    std::uint64_t started_end = 0;      // the prefix whose write-back started
    std::uint64_t done_end = 0;         // the prefix whose write-back was waited for
    std::vector<std::uint64_t> pieces;  // the write-backs started, their sizes in order
    bool synced_after = false;          // a datasync followed the last write-back started
};

// CHECKs, event by event, that each write-back starts where the last one
// ended, that each wait covers the next bytes started, and that at most
// `in_flight_max` bytes are ever started and not waited for.
inline WriteBackTrace replay_write_backs(const std::vector<std::string>& events,
                                         std::uint64_t in_flight_max) {
    WriteBackTrace t;
    for (const std::string& e : events) {
        INFO(e);
        std::istringstream in(e);
        std::string kind, path;
        std::uint64_t offset = 0, size = 0;
        in >> kind >> path >> offset >> size;
        if (kind == "write_back") {
            CHECK(offset == t.started_end);
            t.started_end = offset + size;
            t.pieces.push_back(size);
            CHECK(t.started_end - t.done_end <= in_flight_max);
            t.synced_after = false;
        } else if (kind == "write_back_wait") {
            CHECK(offset == t.done_end);
            CHECK(offset + size <= t.started_end);
            t.done_end = offset + size;
        } else if (kind == "datasync") {
            t.synced_after = true;
        }
    }
    return t;
}

}  // namespace keel::test
