/* CRC-32C: hardware instruction when the CPU has SSE4.2.
 *
 * The CPU is asked on the first call, not at load time: the libgcc
 * feature test behind __builtin_cpu_supports() is a constructor that runs
 * CPUID in every program linking libstrata, and CPUID traps to the
 * hypervisor on virtual machines, so it costs start-up time even in
 * programs that never checksum anything. */
#include "config.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

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

static uint32_t crc32c_first(uint32_t crc, const uint8_t *p, size_t len);

/* The implementation in use; starts as the one that picks it.  Threads
 * racing on the first call all store the same answer. */
static uint32_t (*crc32c_impl)(uint32_t, const uint8_t *, size_t) =
    crc32c_first;

static uint32_t crc32c_first(uint32_t crc, const uint8_t *p, size_t len)
{
    uint32_t (*fn)(uint32_t, const uint8_t *, size_t) = crc32c_bitwise;
#if defined(__x86_64__)
    unsigned a, b, c, d;

    if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2)) {
        fn = crc32c_sse42;
    }
#endif
    __atomic_store_n(&crc32c_impl, fn, __ATOMIC_RELAXED);
    return fn(crc, p, len);
}

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
    return __atomic_load_n(&crc32c_impl, __ATOMIC_RELAXED)(crc, buf, len);
}

uint32_t crc32c(const void *buf, size_t len)
{
    return ~crc32c_update(0xffffffffu, buf, len);
}
