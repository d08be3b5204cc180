/* The request path (block/io.c) against an in-memory driver that checks
 * the guarantees the core promises drivers: aligned offsets, lengths and
 * buffers, transfers within max_transfer, only supported flags.  The driver
 * yields inside every request so concurrent requests really interleave. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "loop.h"
#include "tap.h"

struct mem_state {
    uint8_t *data;
    int violations;
    int reads, writes, flushes, zeroes, discards;
    bool zeroes_unsupported;
    bool yield;
};

/* Give control back to the loop once, so other requests run meanwhile. */
static void yield_once(struct blk_node *bs)
{
    struct mem_state *s = bs->opaque;
    if (s->yield) {
        coroutine_wake(coroutine_self());
        coroutine_yield();
    }
}

static void check_args(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                       struct blk_iov *qiov)
{
    struct mem_state *s = bs->opaque;
    uint32_t a = bs->limits.request_alignment;

    if (offset % a || bytes % a || bytes == 0 ||
        (bs->limits.max_transfer && bytes > bs->limits.max_transfer) ||
        offset + bytes > bs->size) {
        s->violations++;
    }
    if (qiov) {
        if (qiov->size != bytes) {
            s->violations++;
        }
        for (int i = 0; i < qiov->niov; i++) {
            if ((uintptr_t)qiov->iov[i].iov_base % bs->limits.buf_alignment ||
                qiov->iov[i].iov_len % a) {
                s->violations++;
            }
        }
    }
}

static int mem_preadv(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                      struct blk_iov *qiov, unsigned flags)
{
    struct mem_state *s = bs->opaque;
    check_args(bs, offset, bytes, qiov);
    s->reads++;
    yield_once(bs);
    blk_iov_from_buf(qiov, 0, s->data + offset, bytes);
    return 0;
}

static int mem_pwritev(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                       struct blk_iov *qiov, unsigned flags)
{
    struct mem_state *s = bs->opaque;
    uint8_t tmp[65536];
    check_args(bs, offset, bytes, qiov);
    if (flags & ~bs->drv->supported_write_flags) {
        s->violations++;
    }
    s->writes++;
    /* copy before yielding: the data is what the caller passed now */
    blk_iov_to_buf(qiov, 0, tmp, bytes);
    yield_once(bs);
    memcpy(s->data + offset, tmp, bytes);
    return 0;
}

static int mem_pwrite_zeroes(struct blk_node *bs, uint64_t offset,
                             uint64_t bytes, unsigned flags)
{
    struct mem_state *s = bs->opaque;
    if (s->zeroes_unsupported) {
        return -ENOTSUP;
    }
    check_args(bs, offset, bytes, NULL);
    s->zeroes++;
    memset(s->data + offset, 0, bytes);
    return 0;
}

static int mem_discard(struct blk_node *bs, uint64_t offset, uint64_t bytes)
{
    struct mem_state *s = bs->opaque;
    uint32_t a = bs->limits.request_alignment;
    if (offset % a || bytes % a || bytes == 0 ||
        (bs->limits.max_discard && bytes > bs->limits.max_discard)) {
        s->violations++;
    }
    s->discards++;
    memset(s->data + offset, 0xdd, bytes);
    return 0;
}

static int mem_flush(struct blk_node *bs)
{
    struct mem_state *s = bs->opaque;
    s->flushes++;
    return 0;
}

static const struct blk_driver mem_drv = {
    .name = "mem",
    .kind = BLK_KIND_FORMAT, /* bounded by its size, unlike protocols */
    .state_size = sizeof(struct mem_state),
    .preadv = mem_preadv,
    .pwritev = mem_pwritev,
    .pwrite_zeroes = mem_pwrite_zeroes,
    .flush = mem_flush,
    .discard = mem_discard,
};

