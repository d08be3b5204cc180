/* vmdk compressed grains (streamOptimized), the write side (reading is in
 * vmdk-stream-read.c): appending new grains the way QEMU does (a marker
 * with the grain's LBA and the deflate size, the zlib stream, padding to a
 * sector; grain tables updated in place).  Grains of concurrent requests are
 * compressed in parallel on the worker pool and appended in the order the
 * requests arrived, so the file stays sequential. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "threadpool.h"
#include "util.h"
#include "vmdk.h"

struct zjob {
    const uint8_t *in;
    size_t in_len;
    uint8_t *out;
    size_t out_len;   /* room in out; then the bytes produced */
    struct zbatch *batch;
    int ret;
};

struct zbatch {
    int pending;
    bool waiting;
    struct coroutine *co;
};

/* On a worker: deflate one grain (zlib format, as QEMU). */
static int zjob_run(void *opaque)
{
    struct zjob *j = opaque;
    uLongf len = j->out_len;
    int r = compress(j->out, &len, j->in, j->in_len);

    if (r != Z_OK || len == 0) {
        return -EINVAL;
    }
    j->out_len = len;
    return 0;
}

static void zjob_done(void *opaque, int ret)
{
    struct zjob *j = opaque;

    j->ret = ret;
    if (--j->batch->pending == 0 && j->batch->waiting) {
        coroutine_wake(j->batch->co);
    }
}

/* Run the jobs on the worker pool and wait for all of them. */
static void coroutine_fn zjobs_run(struct zjob *jobs, int n)
{
    struct zbatch b = {.pending = n, .co = coroutine_self()};

    for (int i = 0; i < n; i++) {
        jobs[i].batch = &b;
        threadpool_submit(zjob_run, &jobs[i], zjob_done);
    }
    while (b.pending > 0) {
        b.waiting = true;
        coroutine_yield();
        b.waiting = false;
    }
}

/* Append the compressed grains in request order (s->lock held): one
 * write for the grains, one per grain-table run for their entries. */
static int coroutine_fn append_grains(struct vmdk_extent *e, uint64_t off,
                                      struct zjob *jobs, int n)
{
    uint64_t grain = e->grain_sectors * BLK_SECTOR_SIZE;
    uint64_t host, pnum, sector = e->next_sector, pos = 0;
    uint32_t *sectors = xmalloc(sizeof(*sectors) * (size_t)n);
    size_t total = 0;
    uint8_t *buf;
    int ret = 0;

    for (int i = 0; i < n; i++) {
        if (jobs[i].ret < 0) {
            free(sectors);
            return jobs[i].ret;
        }
        ret = vmdk_lookup(e, off + (uint64_t)i * grain, grain, &host, &pnum);
        if (ret < 0 || ret == VMDK_GRAIN_DATA) {
            /* as QEMU: a streamOptimized grain is written only once */
            free(sectors);
            return ret < 0 ? ret : -EIO;
        }
        total += ROUND_UP(jobs[i].out_len + VMDK_MARKER_SIZE, 512);
    }
    if (sector + total / 512 >= VMDK_MAX_EXTENT_SECTORS) {
        free(sectors);
        return -ENOSPC;
    }
    buf = xmalloc(total);
    for (int i = 0; i < n; i++) {
        size_t len = ROUND_UP(jobs[i].out_len + VMDK_MARKER_SIZE, 512);
        uint8_t *m = buf + pos;
        vmdk_st64(m, (e->start + off + (uint64_t)i * grain) / 512);
        vmdk_st32(m + 8, (uint32_t)jobs[i].out_len);
        memcpy(m + VMDK_MARKER_SIZE, jobs[i].out, jobs[i].out_len);
        memset(m + VMDK_MARKER_SIZE + jobs[i].out_len, 0,
               len - VMDK_MARKER_SIZE - jobs[i].out_len);
        sectors[i] = (uint32_t)(sector + pos / 512);
        /* QEMU zero-fills a whole grain before writing the compressed one
         * over it, so its file reaches at least a grain past this start */
        e->stream_end = MAX(e->stream_end,
                            (sector * 512 + pos) + MAX(grain, len));
        pos += len;
    }
    ret = blk_co_pwrite(e->file, sector * 512, total, buf, 0);
    free(buf);
    if (ret >= 0) {
        e->next_sector = sector + total / 512;
        ret = vmdk_set_gtes(e, off, sectors, n);
    }
    free(sectors);
    return ret;
}

int coroutine_fn vmdk_stream_write(struct blk_node *bs, struct vmdk_extent *e,
                                   uint64_t voff, uint64_t bytes,
                                   struct blk_iov *qiov, size_t qoff)
{
    struct vmdk_state *s = bs->opaque;
    uint64_t ticket = s->stream_ticket++; /* before the first yield */
    uint64_t grain = e->grain_sectors * BLK_SECTOR_SIZE;
    uint64_t off = voff - e->start;
    int n = (int)DIV_ROUND_UP(bytes, grain), ret = 0;
    struct zjob *jobs = xzalloc(sizeof(*jobs) * (size_t)n);
    uint8_t *in = xmalloc(bytes);
    size_t room = 2 * grain;

    if (!e->has_marker || off % grain ||
        (bytes % grain && voff + bytes != e->end)) {
        ret = -EINVAL; /* whole grains only (the core aligns requests) */
        goto turn;
    }
    blk_iov_to_buf(qiov, qoff, in, bytes);
    for (int i = 0; i < n; i++) {
        uint64_t len = MIN(grain, bytes - (uint64_t)i * grain);
        jobs[i].in = in + (uint64_t)i * grain;
        jobs[i].in_len = len;
        jobs[i].out = xmalloc(room);
        jobs[i].out_len = room;
    }
    zjobs_run(jobs, n);

turn:
    while (s->stream_serving != ticket) {
        co_queue_wait(&s->stream_waiters);
    }
    if (ret >= 0) {
        co_mutex_lock(&s->lock);
        ret = append_grains(e, off, jobs, n);
        co_mutex_unlock(&s->lock);
    }
    s->stream_serving++;
    co_queue_wake_all(&s->stream_waiters);
    for (int i = 0; i < n; i++) {
        free(jobs[i].out);
    }
    free(jobs);
    free(in);
    return ret;
}

int coroutine_fn vmdk_stream_finish(struct vmdk_extent *e)
{
    if (!e->compressed || e->file->size >= e->stream_end) {
        return 0;
    }
    return blk_co_truncate(e->file, e->stream_end, false, BLK_PREALLOC_OFF,
                           NULL);
}
