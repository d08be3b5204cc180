/* The request path: every read, write, zero, discard, flush and status
 * query passes through here once per node.  The checks and fix-ups that
 * drivers must not have to repeat live here: bounds and read-only checks,
 * read-modify-write for requests not aligned to the driver's granularity
 * (serialised against overlapping writes), bounce buffers for memory the
 * driver cannot use, splitting to max_transfer, FUA and write-through
 * emulation, and the in-flight count used by drain. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "loop.h"
#include "util.h"

/* Zero buffer size used when write_zeroes has to write real zeroes. */
#define ZERO_CHUNK (1024 * 1024)

static void inc_in_flight(struct blk_node *bs)
{
    bs->in_flight++;
}

static void dec_in_flight(struct blk_node *bs)
{
    if (--bs->in_flight == 0) {
        co_queue_wake_all(&bs->drain_waiters);
    }
}

/* Protocol and filter nodes may be written past their end (a format
 * driver grows its file); formats are bounded by their virtual size. */
static bool is_growable(const struct blk_node *bs)
{
    return bs->drv->kind != BLK_KIND_FORMAT;
}

static int check_request(struct blk_node *bs, uint64_t offset,
                         uint64_t bytes, bool write)
{
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (write && bs->read_only) {
        return -EACCES;
    }
    if (offset > INT64_MAX || bytes > INT64_MAX - offset) {
        return -EIO;
    }
    if (!is_growable(bs) &&
        (offset > bs->size || bytes > bs->size - offset)) {
        return -EIO;
    }
    return 0;
}

/* ---- tracked requests ---- */

static bool overlaps(const struct blk_tracked_req *a,
                     const struct blk_tracked_req *b)
{
    return a->start < b->end && b->start < a->end;
}

/* Register a write and wait for every earlier overlapping request that
 * must not run alongside it.  Waiting only on earlier requests keeps the
 * wait graph acyclic. */
static void coroutine_fn track_begin(struct blk_node *bs,
                                     struct blk_tracked_req *req,
                                     uint64_t offset, uint64_t bytes,
                                     bool serialising)
{
    uint32_t align = bs->limits.request_alignment;

    req->start = ROUND_DOWN(offset, align);
    req->end = ROUND_UP(offset + bytes, align);
    req->serialising = serialising;
    req->co = coroutine_self();
    co_queue_init(&req->waiters);
    req->next = NULL;
    req->prev = NULL;
    /* append at the tail: the list is in arrival order */
    struct blk_tracked_req **pp = &bs->tracked, *last = NULL;
    while (*pp) {
        last = *pp;
        pp = &(*pp)->next;
    }
    req->prev = last;
    *pp = req;

restart:
    for (struct blk_tracked_req *r = bs->tracked; r && r != req; r = r->next) {
        if ((r->serialising || req->serialising) && overlaps(r, req)) {
            co_queue_wait(&r->waiters);
            goto restart;
        }
    }
}

static void track_end(struct blk_node *bs, struct blk_tracked_req *req)
{
    if (req->prev) {
        req->prev->next = req->next;
    } else {
        bs->tracked = req->next;
    }
    if (req->next) {
        req->next->prev = req->prev;
    }
    co_queue_wake_all(&req->waiters);
}

/* ---- alignment helpers ---- */

static bool iov_usable(const struct blk_node *bs, const struct blk_iov *qiov)
{
    uint32_t mem = bs->limits.buf_alignment;
    uint32_t len = bs->limits.request_alignment;

    if (mem <= 1 && len <= 1) {
        return true;
    }
    for (int i = 0; i < qiov->niov; i++) {
        if ((uintptr_t)qiov->iov[i].iov_base % mem ||
            qiov->iov[i].iov_len % len) {
            return false;
        }
    }
    return true;
}

static uint64_t max_chunk(const struct blk_node *bs, uint64_t limit)
{
    uint32_t align = bs->limits.request_alignment;

    if (limit == 0) {
        return UINT64_MAX;
    }
    limit = ROUND_DOWN(limit, align);
    return limit ? limit : align;
}

/* Call the driver's preadv/pwritev on aligned ranges, split to
 * max_transfer, bouncing memory the driver cannot use. */
