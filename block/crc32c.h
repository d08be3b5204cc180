/* CRC-32C (Castagnoli), the checksum of VHDX headers, region tables and
 * log entries.  None of the libraries we build on exposes it, so it is
 * computed with the SSE4.2 crc32 instruction (a bit-at-a-time loop on
 * CPUs without it). */
#ifndef BLOCK_CRC32C_H
#define BLOCK_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: pass 0xffffffff first, and invert the final value
 * (crc32c() does both). */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c(const void *buf, size_t len);

#endif