static struct blk_node *mem_node(uint32_t align, uint64_t max_transfer,
                                 uint64_t size)
{
    struct blk_node *bs = calloc(1, sizeof(*bs));
    struct mem_state *s = calloc(1, sizeof(*s));

    s->data = calloc(1, size);
    s->yield = true;
    bs->drv = &mem_drv;
    bs->opaque = s;
    bs->filename = strdup("mem");
    bs->size = size;
    bs->flags = BLK_O_RDWR;
    bs->backing_file = NULL;
    bs->limits.request_alignment = align;
    bs->limits.buf_alignment = align;
    bs->limits.max_transfer = max_transfer;
    bs->loop = loop_current();
    co_queue_init(&bs->drain_waiters);
    return bs;
}

static void mem_free(struct blk_node *bs)
{
    struct mem_state *s = bs->opaque;
    free(s->data);
    free(s);
    free(bs->filename);
    free(bs);
}

/* ---- concurrent unaligned writes sharing sectors ---- */

#define NCO 32
#define STRIPE 37 /* bytes per coroutine per round: never sector aligned */

struct writer {
    struct blk_node *bs;
    int id;
    int ret;
    bool done;
};

/* Each coroutine owns bytes [k*NCO*STRIPE + id*STRIPE, +STRIPE) for every
 * round k: the ranges never overlap but share sectors, so an RMW that is
 * not serialised would lose a neighbour's bytes. */
static void coroutine_fn writer_entry(void *opaque)
{
    struct writer *w = opaque;
    uint8_t buf[STRIPE];

    memset(buf, 0x10 + w->id, sizeof(buf));
    w->ret = 0;
    for (int k = 0; k < 8 && w->ret >= 0; k++) {
        uint64_t off = (uint64_t)k * NCO * STRIPE + (uint64_t)w->id * STRIPE;
        w->ret = blk_co_pwrite(w->bs, off, STRIPE, buf, 0);
    }
    w->done = true;
}

static void test_concurrent_rmw(void)
{
    struct blk_node *bs = mem_node(512, 0, 64 * 1024);
    struct mem_state *s = bs->opaque;
    struct writer w[NCO];
    bool all_ok = true;

    for (int i = 0; i < NCO; i++) {
        w[i] = (struct writer){.bs = bs, .id = i};
        coroutine_enter(coroutine_create(writer_entry, &w[i]));
    }
    for (int i = 0; i < NCO; i++) {
        loop_run_until(loop_current(), &w[i].done);
        all_ok &= w[i].ret == 0;
    }
    tap_ok(all_ok, "32 concurrent unaligned writers succeed");
    bool intact = true;
    for (int k = 0; k < 8; k++) {
        for (int i = 0; i < NCO; i++) {
            uint64_t off = (uint64_t)k * NCO * STRIPE + (uint64_t)i * STRIPE;
            for (int b = 0; b < STRIPE; b++) {
                if (s->data[off + b] != 0x10 + i) {
                    intact = false;
                }
            }
        }
    }
    tap_ok(intact, "serialised read-modify-write loses no neighbour's bytes");
    tap_is(s->violations, 0, "driver saw only aligned, in-bounds requests");
    tap_is(bs->in_flight, 0, "nothing left in flight");
    mem_free(bs);
}

/* ---- alignment, splitting, bounce buffers ---- */