static int coroutine_fn driver_rw(struct blk_node *bs, bool write,
                                  uint64_t offset, uint64_t bytes,
                                  struct blk_iov *qiov, unsigned flags)
{
    const struct blk_driver *drv = bs->drv;
    uint64_t chunk = max_chunk(bs, bs->limits.max_transfer);
    struct blk_iov bounce_q, *orig = qiov;
    void *bounce = NULL;
    int ret = 0;

    if (!(write ? drv->pwritev : drv->preadv)) {
        return -ENOTSUP;
    }
    if (!iov_usable(bs, qiov)) {
        bounce = blk_alloc_buf(bs, bytes);
        if (write) {
            blk_iov_to_buf(qiov, 0, bounce, bytes);
        }
        blk_iov_init_buf(&bounce_q, bounce, bytes);
        qiov = &bounce_q;
    }

    if (bytes <= chunk) {
        ret = write ? drv->pwritev(bs, offset, bytes, qiov, flags)
                    : drv->preadv(bs, offset, bytes, qiov, flags);
    } else {
        struct blk_iov part;
        blk_iov_init(&part, qiov->niov);
        for (uint64_t done = 0; done < bytes && ret >= 0; done += chunk) {
            uint64_t n = MIN(chunk, bytes - done);
            blk_iov_reset(&part);
            blk_iov_concat(&part, qiov, done, n);
            ret = write ? drv->pwritev(bs, offset + done, n, &part, flags)
                        : drv->preadv(bs, offset + done, n, &part, flags);
        }
        blk_iov_destroy(&part);
    }

    if (bounce) {
        if (!write && ret >= 0) {
            blk_iov_from_buf(orig, 0, bounce, bytes);
        }
        free(bounce);
    }
    return ret < 0 ? ret : 0;
}

/* ---- read ---- */

static int coroutine_fn do_preadv(struct blk_node *bs, uint64_t offset,
                                  uint64_t bytes, struct blk_iov *qiov,
                                  unsigned flags)
{
    uint32_t align = bs->limits.request_alignment;
    uint64_t start = ROUND_DOWN(offset, align);
    uint64_t end = ROUND_UP(offset + bytes, align);

    if (start == offset && end == offset + bytes) {
        return driver_rw(bs, false, offset, bytes, qiov, flags);
    }

    /* unaligned: read the covering aligned range and copy the middle out */
    void *buf = blk_alloc_buf(bs, end - start);
    struct blk_iov q;
    blk_iov_init_buf(&q, buf, end - start);
    int ret = driver_rw(bs, false, start, end - start, &q, flags);
    if (ret >= 0) {
        blk_iov_from_buf(qiov, 0, (char *)buf + (offset - start), bytes);
    }
    free(buf);
    return ret;
}

int coroutine_fn blk_co_preadv(struct blk_node *bs, uint64_t offset,
                               uint64_t bytes, struct blk_iov *qiov,
                               unsigned flags)
{
    int ret = check_request(bs, offset, bytes, false);

    if (ret < 0 || bytes == 0) {
        return ret;
    }
    inc_in_flight(bs);
    ret = do_preadv(bs, offset, bytes, qiov, flags);
    dec_in_flight(bs);
    return ret;
}

/* ---- write ---- */

/* Writes with FUA where the driver cannot do it get a flush afterwards. */
static int coroutine_fn write_aligned(struct blk_node *bs, uint64_t offset,
                                      uint64_t bytes, struct blk_iov *qiov,
                                      unsigned flags)
{
    unsigned supported = bs->drv->supported_write_flags;
    int ret = driver_rw(bs, true, offset, bytes, qiov, flags & supported);

    if (ret >= 0 && (flags & BLK_REQ_FUA) && !(supported & BLK_REQ_FUA)) {
        ret = blk_co_flush(bs);
    }
    return ret;
}

