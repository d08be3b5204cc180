/* The installed API (include/strata/strata.h) on top of the engine. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "strata/strata.h"
#include "block.h"
#include "util.h"

struct strata_node {
    struct blk_node *bs;
};

int strata_open(struct strata_node **out, const char *filename,
                const char *fmt, const char *options, const char *cache,
                unsigned flags, struct strata_error **errp)
{
    struct blk_opts *opts = opts_new();
    unsigned bflags = 0;
    struct blk_node *bs;
    int ret;

    *out = NULL;
    if (blk_parse_cache_mode(cache, &bflags) < 0) {
        opts_free(opts);
        return error_setg(errp, -EINVAL, "Invalid cache mode '%s'", cache);
    }
    bflags |= (flags & STRATA_OPEN_RDWR) ? BLK_O_RDWR : 0;
    bflags |= (flags & STRATA_OPEN_NO_BACKING) ? BLK_O_NO_BACKING : 0;
    bflags |= (flags & STRATA_OPEN_FORCE_SHARE) ? BLK_O_FORCE_SHARE : 0;
    bflags |= (flags & STRATA_OPEN_NO_LOCK) ? BLK_O_NO_LOCK : 0;
    if (options && (ret = opts_parse(opts, options, NULL, errp)) < 0) {
        opts_free(opts);
        return ret;
    }
    if (fmt) {
        opts_set(opts, "driver", fmt);
    }
    ret = blk_open(&bs, filename, opts, bflags, errp);
    opts_free(opts);
    if (ret < 0) {
        return ret;
    }
    *out = xzalloc(sizeof(**out));
    (*out)->bs = bs;
    return 0;
}

void strata_close(struct strata_node *node)
{
    if (node) {
        blk_close(node->bs);
        free(node);
    }
}

int strata_create(const char *filename, const char *fmt, uint64_t size,
                  const char *options, struct strata_error **errp)
{
    struct blk_opts *opts = opts_new();
    int ret = 0;

    if (options) {
        ret = opts_parse(opts, options, NULL, errp);
    }
    if (ret >= 0) {
        opts_set_uint(opts, "size", size);
        ret = blk_create(filename, fmt ? fmt : "raw", opts, errp);
    }
    opts_free(opts);
    return ret;
}

int64_t strata_size(struct strata_node *node)
{
    return (int64_t)node->bs->size;
}

const char *strata_format(struct strata_node *node)
{
    return node->bs->drv->name;
}

int strata_pread(struct strata_node *node, void *buf, size_t len,
                 uint64_t offset)
{
    return blk_pread(node->bs, offset, len, buf, 0);
}

int strata_pwrite(struct strata_node *node, const void *buf, size_t len,
                  uint64_t offset, unsigned flags)
{
    return blk_pwrite(node->bs, offset, len, buf,
                      (flags & STRATA_WRITE_FUA) ? BLK_REQ_FUA : 0);
}

int strata_pwrite_zeroes(struct strata_node *node, uint64_t offset,
                         uint64_t len, unsigned flags)
{
    unsigned f = 0;
    f |= (flags & STRATA_WRITE_FUA) ? BLK_REQ_FUA : 0;
    f |= (flags & STRATA_ZERO_MAY_UNMAP) ? BLK_REQ_MAY_UNMAP : 0;
    return blk_pwrite_zeroes(node->bs, offset, len, f);
}

int strata_discard(struct strata_node *node, uint64_t offset, uint64_t len)
{
    return blk_discard(node->bs, offset, len);
}

int strata_flush(struct strata_node *node)
{
    return blk_flush(node->bs);
}

int strata_truncate(struct strata_node *node, uint64_t size,
                    struct strata_error **errp)
{
    return blk_truncate(node->bs, size, true, BLK_PREALLOC_OFF, errp);
}

/* The public bits are the engine's low bits; keep them in step. */
_Static_assert((int)STRATA_STATUS_DATA == (int)BLK_STATUS_DATA &&
                   (int)STRATA_STATUS_ZERO == (int)BLK_STATUS_ZERO &&
                   (int)STRATA_STATUS_ALLOCATED == (int)BLK_STATUS_ALLOCATED &&
                   (int)STRATA_STATUS_OFFSET_VALID ==
                       (int)BLK_STATUS_OFFSET_VALID,
               "status bits differ");

int strata_block_status(struct strata_node *node, uint64_t offset,
                        uint64_t len, uint64_t *pnum)
{
    int ret = blk_block_status_above(node->bs, NULL, offset, len, pnum, NULL,
                                     NULL, NULL);
    return ret < 0 ? ret : (ret & 0xf);
}

int strata_parse_size(const char *str, uint64_t *out)
{
    return parse_size(str, out);
}
