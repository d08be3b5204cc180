/* strata-img convert: zero detection inside data chunks, as qemu-img's
 * is_allocated_sectors() and is_allocated_sectors_min(), which decide
 * where -S leaves holes in the output. */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>

#include "img-convert.h"
#include "util.h"

/* Most data sectors show a non-zero first byte: deciding that inline
 * touches one cache line per sector instead of calling out for three. */
static inline bool sector_is_zero(const uint8_t *sector)
{
    return sector[0] == 0 && buffer_is_zero(sector, CONVERT_SECTOR);
}

/* qemu-img's is_allocated_sectors(): is the first sector of buf non-zero,
 * and how many sectors (*pnum) share that state.  The end of the run is
 * aligned to `alignment` sectors so writes avoid read-modify-write. */
static bool is_allocated_sectors(const uint8_t *buf, int64_t n,
                                 int64_t *pnum, int64_t sector_num,
                                 int64_t alignment)
{
    bool is_zero;
    int64_t i, tail;

    if (n <= 0) {
        *pnum = 0;
        return false;
    }
    is_zero = sector_is_zero(buf);
    for (i = 1; i < n; i++) {
        buf += CONVERT_SECTOR;
        if (is_zero != sector_is_zero(buf)) {
            break;
        }
    }

    tail = (sector_num + i) & (alignment - 1);
    if (tail) {
        if (is_zero && i <= tail) {
            /* the next sector is data and rewrites this tail anyway */
            is_zero = false;
        }
        if (!is_zero) {
            i += alignment - tail;
            i = MIN(i, n);
        } else {
            i -= tail;
        }
    }
    *pnum = i;
    return !is_zero;
}

/* qemu-img's is_allocated_sectors_min(): like the above, but when the
 * buffer starts with data, zero runs shorter than `min` sectors are
 * counted as data so writes are not broken up for small gaps. */
bool is_allocated_sectors_min(const uint8_t *buf, int64_t n, int64_t *pnum,
                              int64_t min, int64_t sector_num,
                              int64_t alignment)
{
    int64_t num_checked, num_used;
    bool ret;

    if (n < min) {
        min = n;
    }
    ret = is_allocated_sectors(buf, n, pnum, sector_num, alignment);
    if (!ret) {
        return ret;
    }
    num_used = *pnum;
    buf += CONVERT_SECTOR * *pnum;
    n -= *pnum;
    sector_num += *pnum;
    num_checked = num_used;

    while (n > 0) {
        ret = is_allocated_sectors(buf, n, pnum, sector_num, alignment);
        buf += CONVERT_SECTOR * *pnum;
        n -= *pnum;
        sector_num += *pnum;
        num_checked += *pnum;
        if (ret) {
            num_used = num_checked;
        } else if (*pnum >= min) {
            break;
        }
    }
    *pnum = num_used;
    return true;
}
