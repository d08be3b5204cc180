/* The null protocol (QEMU's null-co): a device of a given size that stores
 * nothing.  Writes succeed at once, reads return zeroes with read-zeroes=on
 * and leave the caller's buffer untouched otherwise (as in QEMU, where the
 * default is off), optionally after latency-ns.  For benchmarks of the
 * layers above it. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "drivers.h"
#include "util.h"

struct null_state {
    bool read_zeroes;
    uint64_t latency_ns;
};

static int null_open(struct blk_node *bs, struct blk_opts *opts,
                     struct strata_error **errp)
{
    struct null_state *s = bs->opaque;
    const char *filename = opts_get(opts, "filename");
    uint64_t size;
    int ret;

    if (filename && filename[0] && strcmp(filename, "null-co://") != 0 &&
        strcmp(filename, "null://") != 0) {
        return error_setg(errp, -EINVAL,
                          "The only allowed filename for "
                          "this driver is 'null-co://'");
    }
    ret = opts_get_size(opts, "size", 1ull << 30, &size, errp);
    if (ret < 0) {
        return ret;
    }
    ret = opts_get_bool(opts, "read-zeroes", false, &s->read_zeroes, errp);
    if (ret < 0) {
        return ret;
    }
    ret = opts_get_uint(opts, "latency-ns", 0, &s->latency_ns, errp);
    if (ret < 0) {
        return ret;
    }
    if (size > INT64_MAX - BLK_SECTOR_SIZE) {
        return error_setg(errp, -EINVAL, "Size of %llu bytes is too large",
                          (unsigned long long)size);
    }
    bs->size = ROUND_UP(size, BLK_SECTOR_SIZE); /* QEMU counts sectors */
    return 0;
}

/* Every request waits latency-ns, like a device that does nothing. */
static void coroutine_fn null_delay(struct blk_node *bs)
{
    struct null_state *s = bs->opaque;

    if (s->latency_ns) {
        co_sleep_ns(s->latency_ns);
    }
}

static int coroutine_fn null_co_preadv(struct blk_node *bs, uint64_t offset,
                                       uint64_t bytes, struct blk_iov *qiov,
                                       unsigned flags)
{
    struct null_state *s = bs->opaque;

    null_delay(bs);
    if (s->read_zeroes) {
        blk_iov_memset(qiov, 0, 0, bytes);
    }
    return 0;
}

static int coroutine_fn null_co_pwritev(struct blk_node *bs, uint64_t offset,
                                        uint64_t bytes, struct blk_iov *qiov,
                                        unsigned flags)
{
    null_delay(bs);
    return 0;
}

static int coroutine_fn null_co_pwrite_zeroes(struct blk_node *bs,
                                              uint64_t offset, uint64_t bytes,
                                              unsigned flags)
{
    null_delay(bs);
    return 0;
}

static int coroutine_fn null_co_flush(struct blk_node *bs)
{
    null_delay(bs);
    return 0;
}

/* As QEMU: "zero" with read-zeroes, otherwise neither data nor zero. */
static int coroutine_fn null_co_block_status(struct blk_node *bs,
                                             uint64_t offset, uint64_t bytes,
                                             uint64_t *pnum, uint64_t *map,
                                             struct blk_node **file)
{
    struct null_state *s = bs->opaque;

    *pnum = bytes;
    *map = offset;
    *file = bs;
    return BLK_STATUS_OFFSET_VALID | (s->read_zeroes ? BLK_STATUS_ZERO : 0);
}

static int64_t null_allocated_size(struct blk_node *bs)
{
    return 0;
}

static bool null_has_zero_init(struct blk_node *bs)
{
    struct null_state *s = bs->opaque;
    return s->read_zeroes;
}

static const char *const null_aliases[] = {"null", NULL};
static const char *const null_protocols[] = {"null-co://", "null://", NULL};

const struct blk_driver blk_drv_null = {
    .name = "null-co",
    .aliases = null_aliases,
    .kind = BLK_KIND_PROTOCOL,
    .state_size = sizeof(struct null_state),
    .protocols = null_protocols,
    .open = null_open,
    .preadv = null_co_preadv,
    .pwritev = null_co_pwritev,
    .pwrite_zeroes = null_co_pwrite_zeroes,
    .flush = null_co_flush,
    .block_status = null_co_block_status,
    .allocated_size = null_allocated_size,
    .has_zero_init = null_has_zero_init,
    .supported_write_flags = BLK_REQ_FUA,
    .supported_zero_flags = BLK_REQ_FUA | BLK_REQ_MAY_UNMAP,
};
