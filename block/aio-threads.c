/* aio=threads: every request is a plain preadv/pwritev/fdatasync on a
 * worker of the thread pool while the coroutine yields.  Works for every
 * file and cache mode; the default engine.
 *
 * The blocking calls every engine shares live here too: fallocate, range
 * ioctls and resizing with preallocation run on the pool whatever aio= is,
 * as QEMU does. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "threadpool.h"
#include "util.h"

#define FILE_MAX_ALIGN 4096

struct threads_req {
    int fd;
    enum file_aio_op op;
    off_t offset;
    const struct iovec *iov;
    int niov;
    int rwflags;
    ssize_t ret; /* bytes or -errno, set by the worker */
};

/* Runs on a worker thread. */
static int threads_work(void *opaque)
{
    struct threads_req *r = opaque;
    ssize_t n;

    do {
        switch (r->op) {
        case FILE_AIO_READ:
            n = r->rwflags
                    ? preadv2(r->fd, r->iov, r->niov, r->offset, r->rwflags)
                    : preadv(r->fd, r->iov, r->niov, r->offset);
            break;
        case FILE_AIO_WRITE:
            n = r->rwflags
                    ? pwritev2(r->fd, r->iov, r->niov, r->offset, r->rwflags)
                    : pwritev(r->fd, r->iov, r->niov, r->offset);
            break;
        default:
            n = fdatasync(r->fd);
            break;
        }
    } while (n < 0 && errno == EINTR);
    r->ret = n < 0 ? -errno : n;
    return 0;
}

static int threads_attach(struct file_state *s, struct strata_error **errp)
{
    return 0;
}

static void threads_detach(struct file_state *s)
{
}

#define INLINE_READ_IOVS 64

/* Up to how many bytes a cached read is copied inline (see below).  The
 * default covers metadata-sized reads; blk_set_inline_read_max raises it
 * for programs whose loop thread has nothing better to do. */
static size_t inline_read_max = 64 * 1024;

void blk_set_inline_read_max(size_t bytes)
{
    __atomic_store_n(&inline_read_max, bytes, __ATOMIC_RELAXED);
}

/* A buffered read whose data is in the page cache is copied on the
 * caller's thread (preadv2 RWF_NOWAIT): handing it to a worker would cost
 * two thread wake-ups for a few microseconds of copying.  Larger reads
 * stay on the pool, where several copy at once, unless the program said
 * otherwise.  Returns the bytes read, or -1 when the read must go to the
 * pool (then nothing counts). */
