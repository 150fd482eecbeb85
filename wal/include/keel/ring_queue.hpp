// keel/ring_queue.hpp — a double-ended queue in one block of memory that
// allocates nothing until its first push, nor after clear().
//
// Why not std::deque: libstdc++'s deque allocates its map and a first
// 512-byte node when it is constructed, even if it never holds anything,
// and a Raft group holds a dozen queues that are empty most of their
// life (the figures: docs/groups.md, "Resident memory per idle
// replica").  A RingQueue costs its three words without a block; with
// one, a power-of-two block that doubles when full and halves when a
// quarter full, never below kMinCapacity elements (so a queue that goes
// between empty and a few elements by push and pop never reallocates).
// Its block is thus at most four times its size, or kMinCapacity.
//
// Unlike std::deque, growing or shrinking moves the elements: a push,
// a pop or an erase invalidates every reference and iterator into the
// queue.  Not thread-safe (like the standard containers).  T must be
// nothrow move-constructible.
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "keel/assert.hpp"

namespace keel {

template <typename T>
class RingQueue {
    static_assert(std::is_nothrow_move_constructible_v<T>,
                  "elements are moved when the block changes");

    template <bool Const>
    class Iter;

public:
    using value_type = T;
    using size_type = std::size_t;
    using reference = T&;
    using const_reference = const T&;
    using iterator = Iter<false>;
    using const_iterator = Iter<true>;

    // The smallest block: the first push allocates it, and a queue never
    // shrinks below it.
    static constexpr std::size_t kMinCapacity = 4;

    RingQueue() = default;
    RingQueue(const RingQueue& other) { copy_from(other); }
    RingQueue(RingQueue&& other) noexcept { steal(other); }
    RingQueue& operator=(const RingQueue& other) {
        if (this != &other) {
            release();
            copy_from(other);
        }
        return *this;
    }
    RingQueue& operator=(RingQueue&& other) noexcept {
        if (this != &other) {
            release();
            steal(other);
        }
        return *this;
    }
    ~RingQueue() { release(); }

    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }
    // Elements the current block holds (0 before the first push).
    std::size_t capacity() const { return capacity_; }

    // REQUIRES: i < size() (checked).
    T& operator[](std::size_t i) {
        KEEL_ASSERT(i < size_, "ring queue index in range");
        return slot(i);
    }
    const T& operator[](std::size_t i) const {
        KEEL_ASSERT(i < size_, "ring queue index in range");
        return slot(i);
    }
    // REQUIRES: !empty() (checked).
    T& front() { return (*this)[0]; }
    const T& front() const { return (*this)[0]; }
    T& back() { return (*this)[size_ - 1]; }
    const T& back() const { return (*this)[size_ - 1]; }

    void push_back(const T& value) { emplace_back(value); }
    void push_back(T&& value) { emplace_back(std::move(value)); }
    template <typename... Args>
    T& emplace_back(Args&&... args) {
        if (size_ == capacity_) {
            // Constructed first: `args` may refer to an element of this queue.
            T value(std::forward<Args>(args)...);
            reallocate(capacity_ == 0 ? kMinCapacity : capacity_ * 2);
            return *::new (static_cast<void*>(&slot(size_++))) T(std::move(value));
        }
        return *::new (static_cast<void*>(&slot(size_++))) T(std::forward<Args>(args)...);
    }

    // REQUIRES: !empty() (checked).
    void pop_front() { erase_front(1); }
    void pop_back() { truncate(size_ - 1); }
    // Removes the first n elements.  REQUIRES: n <= size() (checked).
    void erase_front(std::size_t n) {
        KEEL_ASSERT(n <= size_, "ring queue erases no more than it holds");
        for (std::size_t i = 0; i < n; ++i) std::destroy_at(&slot(i));
        head_ = capacity_ == 0 ? 0 : (head_ + n) & (capacity_ - 1);
        size_ -= n;
        maybe_shrink();
    }
    // The same, keeping a block of at least `keep` elements (or of size(),
    // if more): for a queue emptied and refilled to about the same size over
    // and over (a write path's batch after batch), which erase_front would
    // otherwise move to ever smaller blocks and back up every time, each a
    // heap request (and glibc consolidates its fast bins before every
    // request of 1 KiB or more: docs/decisions/0037-single-node-per-batch-costs.md).
    // The owner bounds `keep`, and so the block an idle queue keeps.
    void erase_front_keeping(std::size_t n, std::size_t keep) {
        KEEL_ASSERT(n <= size_, "ring queue erases no more than it holds");
        for (std::size_t i = 0; i < n; ++i) std::destroy_at(&slot(i));
        head_ = capacity_ == 0 ? 0 : (head_ + n) & (capacity_ - 1);
        size_ -= n;
        std::size_t capacity = capacity_;
        while (capacity > kMinCapacity && size_ <= capacity / 4 && capacity / 2 >= keep)
            capacity /= 2;
        if (capacity != capacity_) reallocate(capacity);
    }
    // Keeps the first n elements.  REQUIRES: n <= size() (checked).
    void truncate(std::size_t n) {
        KEEL_ASSERT(n <= size_, "ring queue truncates to no more than it holds");
        for (std::size_t i = n; i < size_; ++i) std::destroy_at(&slot(i));
        size_ = n;
        maybe_shrink();
    }
    // Removes every element and frees the block: a queue emptied at once
    // (a batch handed over, a quiescent leader's heartbeats) costs nothing
    // until used again, where popping down to empty keeps the smallest block.
    void clear() { release(); }

