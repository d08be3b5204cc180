/* CRC-32C: hardware instruction when the CPU has SSE4.2. */
#include "config.h"

#include <string.h>

#include "crc32c.h"

#define CRC32C_POLY_REVERSED 0x82f63b78u

static uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (CRC32C_POLY_REVERSED & -(crc & 1));
        }
    }
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;

    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
    }
    crc = (uint32_t)c;
    for (; len; p++, len--) {
        crc = __builtin_ia32_crc32qi(crc, *p);
    }
    return crc;
}
#endif

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) {
        return crc32c_sse42(crc, buf, len);
    }
#endif
    return crc32c_bitwise(crc, buf, len);
}

uint32_t crc32c(const void *buf, size_t len)
{
    return ~crc32c_update(0xffffffffu, buf, len);
}
