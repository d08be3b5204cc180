/* Synchronous wrappers around the coroutine request path: outside a
 * coroutine they start one and run this thread's loop until it is done;
 * inside one they simply call through. */
#include "config.h"

#include "block.h"
#include "loop.h"

enum sync_op {
    SYNC_READ, SYNC_WRITE, SYNC_ZEROES, SYNC_DISCARD, SYNC_FLUSH,
    SYNC_STATUS, SYNC_STATUS_ABOVE, SYNC_TRUNCATE,
};

struct sync_req {
    enum sync_op op;
    struct blk_node *bs, *base;
    uint64_t offset, bytes;
    struct blk_iov *qiov;
    unsigned flags;
    uint64_t *pnum, *map;
    struct blk_node **file;
    int *depth;
    bool exact;
    enum blk_prealloc prealloc;
    struct strata_error **errp;
    int ret;
    bool done;
};

static void coroutine_fn sync_entry(void *opaque)
{
    struct sync_req *r = opaque;

    switch (r->op) {
    case SYNC_READ:
        r->ret = blk_co_preadv(r->bs, r->offset, r->bytes, r->qiov, r->flags);
        break;
    case SYNC_WRITE:
        r->ret = blk_co_pwritev(r->bs, r->offset, r->bytes, r->qiov, r->flags);
        break;
    case SYNC_ZEROES:
        r->ret = blk_co_pwrite_zeroes(r->bs, r->offset, r->bytes, r->flags);
        break;
    case SYNC_DISCARD:
        r->ret = blk_co_discard(r->bs, r->offset, r->bytes);
        break;
    case SYNC_FLUSH:
        r->ret = blk_co_flush(r->bs);
        break;
    case SYNC_STATUS:
        r->ret = blk_co_block_status(r->bs, r->offset, r->bytes, r->pnum,
                                     r->map, r->file);
        break;
    case SYNC_STATUS_ABOVE:
        r->ret = blk_co_block_status_above(r->bs, r->base, r->offset,
                                           r->bytes, r->pnum, r->map, r->file,
                                           r->depth);
        break;
    case SYNC_TRUNCATE:
        r->ret = blk_co_truncate(r->bs, r->bytes, r->exact, r->prealloc,
                                 r->errp);
        break;
    }
    r->done = true;
}

static int sync_run(struct sync_req *r)
{
    if (in_coroutine()) {
        sync_entry(r);
    } else {
        coroutine_enter(coroutine_create(sync_entry, r));
        loop_run_until(loop_current(), &r->done);
    }
    return r->ret;
}

int blk_preadv(struct blk_node *bs, uint64_t offset, uint64_t bytes,
               struct blk_iov *qiov, unsigned flags)
{
    struct sync_req r = {.op = SYNC_READ, .bs = bs, .offset = offset,
                         .bytes = bytes, .qiov = qiov, .flags = flags};
    return sync_run(&r);
}

int blk_pwritev(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                struct blk_iov *qiov, unsigned flags)
{
    struct sync_req r = {.op = SYNC_WRITE, .bs = bs, .offset = offset,
                         .bytes = bytes, .qiov = qiov, .flags = flags};
    return sync_run(&r);
}

int blk_pread(struct blk_node *bs, uint64_t offset, uint64_t bytes,
              void *buf, unsigned flags)
{
    struct blk_iov q;
    blk_iov_init_buf(&q, buf, bytes);
    return blk_preadv(bs, offset, bytes, &q, flags);
}

int blk_pwrite(struct blk_node *bs, uint64_t offset, uint64_t bytes,
               const void *buf, unsigned flags)
{
    struct blk_iov q;
    blk_iov_init_buf(&q, (void *)buf, bytes);
    return blk_pwritev(bs, offset, bytes, &q, flags);
}

int coroutine_fn blk_co_pread(struct blk_node *bs, uint64_t offset,
                              uint64_t bytes, void *buf, unsigned flags)
{
    struct blk_iov q;
    blk_iov_init_buf(&q, buf, bytes);
    return blk_co_preadv(bs, offset, bytes, &q, flags);
}

int coroutine_fn blk_co_pwrite(struct blk_node *bs, uint64_t offset,
                               uint64_t bytes, const void *buf,
                               unsigned flags)
{
    struct blk_iov q;
    blk_iov_init_buf(&q, (void *)buf, bytes);
    return blk_co_pwritev(bs, offset, bytes, &q, flags);
}

int blk_pwrite_zeroes(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                      unsigned flags)
{
    struct sync_req r = {.op = SYNC_ZEROES, .bs = bs, .offset = offset,
                         .bytes = bytes, .flags = flags};
    return sync_run(&r);
}

int blk_discard(struct blk_node *bs, uint64_t offset, uint64_t bytes)
{
    struct sync_req r = {.op = SYNC_DISCARD, .bs = bs, .offset = offset,
                         .bytes = bytes};
    return sync_run(&r);
}

int blk_flush(struct blk_node *bs)
{
    struct sync_req r = {.op = SYNC_FLUSH, .bs = bs};
    return sync_run(&r);
}

int blk_block_status(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                     uint64_t *pnum, uint64_t *map, struct blk_node **file)
{
    struct sync_req r = {.op = SYNC_STATUS, .bs = bs, .offset = offset,
                         .bytes = bytes, .pnum = pnum, .map = map,
                         .file = file};
    return sync_run(&r);
}

int blk_block_status_above(struct blk_node *bs, struct blk_node *base,
                           uint64_t offset, uint64_t bytes, uint64_t *pnum,
                           uint64_t *map, struct blk_node **file, int *depth)
{
    struct sync_req r = {.op = SYNC_STATUS_ABOVE, .bs = bs, .base = base,
                         .offset = offset, .bytes = bytes, .pnum = pnum,
                         .map = map, .file = file, .depth = depth};
    return sync_run(&r);
}

int blk_truncate(struct blk_node *bs, uint64_t size, bool exact,
                 enum blk_prealloc prealloc, struct strata_error **errp)
{
    struct sync_req r = {.op = SYNC_TRUNCATE, .bs = bs, .bytes = size,
                         .exact = exact, .prealloc = prealloc, .errp = errp};
    return sync_run(&r);
}

struct run_co {
    int coroutine_fn (*fn)(void *opaque);
    void *opaque;
    int ret;
    bool done;
};

static void coroutine_fn run_co_entry(void *opaque)
{
    struct run_co *r = opaque;

    r->ret = r->fn(r->opaque);
    r->done = true;
}

int blk_run_co(int coroutine_fn (*fn)(void *opaque), void *opaque)
{
    struct run_co r = {.fn = fn, .opaque = opaque};

    if (in_coroutine()) {
        return fn(opaque);
    }
    coroutine_enter(coroutine_create(run_co_entry, &r));
    loop_run_until(loop_current(), &r.done);
    return r.ret;
}

struct compressed_req {
    struct blk_node *bs;
    uint64_t offset, bytes;
    const void *buf;
};

static int coroutine_fn compressed_entry(void *opaque)
{
    struct compressed_req *c = opaque;
    struct blk_iov q;

    blk_iov_init_buf(&q, (void *)c->buf, c->bytes);
    return blk_co_pwritev_compressed(c->bs, c->offset, c->bytes, &q);
}

int blk_pwrite_compressed(struct blk_node *bs, uint64_t offset,
                          uint64_t bytes, const void *buf)
{
    struct compressed_req c = {bs, offset, bytes, buf};

    return blk_run_co(compressed_entry, &c);
}