    // Exchanges the contents and blocks; moves no element.
    void swap(RingQueue& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(capacity_, other.capacity_);
        std::swap(head_, other.head_);
        std::swap(size_, other.size_);
    }
    friend void swap(RingQueue& a, RingQueue& b) noexcept { a.swap(b); }

    iterator begin() { return iterator(this, 0); }
    iterator end() { return iterator(this, size_); }
    const_iterator begin() const { return const_iterator(this, 0); }
    const_iterator end() const { return const_iterator(this, size_); }

private:
    // The i-th element from the front; the block's size is a power of two.
    T& slot(std::size_t i) { return data_[(head_ + i) & (capacity_ - 1)]; }
    const T& slot(std::size_t i) const { return data_[(head_ + i) & (capacity_ - 1)]; }

    // Halves the block (as often as that holds) while at most a quarter of
    // it is used: growth happens when full, so a queue must lose three
    // quarters of a block before it moves again.
    void maybe_shrink() {
        std::size_t capacity = capacity_;
        while (capacity > kMinCapacity && size_ <= capacity / 4) capacity /= 2;
        if (capacity != capacity_) reallocate(capacity);
    }

    // Moves the elements, front first, to a new block of `capacity`
    // elements (a power of two, at least size()).
    void reallocate(std::size_t capacity) {
        KEEL_ASSERT(capacity >= size_ && (capacity & (capacity - 1)) == 0,
                    "ring queue block is a power of two that holds every element");
        KEEL_ASSERT(capacity <= std::allocator_traits<std::allocator<T>>::max_size(alloc_),
                    "ring queue block fits in memory");
        T* fresh = alloc_.allocate(capacity);
        for (std::size_t i = 0; i < size_; ++i) {
            ::new (static_cast<void*>(fresh + i)) T(std::move(slot(i)));
            std::destroy_at(&slot(i));
        }
        if (data_ != nullptr) alloc_.deallocate(data_, capacity_);
        data_ = fresh;
        capacity_ = capacity;
        head_ = 0;
    }

    void release() {
        for (std::size_t i = 0; i < size_; ++i) std::destroy_at(&slot(i));
        if (data_ != nullptr) alloc_.deallocate(data_, capacity_);
        data_ = nullptr;
        capacity_ = head_ = size_ = 0;
    }
    void copy_from(const RingQueue& other) {
        for (const T& value : other) push_back(value);
    }
    void steal(RingQueue& other) noexcept {
        data_ = std::exchange(other.data_, nullptr);
        capacity_ = std::exchange(other.capacity_, 0);
        head_ = std::exchange(other.head_, 0);
        size_ = std::exchange(other.size_, 0);
    }

    [[no_unique_address]] std::allocator<T> alloc_;
    T* data_ = nullptr;
    std::size_t capacity_ = 0;  // 0 or a power of two
    std::size_t head_ = 0;      // the front's slot in the block
    std::size_t size_ = 0;
};

// A random-access iterator: the queue and a position from its front.
template <typename T>
template <bool Const>
class RingQueue<T>::Iter {
    using Queue = std::conditional_t<Const, const RingQueue, RingQueue>;

public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = std::conditional_t<Const, const T*, T*>;
    using reference = std::conditional_t<Const, const T&, T&>;

    Iter() = default;
    Iter(Queue* queue, std::size_t pos) : queue_(queue), pos_(pos) {}
    // An iterator converts to a const_iterator.
    operator Iter<true>() const { return Iter<true>(queue_, pos_); }

    reference operator*() const { return (*queue_)[pos_]; }
    pointer operator->() const { return &(*queue_)[pos_]; }
    reference operator[](difference_type n) const { return *(*this + n); }

    Iter& operator++() { return *this += 1; }
    Iter operator++(int) {
        Iter old = *this;
        ++*this;
        return old;
    }
    Iter& operator--() { return *this -= 1; }
    Iter operator--(int) {
        Iter old = *this;
        --*this;
        return old;
    }
    Iter& operator+=(difference_type n) {
        pos_ = static_cast<std::size_t>(static_cast<difference_type>(pos_) + n);
        return *this;
    }
    Iter& operator-=(difference_type n) { return *this += -n; }
    friend Iter operator+(Iter it, difference_type n) { return it += n; }
    friend Iter operator+(difference_type n, Iter it) { return it += n; }
    friend Iter operator-(Iter it, difference_type n) { return it -= n; }
    friend difference_type operator-(const Iter& a, const Iter& b) {
        return static_cast<difference_type>(a.pos_) - static_cast<difference_type>(b.pos_);
    }
    friend bool operator==(const Iter& a, const Iter& b) { return a.pos_ == b.pos_; }
    friend auto operator<=>(const Iter& a, const Iter& b) { return a.pos_ <=> b.pos_; }

private:
    Queue* queue_ = nullptr;
    std::size_t pos_ = 0;
};

}  // namespace keel