/* Read-modify-write of the partial blocks at either end of a write. */
static int coroutine_fn write_rmw(struct blk_node *bs, uint64_t offset,
                                  uint64_t bytes, struct blk_iov *qiov,
                                  unsigned flags)
{
    uint32_t align = bs->limits.request_alignment;
    uint64_t start = ROUND_DOWN(offset, align);
    uint64_t end = ROUND_UP(offset + bytes, align);
    uint8_t *buf = blk_alloc_buf(bs, end - start);
    struct blk_iov q;
    int ret = 0;

    if (start != offset) {
        blk_iov_init_buf(&q, buf, align);
        ret = driver_rw(bs, false, start, align, &q, 0);
    }
    if (ret >= 0 && end != offset + bytes &&
        !(start != offset && end - align == start)) {
        blk_iov_init_buf(&q, buf + (end - align - start), align);
        ret = driver_rw(bs, false, end - align, align, &q, 0);
    }
    if (ret >= 0) {
        if (qiov) {
            blk_iov_to_buf(qiov, 0, buf + (offset - start), bytes);
        } else {
            memset(buf + (offset - start), 0, bytes);
        }
        blk_iov_init_buf(&q, buf, end - start);
        ret = write_aligned(bs, start, end - start, &q, flags);
    }
    free(buf);
    return ret;
}

static void note_growth(struct blk_node *bs, uint64_t end)
{
    if (is_growable(bs) && end > bs->size) {
        bs->size = end;
    }
}

int coroutine_fn blk_co_pwritev(struct blk_node *bs, uint64_t offset,
                                uint64_t bytes, struct blk_iov *qiov,
                                unsigned flags)
{
    uint32_t align;
    struct blk_tracked_req req;
    bool unaligned;
    int ret = check_request(bs, offset, bytes, true);

    if (ret < 0 || bytes == 0) {
        return ret;
    }
    if (bs->flags & BLK_O_WRITETHROUGH) {
        flags |= BLK_REQ_FUA;
    }
    inc_in_flight(bs);
    align = bs->limits.request_alignment;
    unaligned = offset % align || bytes % align;
    if (align > 1) {
        track_begin(bs, &req, offset, bytes, unaligned);
    }
    if (unaligned) {
        ret = write_rmw(bs, offset, bytes, qiov, flags);
    } else {
        ret = write_aligned(bs, offset, bytes, qiov, flags);
    }
    if (align > 1) {
        track_end(bs, &req);
    }
    if (ret >= 0) {
        note_growth(bs, offset + bytes);
    }
    dec_in_flight(bs);
    return ret;
}

/* Compressed writes go to the driver whole: it compresses one cluster at
 * a time, so the core neither splits nor read-modify-writes them. */
int coroutine_fn blk_co_pwritev_compressed(struct blk_node *bs,
                                           uint64_t offset, uint64_t bytes,
                                           struct blk_iov *qiov)
{
    struct blk_tracked_req req;
    int ret = check_request(bs, offset, bytes, true);

    if (ret < 0 || bytes == 0) {
        return ret;
    }
    if (!bs->drv->pwritev_compressed) {
        return -ENOTSUP;
    }
    inc_in_flight(bs);
    track_begin(bs, &req, offset, bytes, true);
    ret = bs->drv->pwritev_compressed(bs, offset, bytes, qiov);
    track_end(bs, &req);
    dec_in_flight(bs);
    return ret;
}

/* Offloaded copies are all-or-nothing for the caller, which falls back to
 * reading and writing on -ENOTSUP; only aligned ranges are offered so no
 * read-modify-write is ever needed on the destination. */
int coroutine_fn blk_co_copy_range(struct blk_node *src, uint64_t src_off,
                                   struct blk_node *dst, uint64_t dst_off,
                                   uint64_t bytes)
{
    struct blk_tracked_req req;
    uint32_t align = MAX(src->limits.request_alignment,
                         dst->limits.request_alignment);
    int ret = check_request(src, src_off, bytes, false);

    if (ret == 0) {
        ret = check_request(dst, dst_off, bytes, true);
    }
    if (ret < 0 || bytes == 0) {
        return ret;
    }
    if (!src->drv->copy_range_from ||
        src_off % align || dst_off % align || bytes % align) {
        return -ENOTSUP;
    }
    inc_in_flight(src);
    inc_in_flight(dst);
    track_begin(dst, &req, dst_off, bytes, false);
    ret = src->drv->copy_range_from(src, src_off, dst, dst_off, bytes);
    track_end(dst, &req);
    if (ret >= 0) {
        note_growth(dst, dst_off + bytes);
        if (dst->flags & BLK_O_WRITETHROUGH) {
            ret = blk_co_flush(dst);
        }
    }
    dec_in_flight(dst);
    dec_in_flight(src);
    return ret;
}

