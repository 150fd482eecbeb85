// aligned_buffer.hpp — the writer's reusable encode buffer, aligned for
// direct I/O (O_DIRECT needs the buffer address, not only the file offset,
// aligned to the device's block).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "keel/wal/file_system.hpp"

namespace keel::wal::detail {

class AlignedBuffer {
public:
    char* data() { return data_.get(); }
    std::uint64_t capacity() const { return capacity_; }

    // Makes room for at least `bytes`, keeping the first `keep` bytes (of
    // those it had: a buffer that had none has none to keep).
    // Grows at least twofold, so a batch of many records reallocates rarely.
    void reserve(std::uint64_t bytes, std::uint64_t keep) {
        if (bytes <= capacity_) return;
        std::uint64_t grown = capacity_ * 2;
        if (grown < bytes) grown = bytes;
        grown = (grown + kDirectIoAlignBytes - 1) & ~(kDirectIoAlignBytes - 1);
        void* p = std::aligned_alloc(kDirectIoAlignBytes, grown);
        if (p == nullptr) throw std::bad_alloc();  // as std::vector would
        if (keep > capacity_) keep = capacity_;
        if (keep > 0) std::memcpy(p, data_.get(), keep);
        data_.reset(static_cast<char*>(p));
        capacity_ = grown;
    }

private:
    struct Free {
        void operator()(char* p) const { std::free(p); }
    };
    std::unique_ptr<char, Free> data_;
    std::uint64_t capacity_ = 0;
};

}  // namespace keel::wal::detail
