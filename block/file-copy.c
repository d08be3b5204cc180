/* Offloaded copies between two files (copy_file_range): the kernel moves
 * the data, or shares the extents where the file system can reflink, so
 * it never passes through our buffers.  Used by convert for raw images
 * when both sides are files; anything the kernel refuses is -ENOTSUP and
 * the caller copies the ordinary way.  Also the page-cache hints of bulk
 * copies (blk_co_writeback, blk_co_drop_cache): commit and rebase write
 * hundreds of MiB and flush once at the end, so they start writeback as
 * they go instead of leaving it all to the final flush. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "block.h"
#include "drivers.h"
#include "file.h"
#include "threadpool.h"
#include "util.h"

struct copy_job {
    int src_fd, dst_fd;
    uint64_t src_off, dst_off, bytes;
};

/* On a worker: the syscall blocks for as long as the copy takes. */
static int copy_job_run(void *opaque)
{
    struct copy_job *j = opaque;
    loff_t in = j->src_off, out = j->dst_off;
    uint64_t left = j->bytes;

    while (left > 0) {
        ssize_t n = copy_file_range(j->src_fd, &in, j->dst_fd, &out,
                                    MIN(left, (uint64_t)1 << 30), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            switch (errno) {
            case EINVAL: case EXDEV: case ENOSYS: case EOPNOTSUPP:
            case EBADF: case ETXTBSY:
                return -ENOTSUP;
            default:
                return -errno;
            }
        }
        if (n == 0) {
            return -ENOTSUP; /* the source ends early: copy it by hand */
        }
        left -= n;
    }
    return 0;
}

int coroutine_fn file_co_copy_range_from(struct blk_node *bs,
                                         uint64_t src_off,
                                         struct blk_node *dst,
                                         uint64_t dst_off, uint64_t bytes)
{
    struct file_state *s = bs->opaque, *d;
    struct copy_job j;

    if (dst->drv != &blk_drv_file) {
        if (dst->drv->kind != BLK_KIND_PROTOCOL && dst->drv->copy_range_to) {
            return dst->drv->copy_range_to(bs, src_off, dst, dst_off, bytes);
        }
        return -ENOTSUP;
    }
    d = dst->opaque;
    if (d->is_bdev || s->is_bdev) {
        return -ENOTSUP;
    }
    j = (struct copy_job){s->fd, d->fd, src_off, dst_off, bytes};
    return threadpool_run(copy_job_run, &j);
}

int coroutine_fn file_co_copy_range_to(struct blk_node *src,
                                       uint64_t src_off,
                                       struct blk_node *bs,
                                       uint64_t dst_off, uint64_t bytes)
{
    if (src->drv != &blk_drv_file) {
        return -ENOTSUP;
    }
    return file_co_copy_range_from(src, src_off, bs, dst_off, bytes);
}

/* ---- writeback hints ---- */

struct writeback_job {
    int fd;
    uint64_t off, len; /* len 0: to the end of the file */
    bool drop;
};

/* On a worker: sync_file_range may block while the kernel allocates blocks
 * and queues the I/O. */
static int writeback_job_run(void *opaque)
{
    struct writeback_job *j = opaque;
    unsigned flags = SYNC_FILE_RANGE_WRITE;

    if (j->drop) {
        flags |= SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WAIT_AFTER;
    }
    if (j->len && sync_file_range(j->fd, (off64_t)j->off, (off64_t)j->len,
                                  flags) < 0) {
        return -errno;
    }
    if (j->drop) {
        int ret = posix_fadvise(j->fd, (off_t)j->off, (off_t)j->len,
                                POSIX_FADV_DONTNEED);
        if (ret) {
            return -ret;
        }
    }
    return 0;
}

/* The file protocol state behind a node of the file driver, or NULL for
 * anything the hints do not apply to: other protocols, block devices,
 * O_DIRECT (no page cache to manage) and cache=unsafe (nobody waits for
 * the disk, so writing early would only add I/O). */
static struct file_state *hint_target(struct blk_node *bs)
{
    struct file_state *s;

    if (!bs || bs->drv != &blk_drv_file) {
        return NULL;
    }
    s = bs->opaque;
    return s->is_bdev || s->direct || s->no_flush ? NULL : s;
}

int coroutine_fn blk_co_writeback(struct blk_node *bs, uint64_t offset,
                                  uint64_t bytes, bool drop)
{
    int first_err = 0;

    if (offset >= bs->size) {
        return 0;
    }
    bytes = MIN(bytes, bs->size - offset);
    while (bytes > 0) {
        uint64_t pnum = 0, map = 0;
        struct blk_node *file = NULL;
        struct file_state *s;
        int ret = blk_co_block_status(bs, offset, bytes, &pnum, &map, &file);

        if (ret < 0 || pnum == 0) {
            return ret < 0 ? ret : first_err;
        }
        s = (ret & BLK_STATUS_OFFSET_VALID) ? hint_target(file) : NULL;
        if (s) {
            struct writeback_job j = {s->fd, map, pnum, drop};
            ret = threadpool_run(writeback_job_run, &j);
            if (ret < 0 && !first_err) {
                first_err = ret;
            }
        }
        offset += pnum;
        bytes -= pnum;
    }
    return first_err;
}

int coroutine_fn blk_co_drop_cache(struct blk_node *bs)
{
    struct file_state *s = hint_target(blk_protocol_node(bs));
    struct writeback_job j;

    if (!s) {
        return 0;
    }
    j = (struct writeback_job){s->fd, 0, 0, true};
    return threadpool_run(writeback_job_run, &j);
}