/* ---- write zeroes ---- */

/* Write real zeroes over an aligned range. */
static int coroutine_fn zero_by_writing(struct blk_node *bs, uint64_t offset,
                                        uint64_t bytes, unsigned flags)
{
    size_t len = MIN(bytes, (uint64_t)ZERO_CHUNK);
    void *buf = blk_alloc_buf(bs, len);
    int ret = 0;

    memset(buf, 0, len);
    for (uint64_t done = 0; done < bytes && ret >= 0; done += len) {
        uint64_t n = MIN((uint64_t)len, bytes - done);
        struct blk_iov q;
        blk_iov_init_buf(&q, buf, n);
        ret = write_aligned(bs, offset + done, n, &q, flags & BLK_REQ_FUA);
    }
    free(buf);
    return ret;
}

static int coroutine_fn zero_aligned(struct blk_node *bs, uint64_t offset,
                                     uint64_t bytes, unsigned flags)
{
    const struct blk_driver *drv = bs->drv;
    uint64_t chunk = max_chunk(bs, bs->limits.max_pwrite_zeroes);
    unsigned supported = drv->supported_zero_flags;
    int ret = -ENOTSUP;

    for (uint64_t done = 0; done < bytes;) {
        uint64_t n = MIN(chunk, bytes - done);
        ret = -ENOTSUP;
        if (drv->pwrite_zeroes) {
            ret = drv->pwrite_zeroes(bs, offset + done, n, flags & supported);
        }
        if (ret == -ENOTSUP && !(flags & BLK_REQ_NO_FALLBACK)) {
            ret = zero_by_writing(bs, offset + done, n, flags);
        } else if (ret >= 0 && (flags & BLK_REQ_FUA) &&
                   !(supported & BLK_REQ_FUA)) {
            ret = blk_co_flush(bs);
        }
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

int coroutine_fn blk_co_pwrite_zeroes(struct blk_node *bs, uint64_t offset,
                                      uint64_t bytes, unsigned flags)
{
    uint32_t align;
    uint64_t start, end;
    struct blk_tracked_req req;
    int ret = check_request(bs, offset, bytes, true);

    if (ret < 0 || bytes == 0) {
        return ret;
    }
    if (bs->flags & BLK_O_WRITETHROUGH) {
        flags |= BLK_REQ_FUA;
    }
    align = bs->limits.request_alignment;
    start = ROUND_UP(offset, align);
    end = ROUND_DOWN(offset + bytes, align);
    if ((flags & BLK_REQ_NO_FALLBACK) && (start != offset ||
                                          end != offset + bytes)) {
        return -ENOTSUP;
    }

    inc_in_flight(bs);
    if (align > 1) {
        track_begin(bs, &req, offset, bytes, start != offset ||
                                             end != offset + bytes);
    }
    if (start >= end) {
        /* entirely inside one block */
        ret = write_rmw(bs, offset, bytes, NULL, flags);
    } else {
        ret = 0;
        if (start != offset) {
            ret = write_rmw(bs, offset, start - offset, NULL, flags);
        }
        if (ret >= 0) {
            ret = zero_aligned(bs, start, end - start, flags);
        }
        if (ret >= 0 && end != offset + bytes) {
            ret = write_rmw(bs, end, offset + bytes - end, NULL, flags);
        }
    }
    if (align > 1) {
        track_end(bs, &req);
    }
    if (ret >= 0) {
        note_growth(bs, offset + bytes);
    }
    dec_in_flight(bs);
    return ret;
}

/* ---- discard ---- */

int coroutine_fn blk_co_discard(struct blk_node *bs, uint64_t offset,
                                uint64_t bytes)
{
    uint32_t align;
    uint64_t start, end, chunk;
    struct blk_tracked_req req;
    int ret = check_request(bs, offset, bytes, true);

    if (ret < 0 || bytes == 0 || !bs->drv->discard) {
        return ret;
    }
    /* discard is advisory: only whole granules are passed down */
    align = MAX(bs->limits.request_alignment, bs->limits.discard_alignment);
    start = ROUND_UP(offset, align);
    end = ROUND_DOWN(offset + bytes, align);
    if (start >= end) {
        return 0;
    }
    chunk = max_chunk(bs, bs->limits.max_discard);
    inc_in_flight(bs);
    if (bs->limits.request_alignment > 1) {
        track_begin(bs, &req, start, end - start, false);
    }
    for (uint64_t pos = start; pos < end && ret >= 0;) {
        uint64_t n = MIN(chunk, end - pos);
        ret = bs->drv->discard(bs, pos, n);
        pos += n;
    }
    if (bs->limits.request_alignment > 1) {
        track_end(bs, &req);
    }
    dec_in_flight(bs);
    return ret;
}

/* ---- flush ---- */

/* A format's flush writes its cached state to its file; a protocol's
 * reaches the disk, which cache=unsafe skips.  Children follow. */
int coroutine_fn blk_co_flush(struct blk_node *bs)
{
    int ret = 0;

    if (!bs || !bs->drv || bs->read_only) {
        return 0;
    }
    inc_in_flight(bs);
    if (bs->drv->flush &&
        !(bs->drv->kind == BLK_KIND_PROTOCOL && (bs->flags & BLK_O_NO_FLUSH))) {
        ret = bs->drv->flush(bs);
    }
    if (ret >= 0 && bs->file) {
        ret = blk_co_flush(bs->file);
    }
    dec_in_flight(bs);
    return ret;
}

/* ---- block status ---- */

int coroutine_fn blk_co_block_status(struct blk_node *bs, uint64_t offset,
                                     uint64_t bytes, uint64_t *pnum,
                                     uint64_t *map, struct blk_node **file)
{
    const struct blk_driver *drv = bs->drv;
    struct blk_node *lfile = NULL;
    uint64_t lmap = 0, n = 0;
    int ret;

    *pnum = 0;
    if (!drv) {
        return -ENOMEDIUM;
    }
    if (offset >= bs->size || bytes == 0) {
        return 0;
    }
    bytes = MIN(bytes, bs->size - offset);
    inc_in_flight(bs);

    if (drv->block_status) {
        ret = drv->block_status(bs, offset, bytes, &n, &lmap, &lfile);
    } else if (drv->kind == BLK_KIND_PROTOCOL) {
        ret = BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID;
        n = bytes;
        lmap = offset;
        lfile = bs;
    } else {
        ret = BLK_STATUS_RECURSE | BLK_STATUS_OFFSET_VALID;
        n = bytes;
        lmap = offset;
        lfile = bs->file;
    }
    if (ret < 0) {
        goto out;
    }
    if (n == 0) {
        ret = -EIO; /* a driver must make progress */
        goto out;
    }
    n = MIN(n, bytes);

    if ((ret & BLK_STATUS_RECURSE) && lfile) {
        uint64_t n2, map2 = 0;
        struct blk_node *file2 = NULL;
        int ret2 = blk_co_block_status(lfile, lmap, n, &n2, &map2, &file2);
        if (ret2 < 0) {
            ret = ret2;
            goto out;
        }
        if (n2 == 0) {
            /* past the end of the file: reads as zero */
            ret2 = BLK_STATUS_ZERO;
            n2 = n;
        }
        n = MIN(n, n2);
        if (drv->kind == BLK_KIND_FILTER) {
            ret = ret2;
        } else {
            ret = (ret & ~(BLK_STATUS_RECURSE | BLK_STATUS_DATA |
                           BLK_STATUS_ZERO)) |
                  (ret2 & (BLK_STATUS_DATA | BLK_STATUS_ZERO));
        }
        if (ret2 & BLK_STATUS_OFFSET_VALID) {
            ret |= BLK_STATUS_OFFSET_VALID;
            lmap = map2;
            lfile = file2;
        }
    }
    ret &= ~BLK_STATUS_RECURSE;

    /* As QEMU: data or zero means this layer decides; an unallocated range
     * of a format with nothing (or nothing that long) below reads as zero. */
    if (ret & (BLK_STATUS_DATA | BLK_STATUS_ZERO)) {
        ret |= BLK_STATUS_ALLOCATED;
    } else if (drv->kind == BLK_KIND_FORMAT) {
        if (!bs->backing_file && !bs->backing) {
            ret |= BLK_STATUS_ZERO;
        } else if (bs->backing && offset >= bs->backing->size) {
            ret |= BLK_STATUS_ZERO;
        }
    }
    *pnum = n;
    if (map) {
        *map = (ret & BLK_STATUS_OFFSET_VALID) ? lmap : 0;
    }
    if (file) {
        *file = (ret & BLK_STATUS_OFFSET_VALID) ? lfile : NULL;
    }
out:
    dec_in_flight(bs);
    return ret;
}

int coroutine_fn blk_co_block_status_above(struct blk_node *bs,
                                           struct blk_node *base,
                                           uint64_t offset, uint64_t bytes,
                                           uint64_t *pnum, uint64_t *map,
                                           struct blk_node **file, int *depth)
{
    struct blk_node *p = bs;
    int d = 0, ret;

    *pnum = 0;
    if (depth) {
        *depth = 0;
    }
    if (offset >= bs->size) {
        return 0;
    }
    bytes = MIN(bytes, bs->size - offset);
    for (;;) {
        uint64_t n;
        ret = blk_co_block_status(p, offset, bytes, &n, map, file);
        if (ret < 0) {
            return ret;
        }
        if (n == 0) {
            /* below the end of a shorter backing image */
            ret = BLK_STATUS_ZERO;
            n = bytes;
        }
        bytes = n;
        if ((ret & (BLK_STATUS_DATA | BLK_STATUS_ZERO)) || !p->backing ||
            p->backing == base) {
            break;
        }
        p = p->backing;
        d++;
    }
    *pnum = bytes;
    if (depth) {
        *depth = d;
    }
    return ret;
}

/* ---- truncate, backing reads, drain ---- */

int coroutine_fn blk_co_truncate(struct blk_node *bs, uint64_t size,
                                 bool exact, enum blk_prealloc prealloc,
                                 struct strata_error **errp)
{
    int ret;

    if (!bs->drv) {
        return error_setg(errp, -ENOMEDIUM, "No medium");
    }
    if (bs->read_only) {
        return error_setg(errp, -EACCES, "Image is read-only");
    }
    if (!bs->drv->truncate) {
        return error_setg(errp, -ENOTSUP,
                          "Image format driver does not support resize");
    }
    inc_in_flight(bs);
    ret = bs->drv->truncate(bs, size, exact, prealloc, errp);
    dec_in_flight(bs);
    return ret;
}

int coroutine_fn blk_co_read_backing(struct blk_node *bs, uint64_t offset,
                                     uint64_t bytes, struct blk_iov *qiov)
{
    struct blk_node *b = bs->backing;
    uint64_t avail = 0;

    if (b && offset < b->size) {
        avail = MIN(bytes, b->size - offset);
    }
    if (avail) {
        struct blk_iov part;
        int ret;
        if (avail == bytes) {
            return blk_co_preadv(b, offset, bytes, qiov, 0);
        }
        blk_iov_init(&part, qiov->niov);
        blk_iov_concat(&part, qiov, 0, avail);
        ret = blk_co_preadv(b, offset, avail, &part, 0);
        blk_iov_destroy(&part);
        if (ret < 0) {
            return ret;
        }
    }
    blk_iov_memset(qiov, avail, 0, bytes - avail);
    return 0;
}

static bool tree_busy(const struct blk_node *bs)
{
    for (; bs; bs = bs->backing) {
        if (bs->in_flight || (bs->file && tree_busy(bs->file))) {
            return true;
        }
    }
    return false;
}

void coroutine_fn blk_co_drain(struct blk_node *bs)
{
    while (tree_busy(bs)) {
        if (bs->in_flight) {
            co_queue_wait(&bs->drain_waiters);
        } else {
            co_sleep_ns(100000); /* a child is busy: look again shortly */
        }
    }
}

void blk_drain(struct blk_node *bs)
{
    if (in_coroutine()) {
        blk_co_drain(bs);
        return;
    }
    while (tree_busy(bs)) {
        loop_poll(bs->loop, true);
    }
}
