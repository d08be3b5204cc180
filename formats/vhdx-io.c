/* vhdx I/O: reads, writes that allocate payload blocks (their BAT
 * entries changed through the log), flush and block status.  Runs of
 * blocks that lie back to back in the file are served as one range. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vhdx.h"

/* How a range of the disk is stored (map_range's answers). */
enum {
    MAP_ABSENT, /* not in this file: the parent's, or zero without one */
    MAP_ZERO,   /* reads as zero whatever the parent holds */
    MAP_DATA,   /* in this file, at *host */
    MAP_PARTIAL /* a partially present block: ask the sector bitmap */
};

/* The map class of BAT entry e, or -EIO for an invalid state. */
static int bat_class(const struct vhdx_state *s, uint64_t e)
{
    switch (VHDX_BAT_STATE(e)) {
    case VHDX_BAT_FULLY_PRESENT:
        return MAP_DATA;
    case VHDX_BAT_ZERO:
    case VHDX_BAT_UNMAPPED:
        return MAP_ZERO;
    case VHDX_BAT_NOT_PRESENT:
    case VHDX_BAT_UNDEFINED:
        return MAP_ABSENT;
    case VHDX_BAT_PARTIALLY_PRESENT:
        /* only differencing images have sector bitmaps */
        return s->has_parent ? MAP_PARTIAL : -EIO;
    default:
        return -EIO;
    }
}

/* One run of equal bits of the sector bitmap from `offset` (inside one
 * partially present block, at most `bytes`): MAP_DATA or MAP_ABSENT.  The
 * bitmap bytes of the whole range are read at once. */
static int coroutine_fn bitmap_run(struct blk_node *bs, uint64_t offset,
                                   uint64_t bytes, uint64_t *pnum)
{
    struct vhdx_state *s = bs->opaque;
    uint64_t block = offset >> s->block_bits;
    uint64_t chunk = block / s->chunk_ratio;
    uint64_t e = s->bat[chunk * (s->chunk_ratio + 1) + s->chunk_ratio];
    uint64_t first = (offset - chunk * s->chunk_ratio * s->block_size) /
                     s->logical_sector;
    uint64_t count = DIV_ROUND_UP(bytes, s->logical_sector);
    uint64_t from = first / 8, len = (first + count - 1) / 8 + 1 - from;
    uint8_t *map;
    uint64_t i;
    int ret, v = 0;

    if (VHDX_BAT_STATE(e) != VHDX_BAT_FULLY_PRESENT) {
        return -EIO; /* partially present without a bitmap */
    }
    map = xmalloc(len);
    ret = blk_co_pread(bs->file, VHDX_BAT_OFFSET(e) + from, len, map, 0);
    if (ret < 0) {
        free(map);
        return ret;
    }
    for (i = 0; i < count; i++) {
        uint64_t bit = first + i - from * 8;
        int b = map[bit / 8] >> (bit % 8) & 1;
        if (i == 0) {
            v = b;
        } else if (b != v) {
            break;
        }
    }
    free(map);
    *pnum = MIN(i * s->logical_sector, bytes);
    return v ? MAP_DATA : MAP_ABSENT;
}

/* How the first bytes of [offset, offset + bytes) are stored: a MAP_*
 * class (never MAP_PARTIAL) for the first *pnum bytes, which may cover
 * many blocks: blocks of one class, and for MAP_DATA lying back to back
 * in the file from *host, so one request reaches them all. */
static int coroutine_fn map_range(struct blk_node *bs, uint64_t offset,
                                  uint64_t bytes, uint64_t *pnum,
                                  uint64_t *host)
{
    struct vhdx_state *s = bs->opaque;
    uint64_t block = offset >> s->block_bits;
    uint64_t e = s->bat[vhdx_bat_index(s, block)];
    uint64_t in = offset & (s->block_size - 1);
    uint64_t len = s->block_size - in;
    int cls = bat_class(s, e);

    *host = VHDX_BAT_OFFSET(e) + in;
    if (cls == MAP_PARTIAL) {
        return bitmap_run(bs, offset, MIN(bytes, len), pnum);
    }
    while (cls >= 0 && len < bytes) {
        uint64_t e2 = s->bat[vhdx_bat_index(s, ++block)];
        if (bat_class(s, e2) != cls ||
            (cls == MAP_DATA &&
             VHDX_BAT_OFFSET(e2) != VHDX_BAT_OFFSET(e) + (len + in))) {
            break;
        }
        len += s->block_size;
    }
    *pnum = MIN(len, bytes);
    return cls;
}

