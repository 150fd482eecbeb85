// CRC-32C: SSE4.2 when available, Boost.CRC otherwise.  See keel/crc32c.hpp.
#include "keel/crc32c.hpp"

#include <cstring>

#include <boost/crc.hpp>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace keel {

std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data,
                                     std::size_t size) noexcept {
    // Reflected CRC-32C with init and final XOR 0xFFFFFFFF.  Boost takes the
    // initial remainder unreflected, so a finished value `crc` resumes as
    // reflect(~crc).
    std::uint32_t init = 0;
    for (int i = 0; i < 32; ++i)
        if ((~crc >> i) & 1u) init |= 1u << (31 - i);
    boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> c(init);
    c.process_bytes(data, size);
    return c.checksum();
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crc32c_extend_hardware(std::uint32_t crc,
                                                                       const void* data,
                                                                       std::size_t size) noexcept {
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint64_t c = ~crc;
    while (size >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        size -= 8;
    }
    auto c32 = static_cast<std::uint32_t>(c);
    while (size > 0) {
        c32 = _mm_crc32_u8(c32, *p);
        ++p;
        --size;
    }
    return ~c32;
}

bool crc32c_hardware_available() noexcept {
    static const bool available = __builtin_cpu_supports("sse4.2");
    return available;
}
#else
std::uint32_t crc32c_extend_hardware(std::uint32_t crc, const void* data,
                                     std::size_t size) noexcept {
    return crc32c_extend_portable(crc, data, size);
}
bool crc32c_hardware_available() noexcept {
    return false;
}
#endif

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size) noexcept {
    static const bool hw = crc32c_hardware_available();
    return hw ? crc32c_extend_hardware(crc, data, size) : crc32c_extend_portable(crc, data, size);
}

}  // namespace keel
