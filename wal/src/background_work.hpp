// background_work.hpp — what the WAL's background thread is asked to do
// (segment_files.cpp): prepare the next segment file ahead of the writer,
// delete the files of compacted segments; and the closing flag that makes a
// writer waiting for disk space give up.
//
// Threads: the writer asks for and takes the prepared file, compaction
// hands over files to delete, the background thread does both; everything
// is under `mu` (a leaf lock), waited for on `cv`.  `closing` is also read
// without it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "keel/status.hpp"
#include "keel/wal/file_system.hpp"

namespace keel::wal::detail {

struct BackgroundWork {
    mutable std::mutex mu;
    std::condition_variable cv;
    bool stop = false;                   // the thread exits (after the flusher stopped)
    bool want_prepared = false;          // the writer asked for the next segment file
    std::shared_ptr<File> prepared;      // ready for the writer to take
    Status prepared_error;               // preparing failed other than for space
    std::vector<std::string> to_delete;  // file names, deleted off the writer's path
    // Set once the destructor begins (under mu, notified on cv): a writer
    // waiting for disk space gives up.
    std::atomic<bool> closing{false};
};

}  // namespace keel::wal::detail