int coroutine_fn vhdx_co_preadv(struct blk_node *bs, uint64_t offset,
                                uint64_t bytes, struct blk_iov *qiov,
                                unsigned flags)
{
    struct vhdx_state *s = bs->opaque;
    struct blk_iov part;
    uint64_t done = 0;
    int ret = 0;

    blk_iov_init(&part, qiov->niov);
    while (done < bytes && ret >= 0) {
        uint64_t off = offset + done, n, host;
        ret = map_range(bs, off, bytes - done, &n, &host);
        if (ret < 0) {
            break;
        }
        blk_iov_reset(&part);
        blk_iov_concat(&part, qiov, done, n);
        if (ret == MAP_DATA) {
            ret = blk_co_preadv(bs->file, host, n, &part, 0);
        } else if (ret == MAP_ABSENT && s->has_parent) {
            ret = blk_co_read_backing(bs, off, n, &part);
        } else {
            blk_iov_memset(&part, 0, 0, n);
        }
        done += n;
    }
    blk_iov_destroy(&part);
    return ret < 0 ? ret : 0;
}

/* Set BAT entry idx, on disk through the log (the whole 4 KiB sector of
 * the BAT holding it); the in-memory entry changes only on success. */
static int coroutine_fn write_bat_entry(struct blk_node *bs, uint64_t idx,
                                        uint64_t e)
{
    struct vhdx_state *s = bs->opaque;
    const uint64_t per = VHDX_LOG_SECTOR / 8;
    uint64_t first = idx / per * per, old = s->bat[idx];
    uint8_t *buf = blk_alloc_buf(bs->file, VHDX_LOG_SECTOR);
    int ret;

    s->bat[idx] = e;
    for (uint64_t i = 0; i < per; i++) {
        vhdx_st64(buf + 8 * i, s->bat[first + i]);
    }
    ret = vhdx_log_write_and_flush(bs, s->bat_offset + first * 8, buf, 1);
    if (ret < 0) {
        s->bat[idx] = old;
    }
    free(buf);
    return ret;
}

/* The first write of an open changes the write GUIDs (both headers). */
static int coroutine_fn first_write(struct blk_node *bs)
{
    struct vhdx_state *s = bs->opaque;
    int ret;

    if (s->first_write_done) {
        return 0;
    }
    vhdx_guid_generate(&s->header.file_write_guid);
    vhdx_guid_generate(&s->header.data_write_guid);
    ret = vhdx_header_write(bs);
    if (ret >= 0) {
        ret = vhdx_header_write(bs);
    }
    if (ret >= 0) {
        s->first_write_done = true;
    }
    return ret;
}

/* Is another request writing the data of new block `block`? */
static bool block_allocating(const struct vhdx_state *s, uint64_t block)
{
    for (size_t i = 0; i < s->nallocating; i++) {
        if (s->allocating[i] == block) {
            return true;
        }
    }
    return false;
}

/* Space at the end of the file for one more block. */
static int coroutine_fn reserve_block(struct blk_node *bs, uint64_t *host)
{
    struct vhdx_state *s = bs->opaque;
    int ret;

    *host = ROUND_UP(MAX(bs->file->size, s->file_end), (uint64_t)VHDX_MiB);
    ret = blk_co_truncate(bs->file, *host + s->block_size, false,
                          BLK_PREALLOC_OFF, NULL);
    if (ret >= 0) {
        s->file_end = *host + s->block_size;
    }
    return ret;
}

/* A differencing image's block that the parent provides (or that is
 * partially present) becomes fully present: its whole content as it reads
 * now, with [in, in + n) from qiov over it.  Under s->lock. */
static int coroutine_fn copy_block(struct blk_node *bs, uint64_t block,
                                   uint64_t in, uint64_t n,
                                   struct blk_iov *qiov, uint64_t qoff)
{
    struct vhdx_state *s = bs->opaque;
    uint64_t idx = vhdx_bat_index(s, block), e = s->bat[idx], host;
    struct blk_iov whole;
    uint8_t *buf;
    int ret = 0;

    if (VHDX_BAT_STATE(e) == VHDX_BAT_PARTIALLY_PRESENT) {
        host = VHDX_BAT_OFFSET(e);
    } else {
        ret = reserve_block(bs, &host);
    }
    if (ret < 0) {
        return ret;
    }
    buf = blk_alloc_buf(bs->file, s->block_size);
    blk_iov_init_buf(&whole, buf, s->block_size);
    ret = vhdx_co_preadv(bs, block << s->block_bits, s->block_size, &whole,
                         0);
    if (ret >= 0) {
        blk_iov_to_buf(qiov, qoff, buf + in, n);
        ret = blk_co_pwrite(bs->file, host, s->block_size, buf, 0);
    }
    free(buf);
    if (ret >= 0) {
        /* the parent's sectors must be on disk before the entry: a crash
         * must not turn them into zeroes */
        ret = blk_co_flush(bs->file);
    }
    if (ret >= 0) {
        ret = write_bat_entry(bs, idx, host | VHDX_BAT_FULLY_PRESENT);
    }
    return ret;
}

/* Write [in, in + n) of block `block`, which is not fully present, giving
 * it its own space.  Space that read as zeroes before is reserved under
 * the lock but written outside it, so requests allocating other blocks
 * overlap; those for the same block wait.  Returns 1 when the block turned
 * out to be present already (the caller writes it as such). */
