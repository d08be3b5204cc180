/* Offloaded copies between two files (copy_file_range): the kernel moves
 * the data, or shares the extents where the file system can reflink, so
 * it never passes through our buffers.  Used by convert for raw images
 * when both sides are files; anything the kernel refuses is -ENOTSUP and
 * the caller copies the ordinary way. */
#include "config.h"

#include <errno.h>
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
