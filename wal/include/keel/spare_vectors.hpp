// keel/spare_vectors.hpp — emptied vectors kept with their capacity, for reuse.
//
// The write path builds one vector per batch (entries to persist, records
// to write, entries to apply, their waiters) and frees it once the batch
// has gone through, often on another thread.  A batch of a few hundred
// entries makes each such vector a request of kilobytes, and glibc's malloc
// answers every request of 1 KiB or more by first consolidating its
// fastbins (malloc_consolidate): the batch's next few hundred small
// allocations then go the slow way through the unsorted bin
// (docs/decisions/0004-runtime-write-path-tuning.md).  Handing the emptied
// vectors back here and taking them again for the next batch keeps the
// pipeline off malloc for them in the steady state.
//
// Thread-safe: give() and take() may run on different threads.  At most
// `max_spares` vectors are kept, none with a capacity over `max_capacity`
// elements, so a pool holds at most max_spares * max_capacity elements' worth
// of memory (768 KiB at most for the write path's 32-48-byte elements by default)
// after a rare huge batch (a follower catching up) has gone through.  A
// larger batch allocates afresh, one large request amortised over thousands
// of entries.
#pragma once

#include <cstddef>
#include <mutex>
#include <utility>
#include <vector>

namespace keel {

template <typename T>
class SpareVectors {
public:
    explicit SpareVectors(std::size_t max_spares = 4, std::size_t max_capacity = 4096)
        : max_spares_(max_spares), max_capacity_(max_capacity) {
        spares_.reserve(max_spares_);
    }

    // An empty vector, with capacity when a spare was there.
    std::vector<T> take() {
        std::lock_guard lock(mu_);
        if (spares_.empty()) return {};
        std::vector<T> v = std::move(spares_.back());
        spares_.pop_back();
        return v;
    }

    // Destroys v's elements (here, on the calling thread) and keeps the
    // emptied vector if there is room, else frees it.  A vector without
    // capacity (moved from) is ignored.
    void give(std::vector<T> v) {
        v.clear();
        if (v.capacity() == 0 || v.capacity() > max_capacity_) return;
        std::lock_guard lock(mu_);
        if (spares_.size() < max_spares_) spares_.push_back(std::move(v));
    }

    std::size_t spares() const {
        std::lock_guard lock(mu_);
        return spares_.size();
    }

private:
    const std::size_t max_spares_;
    const std::size_t max_capacity_;
    mutable std::mutex mu_;
    std::vector<std::vector<T>> spares_;  // GUARDED_BY(mu_)
};

}  // namespace keel
