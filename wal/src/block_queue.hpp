// wal/src/block_queue.hpp — a queue of trivially copyable elements in fixed
// blocks of kBlockElements: the WAL's in-memory index (one Entry per durable
// record), which grows by one element per record written and loses whole
// segments' worth from the front at compaction.
//
// Why not std::deque: libstdc++'s deque allocates a 512-byte node every ~20
// index entries, and each time the writing thread's malloc arena runs out
// of room (a page at a time for a thread's arena) glibc first consolidates
// every fast-bin chunk the thread freed; a busy single node frees hundreds
// per batch (docs/decisions/0037-single-node-per-batch-costs.md).  One
// block of kBlockElements costs one such request per ~2,000 records.
//
// Growing never moves an element; erase_front frees the blocks it empties.
// Not thread-safe (like the standard containers).
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <new>
#include <type_traits>

#include "keel/assert.hpp"

namespace keel::wal::detail {

template <typename T, std::size_t kBlockElements>
class BlockQueue {
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T> &&
                      std::is_default_constructible_v<T>,
                  "elements are plain values");
    static_assert(kBlockElements > 0);

public:
    BlockQueue() = default;
    BlockQueue(BlockQueue&&) = default;
    BlockQueue& operator=(BlockQueue&&) = default;
    BlockQueue(const BlockQueue&) = delete;
    BlockQueue& operator=(const BlockQueue&) = delete;

    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    // Blocks held (tests).
    std::size_t blocks() const { return blocks_.size(); }

    // REQUIRES: i < size() (checked).
    T& operator[](std::size_t i) {
        KEEL_ASSERT(i < size_, "block queue index in range");
        return at(i);
    }
    const T& operator[](std::size_t i) const {
        KEEL_ASSERT(i < size_, "block queue index in range");
        const std::size_t slot = head_ + i;
        return blocks_[slot / kBlockElements].get()[slot % kBlockElements];
    }

    void push_back(const T& value) {
        // A block's memory is left untouched until its slots are used: its
        // pages are faulted in one at a time as the index grows, not all at
        // once (a burst of page faults on the writing thread, under the
        // WAL's state lock).
        if (head_ + size_ == blocks_.size() * kBlockElements)
            blocks_.emplace_back(static_cast<T*>(::operator new(sizeof(T) * kBlockElements)));
        ::new (static_cast<void*>(&at(size_))) T(value);
        ++size_;
    }

    // Removes the first n elements, freeing the blocks that empties.
    // REQUIRES: n <= size() (checked).
    void erase_front(std::size_t n) {
        KEEL_ASSERT(n <= size_, "block queue erases no more than it holds");
        if (n == size_) return clear();
        head_ += n;
        size_ -= n;
        while (head_ >= kBlockElements) {
            blocks_.pop_front();
            head_ -= kBlockElements;
        }
    }

    // Keeps the first n elements (shrinking, freeing the blocks past them),
    // or appends default-constructed ones up to n.
    void resize(std::size_t n) {
        if (n == 0) return clear();
        while (size_ < n) push_back(T{});
        size_ = n;
        const std::size_t blocks = (head_ + size_ + kBlockElements - 1) / kBlockElements;
        while (blocks_.size() > blocks) blocks_.pop_back();
    }

    void clear() {
        blocks_.clear();
        head_ = size_ = 0;
    }

private:
    T& at(std::size_t i) {
        const std::size_t slot = head_ + i;
        return blocks_[slot / kBlockElements].get()[slot % kBlockElements];
    }

    // Raw storage: slots [head_, head_ + size_) hold elements (trivially
    // destructible: nothing to destroy).
    struct Free {
        void operator()(T* block) const { ::operator delete(block); }
    };
    std::deque<std::unique_ptr<T, Free>> blocks_;
    std::size_t head_ = 0;  // the front element's slot in blocks_.front()
    std::size_t size_ = 0;
};

}  // namespace keel::wal::detail
