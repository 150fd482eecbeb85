// keel/shared_bytes.hpp — immutable bytes whose copies share one buffer.
//
// A log entry's payload travels from the proposer through the Raft core's
// in-memory log, the WAL's write queue and the apply queue.  Copying the
// bytes at each hop cost two allocations, two copies and two frees per
// entry, most of the frees on another thread than the allocation
// (docs/decisions/0004-runtime-write-path-tuning.md).  A SharedBytes copy is
// one atomic increment.
//
// Construction copies the bytes once into a single allocation that also
// holds the count (as a std::string copy would).  The bytes never change
// afterwards, so copies may be read from any thread at once.  An empty
// SharedBytes holds no allocation.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <utility>

namespace keel {

class SharedBytes {
public:
    SharedBytes() = default;
    explicit SharedBytes(std::string_view bytes) : block_(Block::make(bytes)) {}
    // Implicit from strings: SharedBytes stands where a std::string payload stood.
    SharedBytes(const std::string& bytes)  // NOLINT(google-explicit-constructor)
        : SharedBytes(std::string_view(bytes)) {}
    SharedBytes(const char* bytes)  // NOLINT(google-explicit-constructor)
        : SharedBytes(std::string_view(bytes)) {}

    SharedBytes(const SharedBytes& other) noexcept : block_(other.block_) {
        if (block_) block_->refs.fetch_add(1, std::memory_order_relaxed);
    }
    SharedBytes(SharedBytes&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
    SharedBytes& operator=(SharedBytes other) noexcept {
        std::swap(block_, other.block_);
        return *this;
    }
    ~SharedBytes() { Block::release(block_); }

    std::size_t size() const { return block_ ? block_->size : 0; }
    bool empty() const { return size() == 0; }
    const char* data() const { return block_ ? block_->bytes() : ""; }
    std::string_view view() const { return {data(), size()}; }
    operator std::string_view() const { return view(); }  // NOLINT: reads like a string
    std::string str() const { return std::string(view()); }
    char operator[](std::size_t i) const { return data()[i]; }
    const char* begin() const { return data(); }
    const char* end() const { return data() + size(); }

    friend bool operator==(const SharedBytes& a, const SharedBytes& b) {
        return a.view() == b.view();
    }
    friend bool operator==(const SharedBytes& a, std::string_view b) { return a.view() == b; }
    friend bool operator==(const SharedBytes& a, const std::string& b) { return a.view() == b; }
    friend bool operator==(const SharedBytes& a, const char* b) {
        return a.view() == std::string_view(b);
    }

private:
    // The count and the size, followed by the bytes, in one allocation.
    struct Block {
        std::atomic<std::size_t> refs{1};
        std::size_t size = 0;

        char* bytes() { return reinterpret_cast<char*>(this + 1); }

        static Block* make(std::string_view bytes) {
            if (bytes.empty()) return nullptr;
            void* memory = ::operator new(sizeof(Block) + bytes.size());
            Block* b = new (memory) Block;
            b->size = bytes.size();
            std::memcpy(b->bytes(), bytes.data(), bytes.size());
            return b;
        }
        static void release(Block* b) {
            if (b == nullptr || b->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
            b->~Block();
            ::operator delete(b);
        }
    };

    Block* block_ = nullptr;
};

}  // namespace keel
