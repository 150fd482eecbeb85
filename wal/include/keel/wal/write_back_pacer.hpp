// keel/wal/write_back_pacer.hpp — a bulk write through the page cache,
// written back as it goes.  Left to the kernel, a large file's dirty pages
// reach the disk in one burst (its fdatasync, or the flusher's next pass),
// and every durable write of the log queued behind that burst waits for it
// (docs/decisions/0051-disk-stalls.md, 0052).  Paced, a chunk's write-back
// starts as soon as it is written, and the next chunk waits until the one
// before it is out: at most two chunks are in flight.
//
// Pacing is a hint, never durability: where the file system refuses it
// (File::write_back fails), the rest goes out unpaced, and the caller's
// fdatasync still makes it durable.  One thread at a time.
#pragma once

#include <cstdint>

#include "keel/wal/file_system.hpp"

namespace keel::wal {

class WriteBackPacer {
public:
    // Paces in chunks of `chunk_bytes` (> 0), from `start` (the first byte
    // this write writes).
    explicit WriteBackPacer(std::uint64_t chunk_bytes, std::uint64_t start = 0)
        : chunk_bytes_(chunk_bytes), previous_(start), started_(start) {}

    // `file` now holds this write's bytes up to `end` (written in order):
    // each whole chunk gathered since the last one has its write-back
    // started, after the one before it was waited for.
    void wrote(File& file, std::uint64_t end) {
        while (end - started_ >= chunk_bytes_) pace_to(file, started_ + chunk_bytes_);
    }
    // The write is complete at `end`: the rest is a last, shorter chunk.
    void finish(File& file, std::uint64_t end) {
        if (end > started_) pace_to(file, end);
    }

private:
    void pace_to(File& file, std::uint64_t end) {
        if (pacing_) pacing_ = file.write_back(started_, end - started_, false).ok();
        if (pacing_ && started_ > previous_)
            pacing_ = file.write_back(previous_, started_ - previous_, true).ok();
        previous_ = started_;
        started_ = end;
    }

    const std::uint64_t chunk_bytes_;
    std::uint64_t previous_;  // the last chunk started: [previous_, started_)
    std::uint64_t started_;   // write-back started for everything before
    bool pacing_ = true;
};

}  // namespace keel::wal