static void test_unaligned_sync(void)
{
    struct blk_node *bs = mem_node(512, 4096, 1024 * 1024);
    struct mem_state *s = bs->opaque;
    uint8_t *buf = malloc(100000 + 1), *rd = malloc(100000 + 1);

    for (int i = 0; i < 100001; i++) {
        buf[i] = (uint8_t)(i * 7 + 3);
    }
    /* misaligned memory (buf+1), offset and length, over several chunks */
    tap_is(blk_pwrite(bs, 1000, 100000, buf + 1, 0), 0,
           "unaligned 100000-byte write at 1000 from unaligned memory");
    tap_ok(memcmp(s->data + 1000, buf + 1, 100000) == 0,
           "the bytes landed where asked");
    tap_ok(s->data[999] == 0 && s->data[101000] == 0,
           "bytes around the write untouched");
    memset(rd, 0, 100001);
    tap_is(blk_pread(bs, 1000, 100000, rd + 1, 0), 0,
           "unaligned read into unaligned memory");
    tap_ok(memcmp(rd + 1, buf + 1, 100000) == 0, "read returns the data");
    tap_is(s->violations, 0, "split requests stay within max_transfer");
    tap_is(blk_pread(bs, 1024 * 1024 - 10, 20, rd, 0), -EIO,
           "read past the end fails with EIO");
    tap_is(blk_pwrite(bs, 1024 * 1024, 1, buf, 0), -EIO,
           "write past the end fails with EIO");
    tap_is(blk_pread(bs, 5, 0, rd, 0), 0, "zero-length read is a no-op");

    /* FUA on a driver without FUA: emulated by a flush */
    int flushes = s->flushes;
    tap_is(blk_pwrite(bs, 0, 512, buf, BLK_REQ_FUA), 0, "FUA write");
    tap_is(s->flushes, flushes + 1, "FUA emulated with one flush");
    bs->flags |= BLK_O_WRITETHROUGH;
    tap_is(blk_pwrite(bs, 512, 512, buf, 0), 0, "write-through write");
    tap_is(s->flushes, flushes + 2, "write-through flushes after writing");
    bs->flags &= ~BLK_O_WRITETHROUGH;

    /* write zeroes: driver path, unaligned edges, and the fallback */
    memset(s->data, 0xff, 1024 * 1024);
    tap_is(blk_pwrite_zeroes(bs, 100, 5000, 0), 0, "unaligned write_zeroes");
    bool z = true;
    for (int i = 100; i < 5100; i++) {
        z &= s->data[i] == 0;
    }
    tap_ok(z && s->data[99] == 0xff && s->data[5100] == 0xff,
           "exactly the asked range reads as zero");
    tap_ok(s->zeroes > 0, "aligned middle went to the driver's zeroing");
    s->zeroes_unsupported = true;
    int writes = s->writes;
    tap_is(blk_pwrite_zeroes(bs, 8192, 8192, 0), 0,
           "write_zeroes falls back to writing zeroes");
    tap_ok(s->writes > writes && s->data[8192] == 0 && s->data[16383] == 0,
           "fallback wrote zero buffers");
    tap_is(blk_pwrite_zeroes(bs, 8192, 8192, BLK_REQ_NO_FALLBACK), -ENOTSUP,
           "NO_FALLBACK refuses the slow path");
    tap_is(s->violations, 0, "no request broke the driver contract");

    /* discard passes only whole granules down, split to max_discard */
    memset(s->data, 0, 1024 * 1024);
    bs->limits.max_discard = 0;
    tap_is(blk_discard(bs, 4096 + 100, 8192), 0, "unaligned discard");
    tap_ok(s->data[4096 + 511] == 0 && s->data[4096 + 512] == 0xdd &&
           s->data[4096 + 8191] == 0xdd && s->data[4096 + 8192] == 0,
           "only the aligned inner sectors were discarded");
    bs->limits.max_discard = 2048;
    int discards = s->discards;
    tap_is(blk_discard(bs, 65536, 65536), 0, "discard split to max_discard");
    tap_is(s->discards - discards, 32, "in 2 KiB pieces");
    tap_is(s->violations, 0, "discards kept to the contract");

    bs->read_only = true;
    tap_is(blk_pwrite(bs, 0, 512, buf, 0), -EACCES,
           "writes to a read-only node are refused");
    tap_is(blk_pread(bs, 0, 512, rd, 0), 0, "reads still work read-only");
    free(buf);
    free(rd);
    mem_free(bs);
}

int main(void)
{
    tap_plan(31);
    test_concurrent_rmw();
    test_unaligned_sync();
    return tap_done();
}