static int coroutine_fn allocate_block(struct blk_node *bs, uint64_t block,
                                       uint64_t in, uint64_t n,
                                       struct blk_iov *qiov, uint64_t qoff)
{
    struct vhdx_state *s = bs->opaque;
    uint64_t idx = vhdx_bat_index(s, block), host;
    struct blk_iov part;
    unsigned st;
    int ret;

    co_mutex_lock(&s->lock);
    while (block_allocating(s, block)) {
        co_mutex_unlock(&s->lock);
        co_queue_wait(&s->allocated);
        co_mutex_lock(&s->lock);
    }
    st = VHDX_BAT_STATE(s->bat[idx]);
    if (st == VHDX_BAT_FULLY_PRESENT) {
        co_mutex_unlock(&s->lock);
        return 1; /* another request allocated it meanwhile */
    }
    if (st > VHDX_BAT_UNMAPPED && st != VHDX_BAT_PARTIALLY_PRESENT) {
        co_mutex_unlock(&s->lock);
        return -EIO;
    }
    if (s->has_parent && (st == VHDX_BAT_PARTIALLY_PRESENT ||
                          st == VHDX_BAT_NOT_PRESENT ||
                          st == VHDX_BAT_UNDEFINED)) {
        ret = copy_block(bs, block, in, n, qiov, qoff);
        co_mutex_unlock(&s->lock);
        return ret;
    }
    ret = reserve_block(bs, &host);
    if (ret < 0) {
        co_mutex_unlock(&s->lock);
        return ret;
    }
    if (s->nallocating == s->allocating_cap) {
        s->allocating_cap = s->allocating_cap * 2 + 4;
        s->allocating = xrealloc(s->allocating,
                                 sizeof(*s->allocating) * s->allocating_cap);
    }
    s->allocating[s->nallocating++] = block;
    co_mutex_unlock(&s->lock);

    /* new space reads as zeroes: its data may reach the disk with the log
     * entry (one flush for both) */
    blk_iov_init(&part, qiov->niov);
    blk_iov_concat(&part, qiov, qoff, n);
    ret = blk_co_pwritev(bs->file, host + in, n, &part, 0);
    blk_iov_destroy(&part);

    co_mutex_lock(&s->lock);
    if (ret >= 0) {
        ret = write_bat_entry(bs, idx, host | VHDX_BAT_FULLY_PRESENT);
    }
    for (size_t i = 0; i < s->nallocating; i++) {
        if (s->allocating[i] == block) {
            s->allocating[i] = s->allocating[--s->nallocating];
            break;
        }
    }
    co_queue_wake_all(&s->allocated);
    co_mutex_unlock(&s->lock);
    return ret;
}

int coroutine_fn vhdx_co_pwritev(struct blk_node *bs, uint64_t offset,
                                 uint64_t bytes, struct blk_iov *qiov,
                                 unsigned flags)
{
    struct vhdx_state *s = bs->opaque;
    uint64_t done = 0;
    int ret = 0;

    if (!s->first_write_done) {
        co_mutex_lock(&s->lock);
        ret = first_write(bs);
        co_mutex_unlock(&s->lock);
        if (ret < 0) {
            return ret;
        }
    }
    while (done < bytes) {
        uint64_t off = offset + done, block = off >> s->block_bits;
        uint64_t in = off & (s->block_size - 1);
        uint64_t n = MIN(bytes - done, s->block_size - in);
        uint64_t e = s->bat[vhdx_bat_index(s, block)];

        if (VHDX_BAT_STATE(e) == VHDX_BAT_FULLY_PRESENT) {
            /* every present block back to back in the file: one write */
            struct blk_iov part;
            uint64_t host;
            map_range(bs, off, bytes - done, &n, &host);
            blk_iov_init(&part, qiov->niov);
            blk_iov_concat(&part, qiov, done, n);
            ret = blk_co_pwritev(bs->file, host, n, &part, flags);
            blk_iov_destroy(&part);
        } else {
            ret = allocate_block(bs, block, in, n, qiov, done);
            if (ret == 1) {
                continue; /* present now: write it as such */
            }
        }
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

/* A flush ends the log's active sequence: every in-place write is on
 * disk, so the log GUID goes back to zero and a reader needs no replay. */
int coroutine_fn vhdx_co_flush(struct blk_node *bs)
{
    struct vhdx_state *s = bs->opaque;
    int ret;

    co_mutex_lock(&s->lock);
    ret = vhdx_log_clear(bs);
    co_mutex_unlock(&s->lock);
    return ret;
}

int coroutine_fn vhdx_co_block_status(struct blk_node *bs, uint64_t offset,
                                      uint64_t bytes, uint64_t *pnum,
                                      uint64_t *map, struct blk_node **file)
{
    uint64_t host;
    int ret = map_range(bs, offset, bytes, pnum, &host);

    switch (ret) {
    case MAP_DATA:
        *map = host;
        *file = bs->file;
        return BLK_STATUS_RECURSE | BLK_STATUS_OFFSET_VALID;
    case MAP_ZERO:
        return BLK_STATUS_ZERO;
    case MAP_ABSENT:
        return 0; /* the parent's, or zero when there is none */
    default:
        return ret;
    }
}
