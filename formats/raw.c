/* The raw format: the virtual disk is the file's bytes, optionally a
 * window of them (offset=, size=).  When the format was guessed rather
 * than named, writes to the first sector that would make the image probe
 * as another format are refused, as in QEMU, so a guest cannot turn its
 * raw disk into, say, a qcow2 header pointing at host files. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "block.h"
#include "drivers.h"
#include "util.h"

struct raw_state {
    uint64_t offset; /* start of the window in the file */
    uint64_t size;   /* window length; the whole file when !has_size */
    bool has_size;
};

static int raw_probe(const uint8_t *buf, size_t len, const char *filename)
{
    return 1; /* anything is raw: the fallback */
}

static int raw_open(struct blk_node *bs, struct blk_opts *opts,
                    struct strata_error **errp)
{
    struct raw_state *s = bs->opaque;
    uint64_t file_size = bs->file->size;
    int ret;

    ret = opts_get_size(opts, "offset", 0, &s->offset, errp);
    if (ret < 0) {
        return ret;
    }
    s->has_size = opts_has(opts, "size");
    ret = opts_get_size(opts, "size", 0, &s->size, errp);
    if (ret < 0) {
        return ret;
    }
    if (s->offset > file_size) {
        return error_setg(errp, -EINVAL,
                          "The sum of offset (%llu) and size (0) has to be "
                          "smaller or equal to the actual size of the "
                          "containing file (%llu)",
                          (unsigned long long)s->offset,
                          (unsigned long long)file_size);
    }
    if (!s->has_size) {
        s->size = file_size - s->offset;
    } else if (s->size > file_size - s->offset) {
        return error_setg(errp, -EINVAL,
                          "The sum of offset (%llu) and size (%llu) has to "
                          "be smaller or equal to the actual size of the "
                          "containing file (%llu)",
                          (unsigned long long)s->offset,
                          (unsigned long long)s->size,
                          (unsigned long long)file_size);
    }
    bs->size = s->size;
    bs->limits.max_transfer = bs->file->limits.max_transfer;
    bs->limits.opt_transfer = bs->file->limits.opt_transfer;
    return 0;
}

static int coroutine_fn raw_preadv(struct blk_node *bs, uint64_t offset,
                                   uint64_t bytes, struct blk_iov *qiov,
                                   unsigned flags)
{
    struct raw_state *s = bs->opaque;
    return blk_co_preadv(bs->file, s->offset + offset, bytes, qiov, flags);
}

/* Would writing this first sector make a guessed-raw image probe as
 * something else? */
static bool raw_write_changes_format(struct blk_node *bs, uint64_t offset,
                                     uint64_t bytes, struct blk_iov *qiov)
{
    uint8_t buf[BLK_SECTOR_SIZE];

    if (!(bs->flags & BLK_O_PROBED) || offset >= BLK_SECTOR_SIZE) {
        return false;
    }
    if (offset != 0 || bytes < BLK_SECTOR_SIZE) {
        /* a partial first sector: judge the sector as it would become */
        memset(buf, 0, sizeof(buf));
        if (blk_co_pread(bs->file, 0, sizeof(buf), buf, 0) < 0) {
            return true;
        }
        blk_iov_to_buf(qiov, 0, buf + offset,
                       MIN(bytes, sizeof(buf) - offset));
    } else {
        blk_iov_to_buf(qiov, 0, buf, sizeof(buf));
    }
    return blk_probe_buf(buf, sizeof(buf), bs->filename, &blk_drv_raw) != NULL;
}

static int coroutine_fn raw_pwritev(struct blk_node *bs, uint64_t offset,
                                    uint64_t bytes, struct blk_iov *qiov,
                                    unsigned flags)
{
    struct raw_state *s = bs->opaque;

    if (raw_write_changes_format(bs, offset, bytes, qiov)) {
        return -EPERM;
    }
    return blk_co_pwritev(bs->file, s->offset + offset, bytes, qiov, flags);
}

static int coroutine_fn raw_pwrite_zeroes(struct blk_node *bs,
                                          uint64_t offset, uint64_t bytes,
                                          unsigned flags)
{
    struct raw_state *s = bs->opaque;
    return blk_co_pwrite_zeroes(bs->file, s->offset + offset, bytes, flags);
}

static int coroutine_fn raw_discard(struct blk_node *bs, uint64_t offset,
                                    uint64_t bytes)
{
    struct raw_state *s = bs->opaque;
    return blk_co_discard(bs->file, s->offset + offset, bytes);
}

