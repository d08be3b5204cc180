/* The fault filter: injects I/O errors (and crashes) for tests.
 *
 *   driver=fault,file.filename=img,fail-write=3,errno=ENOSPC,once=off
 *
 * fail-read=N, fail-write=N, fail-flush=N fail the Nth such operation
 * (1-based, counted from open; 0 = never) with `errno` (EIO, ENOSPC,
 * EPERM, ... or a number; default EIO).  once=on (the default) fails only
 * the Nth; once=off fails the Nth and every later one.  Writes are pwritev
 * and write_zeroes calls reaching this node; the core may split a large
 * request into several.
 *
 * kill-write=N sends SIGKILL to the whole process just before the Nth write
 * reaches the file.  That is deliberate: it simulates a crash (power loss,
 * OOM kill) in the middle of an operation so tests can check that images
 * survive and that check/repair copes.  Never use it on data you keep.
 *
 * Everything else passes through to the child node unchanged. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"
#include "util.h"

struct fault_state {
    uint64_t fail_read, fail_write, fail_flush, kill_write;
    uint64_t reads, writes, flushes; /* operations seen so far */
    int err;                         /* positive errno to fail with */
    bool once;
};

static const struct {
    const char *name;
    int err;
} errno_names[] = {
    {"EIO", EIO},       {"ENOSPC", ENOSPC}, {"EPERM", EPERM},
    {"EACCES", EACCES}, {"EINVAL", EINVAL}, {"ENOMEM", ENOMEM},
    {"EROFS", EROFS},   {"EDQUOT", EDQUOT}, {"ENOTSUP", ENOTSUP},
    {"EAGAIN", EAGAIN}, {"EBUSY", EBUSY},   {"ETIMEDOUT", ETIMEDOUT},
};

static int parse_errno(const char *s, int *out, struct strata_error **errp)
{
    uint64_t n;

    if (!s) {
        *out = EIO;
        return 0;
    }
    for (size_t i = 0; i < ARRAY_SIZE(errno_names); i++) {
        if (strcasecmp(s, errno_names[i].name) == 0) {
            *out = errno_names[i].err;
            return 0;
        }
    }
    if (parse_uint(s, &n) == 0 && n > 0 && n < 4096) {
        *out = (int)n;
        return 0;
    }
    return error_setg(errp, -EINVAL,
                      "fault: errno must be an errno name (EIO, ENOSPC, "
                      "EPERM, ...) or a positive number, not '%s'",
                      s);
}

static int fault_open(struct blk_node *bs, struct blk_opts *opts,
                      struct strata_error **errp)
{
    struct fault_state *s = bs->opaque;
    int ret;

    if (!bs->file) {
        return error_setg(errp, -EINVAL,
                          "fault: a child node is required "
                          "(file.filename=...)");
    }
    if ((ret = opts_get_uint(opts, "fail-read", 0, &s->fail_read, errp)) ||
        (ret = opts_get_uint(opts, "fail-write", 0, &s->fail_write, errp)) ||
        (ret = opts_get_uint(opts, "fail-flush", 0, &s->fail_flush, errp)) ||
        (ret = opts_get_uint(opts, "kill-write", 0, &s->kill_write, errp)) ||
        (ret = opts_get_bool(opts, "once", true, &s->once, errp)) ||
        (ret = parse_errno(opts_get(opts, "errno"), &s->err, errp))) {
        return ret;
    }
    bs->size = bs->file->size;
    bs->limits = bs->file->limits;
    return 0;
}

/* Does operation number `n` fail for trigger `at`? */
static bool triggers(const struct fault_state *s, uint64_t at, uint64_t n)
{
    return at && (s->once ? n == at : n >= at);
}

/* Count one write; crash or fail it as configured. */
static int count_write(struct blk_node *bs)
{
    struct fault_state *s = bs->opaque;
    uint64_t n = ++s->writes;

    if (s->kill_write && n == s->kill_write) {
        raise(SIGKILL); /* deliberate: a crash before the write lands */
    }
    return triggers(s, s->fail_write, n) ? -s->err : 0;
}

static int coroutine_fn fault_co_preadv(struct blk_node *bs, uint64_t offset,
                                        uint64_t bytes, struct blk_iov *qiov,
                                        unsigned flags)
{
    struct fault_state *s = bs->opaque;

    if (triggers(s, s->fail_read, ++s->reads)) {
        return -s->err;
    }
    return blk_co_preadv(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn fault_co_pwritev(struct blk_node *bs, uint64_t offset,
                                         uint64_t bytes, struct blk_iov *qiov,
                                         unsigned flags)
{
    int ret = count_write(bs);

    return ret < 0 ? ret : blk_co_pwritev(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn fault_co_pwrite_zeroes(struct blk_node *bs,
                                               uint64_t offset, uint64_t bytes,
                                               unsigned flags)
{
    int ret = count_write(bs);

    return ret < 0 ? ret : blk_co_pwrite_zeroes(bs->file, offset, bytes, flags);
}

static int coroutine_fn fault_co_discard(struct blk_node *bs, uint64_t offset,
                                         uint64_t bytes)
{
    return blk_co_discard(bs->file, offset, bytes);
}

/* The core flushes the child after this returns success. */
static int coroutine_fn fault_co_flush(struct blk_node *bs)
{
    struct fault_state *s = bs->opaque;

    return triggers(s, s->fail_flush, ++s->flushes) ? -s->err : 0;
}

static int coroutine_fn fault_co_block_status(struct blk_node *bs,
                                              uint64_t offset, uint64_t bytes,
                                              uint64_t *pnum, uint64_t *map,
                                              struct blk_node **file)
{
    *pnum = bytes;
    *map = offset;
    *file = bs->file;
    return BLK_STATUS_RECURSE | BLK_STATUS_OFFSET_VALID;
}

static int coroutine_fn fault_co_truncate(struct blk_node *bs, uint64_t size,
                                          bool exact,
                                          enum blk_prealloc prealloc,
                                          struct strata_error **errp)
{
    int ret = blk_co_truncate(bs->file, size, exact, prealloc, errp);

    /* a filter has its child's size: the format above reads it */
    if (ret >= 0) {
        bs->size = bs->file->size;
    }
    return ret;
}

const struct blk_driver blk_drv_fault = {
    .name = "fault",
    .kind = BLK_KIND_FILTER,
    .state_size = sizeof(struct fault_state),
    .open = fault_open,
    .preadv = fault_co_preadv,
    .pwritev = fault_co_pwritev,
    .pwrite_zeroes = fault_co_pwrite_zeroes,
    .discard = fault_co_discard,
    .flush = fault_co_flush,
    .block_status = fault_co_block_status,
    .truncate = fault_co_truncate,
    .supported_write_flags = BLK_REQ_FUA,
    .supported_zero_flags =
        BLK_REQ_FUA | BLK_REQ_MAY_UNMAP | BLK_REQ_NO_FALLBACK,
};
