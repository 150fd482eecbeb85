// keel/crc32c.hpp — CRC-32C (Castagnoli): the checksum of every WAL record
// and of every network frame (a base utility shared by wal/ and transport/).
//
// crc32c_extend(crc, data) continues a finished CRC value over more bytes, so
// crc32c_extend(crc32c(a), b) == crc32c(a ++ b).  The WAL chains records by
// passing the previous record's CRC as `crc`.  Uses the SSE4.2 instruction
// when the CPU has it (checked once at run time), Boost.CRC otherwise; both
// give identical results (tests/wal/crc32c_test.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace keel {

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size) noexcept;
inline std::uint32_t crc32c(const void* data, std::size_t size) noexcept {
    return crc32c_extend(0, data, size);
}

// The two implementations, exposed for tests and the benchmark.
std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data,
                                     std::size_t size) noexcept;
// REQUIRES: crc32c_hardware_available().
std::uint32_t crc32c_extend_hardware(std::uint32_t crc, const void* data,
                                     std::size_t size) noexcept;
bool crc32c_hardware_available() noexcept;

}  // namespace keel