static ssize_t try_read_inline(struct file_state *s, uint64_t offset,
                               const struct iovec *iov, int niov)
{
    size_t total = 0;
    ssize_t n;

    if (s->direct || s->no_nowait || niov > INLINE_READ_IOVS) {
        return -1;
    }
    for (int i = 0; i < niov; i++) {
        total += iov[i].iov_len;
    }
    if (total > __atomic_load_n(&inline_read_max, __ATOMIC_RELAXED)) {
        return -1;
    }
    do {
        n = preadv2(s->fd, iov, niov, (off_t)offset, RWF_NOWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
        s->no_nowait = true; /* this file cannot: always the pool */
    }
    return n < 0 ? -1 : n;
}

static ssize_t coroutine_fn threads_rw(struct file_state *s,
                                       enum file_aio_op op, uint64_t offset,
                                       const struct iovec *iov, int niov,
                                       int rwflags)
{
    if (op == FILE_AIO_READ && !rwflags) {
        ssize_t n = try_read_inline(s, offset, iov, niov);
        /* a short count is fine: the caller asks again for the rest,
         * which then comes from the pool if it is not cached */
        if (n > 0) {
            return n;
        }
    }

    struct threads_req r = {
        .fd = s->fd,
        .op = op,
        .offset = offset,
        .iov = iov,
        .niov = niov,
        .rwflags = rwflags,
    };

    /* buffered writes to a regular file serialise on its inode lock in
     * the kernel: one worker issues them back to back (O_DIRECT and
     * RWF_DSYNC writes overlap their waits for the device, block devices
     * take no such lock) */
    uintptr_t lane = op == FILE_AIO_WRITE && !s->direct && !s->is_bdev &&
                             !rwflags
                         ? (uintptr_t)s->fd + 1
                         : 0;

    threadpool_run_lane(lane, threads_work, &r);
    return r.ret;
}

static int coroutine_fn threads_fsync(struct file_state *s)
{
    struct threads_req r = {.fd = s->fd, .op = FILE_AIO_FSYNC};

    threadpool_run(threads_work, &r);
    return r.ret < 0 ? (int)r.ret : 0;
}

const struct file_aio_ops file_aio_threads = {
    .name = "threads",
    .attach = threads_attach,
    .detach = threads_detach,
    .rw = threads_rw,
    .fsync = threads_fsync,
};

/* ---- fallocate and ioctls for the other engines too ---- */

struct file_syscall {
    int fd;
    int mode; /* fallocate mode, or ioctl request */
    bool ioctl;
    uint64_t offset, bytes;
};

static int syscall_work(void *opaque)
{
    struct file_syscall *c = opaque;
    int ret;

    do {
        if (c->ioctl) {
            uint64_t range[2] = {c->offset, c->bytes};
            ret = ioctl(c->fd, (unsigned long)c->mode, range);
        } else {
            ret = fallocate(c->fd, c->mode, c->offset, c->bytes);
        }
    } while (ret < 0 && errno == EINTR);
    return ret < 0 ? -errno : 0;
}

int coroutine_fn file_co_fallocate(struct file_state *s, int mode,
                                   uint64_t offset, uint64_t bytes)
{
    struct file_syscall c = {s->fd, mode, false, offset, bytes};
    return threadpool_run(syscall_work, &c);
}

int coroutine_fn file_co_range_ioctl(struct file_state *s, unsigned long req,
                                     uint64_t offset, uint64_t bytes)
{
    struct file_syscall c = {s->fd, (int)req, true, offset, bytes};
    return threadpool_run(syscall_work, &c);
}

bool file_errno_unsupported(int ret)
{
    return ret == -EOPNOTSUPP || ret == -ENOSYS || ret == -ENOTTY;
}

/* ---- truncate and preallocation ---- */

struct file_truncate {
    int fd;
    uint64_t size;
    enum blk_prealloc prealloc;
    uint32_t align;   /* O_DIRECT granularity of the fd, else 1 */
    const char *what; /* set with the error: what failed */
};

/* Write zeroes over the start of a new file, as QEMU does, so the file
 * system allocates it: probing O_DIRECT alignment needs an allocated block
 * (reads of holes succeed at any alignment) and `map` reports it as data. */
static void allocate_first_block(int fd, uint64_t size)
{
    size_t len = size < FILE_MAX_ALIGN ? BLK_SECTOR_SIZE : FILE_MAX_ALIGN;
    void *buf = xmemalign(FILE_MAX_ALIGN, len);
    ssize_t n;

    memset(buf, 0, len);
    do {
        n = pwrite(fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    free(buf);
}

/* Write zeroes over [start, end) of fd in aligned chunks. */
static int write_zeroes_range(int fd, uint64_t start, uint64_t end)
{
    const size_t chunk = 1024 * 1024;
    void *buf = xmemalign(FILE_MAX_ALIGN, chunk);
    int ret = 0;

    memset(buf, 0, chunk);
    while (start < end) {
        ssize_t n = pwrite(fd, buf, MIN(chunk, end - start), start);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            ret = n < 0 ? -errno : -ENOSPC;
            break;
        }
        start += n;
    }
    free(buf);
    return ret;
}

/* Resize a regular file, preallocating the growth: QEMU's semantics and
 * messages (falloc = posix_fallocate, full = written zeroes, failures
 * restore the old length, a new file gets its first block allocated). */
static int truncate_work(void *opaque)
{
    struct file_truncate *t = opaque;
    struct stat st;
    uint64_t cur;
    int ret = 0;

    if (fstat(t->fd, &st) < 0) {
        t->what = "Could not stat file";
        return -errno;
    }
    cur = st.st_size;
    if (cur > t->size && t->prealloc != BLK_PREALLOC_OFF) {
        t->what = "Cannot use preallocation for shrinking files";
        return -ENOTSUP;
    }

    switch (t->prealloc) {
    case BLK_PREALLOC_OFF:
        if (ftruncate(t->fd, t->size) < 0) {
            t->what = "Could not resize file";
            return -errno;
        }
        if (cur == 0 && t->size > 0) {
            allocate_first_block(t->fd, t->size);
        }
        return 0;
    case BLK_PREALLOC_FALLOC:
        if (t->size != cur) {
            ret = -posix_fallocate(t->fd, cur, t->size - cur);
            if (ret < 0) {
                t->what = "Could not preallocate new data";
            } else if (cur == 0) {
                allocate_first_block(t->fd, t->size);
            }
        }
        break;
    case BLK_PREALLOC_FULL: {
        /* O_DIRECT cannot write from an unaligned end: start at the next
         * aligned offset (the partial block exists already) and trim the
         * overshoot afterwards. */
        uint64_t start = ROUND_UP(cur, t->align);
        uint64_t end = ROUND_UP(t->size, t->align);
        if (ftruncate(t->fd, t->size) < 0) {
            t->what = "Could not resize file";
            ret = -errno;
            break;
        }
        ret = write_zeroes_range(t->fd, start, end);
        if (ret < 0) {
            t->what = "Could not write zeros for preallocation";
            break;
        }
        if (end != t->size && ftruncate(t->fd, t->size) < 0) {
            t->what = "Could not resize file";
            ret = -errno;
            break;
        }
        if (fsync(t->fd) < 0) {
            t->what = "Could not flush file to disk";
            ret = -errno;
        }
        break;
    }
    default:
        t->what = "Unsupported preallocation mode";
        return -ENOTSUP;
    }
    if (ret < 0 && ftruncate(t->fd, cur) < 0) {
        /* the error already reported is the one that matters */
    }
    return ret;
}

int file_run_truncate(int fd, uint64_t size, enum blk_prealloc prealloc,
                      uint32_t align, struct strata_error **errp)
{
    struct file_truncate t = {fd, size, prealloc, align, NULL};
    int ret = threadpool_run(truncate_work, &t);

    if (ret < 0) {
        if (prealloc == BLK_PREALLOC_METADATA) {
            return error_setg(errp, ret,
                              "Unsupported preallocation mode: "
                              "metadata");
        }
        if (ret == -ENOTSUP && t.what && strncmp(t.what, "Cannot", 6) == 0) {
            return error_setg(errp, ret, "%s", t.what);
        }
        return error_setg_errno(errp, ret, "%s",
                                t.what ? t.what : "Could not resize file");
    }
    return 0;
}
