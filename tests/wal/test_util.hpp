// Helpers shared by the WAL tests: temp directories, record builders, and
// the fault-injecting FileSystem (tests/common/fault_fs.hpp) that can fail
// fdatasync and snapshot the directory before every mutating operation (a
// simulated crash there).
#pragma once

#include <stdlib.h>

#include <cstdlib>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>
#include "../common/fault_fs.hpp"
#include "../common/temp_dir.hpp"

#include "keel/assert.hpp"
#include "keel/wal/file_system.hpp"
#include "keel/wal/record.hpp"
#include "keel/wal/wal.hpp"

namespace keel::wal::test {

using keel::test::copy_dir;
using keel::test::dir_contents;
using keel::test::fail_on;
using keel::test::FaultFs;
using keel::test::TempDir;

inline Record make_record(std::uint64_t index, std::uint64_t term = 1, std::size_t bytes = 40) {
    Record r;
    r.index = index;
    r.term = term;
    r.type = static_cast<std::uint16_t>(index % 3);
    std::string payload(bytes, '\0');
    for (std::size_t i = 0; i < bytes; ++i)
        payload[i] = static_cast<char>('a' + (index * 7 + i) % 26);
    r.payload = std::move(payload);
    return r;
}

inline std::vector<Record> make_records(std::uint64_t first, std::uint64_t count,
                                        std::uint64_t term = 1, std::size_t bytes = 40) {
    std::vector<Record> out;
    for (std::uint64_t i = 0; i < count; ++i) out.push_back(make_record(first + i, term, bytes));
    return out;
}

// The write path the WAL tests run on: KEEL_WAL_WRITE_PATH = buffered
// (unset), direct or auto.  tests/wal/meson.build runs every WAL test
// binary once per path; `direct` is strict (open fails where the file
// system refuses O_DIRECT), so a direct run cannot quietly test buffered.
inline WritePath test_write_path() {
    const char* env = std::getenv("KEEL_WAL_WRITE_PATH");
    const std::string path = env != nullptr ? env : "buffered";
    if (path == "direct") return WritePath::direct;
    if (path == "auto") return WritePath::automatic;
    KEEL_ASSERT(path == "buffered", "KEEL_WAL_WRITE_PATH must be buffered, direct or auto");
    return WritePath::buffered;
}

// Small segments so tests roll often and stay fast: 16 KiB (on the direct
// path, where every batch takes a 4 KiB block of its own and the header one
// more, that is three batches).
inline Options small_options(FileSystem* fs = nullptr) {
    Options o;
    o.segment_bytes = 16 * 1024;
    o.max_record_bytes = 64 * 1024;
    o.fs = fs;
    o.write_path = test_write_path();
    return o;
}

// REQUIREs that `wal` holds exactly make_record(first .. last).  For a
// test file that includes Catch before this header.
#ifdef REQUIRE
inline void require_log_is(Wal& wal, std::uint64_t first, std::uint64_t last) {
    REQUIRE(wal.first_index() == first);
    REQUIRE(wal.last_index() == last);
    auto got = wal.read(first, last + 1);
    REQUIRE(got.ok());
    REQUIRE(got->size() == last + 1 - first);
    for (std::uint64_t i = first; i <= last; ++i) REQUIRE((*got)[i - first] == make_record(i));
}
#endif

}  // namespace keel::wal::test