static int coroutine_fn raw_block_status(struct blk_node *bs, uint64_t offset,
                                         uint64_t bytes, uint64_t *pnum,
                                         uint64_t *map,
                                         struct blk_node **file)
{
    struct raw_state *s = bs->opaque;

    *pnum = bytes;
    *map = s->offset + offset;
    *file = bs->file;
    return BLK_STATUS_RECURSE | BLK_STATUS_OFFSET_VALID;
}

static int coroutine_fn raw_truncate(struct blk_node *bs, uint64_t size,
                                     bool exact, enum blk_prealloc prealloc,
                                     struct strata_error **errp)
{
    struct raw_state *s = bs->opaque;
    int ret;

    if (s->has_size || s->offset) {
        return error_setg(errp, -ENOTSUP,
                          "Cannot resize a raw image with offset or size "
                          "options");
    }
    ret = blk_co_truncate(bs->file, size, exact, prealloc, errp);
    if (ret >= 0) {
        s->size = size;
        bs->size = size;
    }
    return ret;
}

static bool raw_has_zero_init(struct blk_node *bs)
{
    return blk_has_zero_init(bs->file);
}

static const struct blk_opt_desc raw_create_opts[] = {
    {"size", OPT_SIZE, "Virtual disk size", NULL},
    {NULL, 0, NULL, NULL},
};

static int raw_create(const char *filename, struct blk_opts *opts,
                      struct strata_error **errp)
{
    enum blk_prealloc prealloc;
    const char *p = opts_get(opts, "preallocation");

    if (p && (blk_parse_prealloc(p, &prealloc) < 0 ||
              prealloc == BLK_PREALLOC_METADATA)) {
        return error_setg(errp, -EINVAL,
                          "Invalid parameter '%s' for preallocation", p);
    }
    return blk_create_file(filename, opts, errp);
}

/* measure: a raw image needs its whole virtual size (QEMU's raw_measure). */
static int raw_measure(struct blk_opts *opts, struct blk_node *in,
                       struct blk_measure *out, struct strata_error **errp)
{
    uint64_t size;
    int ret;

    if (in) {
        size = in->size;
    } else {
        ret = opts_get_size(opts, "size", 0, &size, errp);
        if (ret < 0) {
            return ret;
        }
        if (size > UINT64_MAX - BLK_SECTOR_SIZE) {
            return error_setg(errp, -EINVAL, "Image size is too large");
        }
        size = ROUND_UP(size, BLK_SECTOR_SIZE);
    }
    out->required = size;
    out->fully_allocated = size; /* unallocated sectors count in raw */
    return 0;
}

/* The raw window maps straight onto the file: offloaded copies go down. */
static int coroutine_fn raw_copy_range_from(struct blk_node *bs,
                                            uint64_t src_off,
                                            struct blk_node *dst,
                                            uint64_t dst_off, uint64_t bytes)
{
    struct raw_state *s = bs->opaque;

    return blk_co_copy_range(bs->file, s->offset + src_off, dst, dst_off,
                             bytes);
}

static int coroutine_fn raw_copy_range_to(struct blk_node *src,
                                          uint64_t src_off,
                                          struct blk_node *bs,
                                          uint64_t dst_off, uint64_t bytes)
{
    struct raw_state *s = bs->opaque;

    if ((bs->flags & BLK_O_PROBED) && dst_off < BLK_SECTOR_SIZE) {
        return -ENOTSUP; /* sector 0 of a guessed raw goes through the guard */
    }
    return blk_co_copy_range(src, src_off, bs->file, s->offset + dst_off,
                             bytes);
}

const struct blk_driver blk_drv_raw = {
    .name = "raw",
    .kind = BLK_KIND_FORMAT,
    .state_size = sizeof(struct raw_state),
    .probe = raw_probe,
    .open = raw_open,
    .create = raw_create,
    .create_opts = raw_create_opts,
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .pwrite_zeroes = raw_pwrite_zeroes,
    .discard = raw_discard,
    .block_status = raw_block_status,
    .truncate = raw_truncate,
    .has_zero_init = raw_has_zero_init,
    .copy_range_from = raw_copy_range_from,
    .copy_range_to = raw_copy_range_to,
    .measure = raw_measure,
    .supported_write_flags = BLK_REQ_FUA,
    .supported_zero_flags = BLK_REQ_FUA | BLK_REQ_MAY_UNMAP,
};
