// runtime/little_endian.hpp — fixed-width little-endian integers in byte
// strings, as keel's snapshot files and backup archives store them
// (docs/wire-format.md).  Byte by byte, so the host's order and alignment
// never matter.
#pragma once

#include <cstdint>
#include <string>

namespace keel::runtime::little_endian {

inline void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
// REQUIRES: p points at 4 (get_u32) or 8 (get_u64) readable bytes.
inline std::uint32_t get_u32(const char* p) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}
inline std::uint64_t get_u64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}

}  // namespace keel::runtime::little_endian
