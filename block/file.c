/* The file protocol: images in regular files and on block devices.
 *
 * Reads and writes go through the AIO engine chosen by aio= (threads,
 * native, io_uring; see file.h); zeroing, discard and resizing use
 * fallocate/ftruncate (ioctls on block devices) on the thread pool; holes
 * are found with SEEK_DATA/SEEK_HOLE.  Image locking follows QEMU's byte
 * scheme (file-lock.c), so both tools see each other's locks. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers.h"
#include "file.h"
#include "loop.h"
#include "threadpool.h"
#include "util.h"

/* Largest single transfer: below Linux's 0x7ffff000 cap for one syscall
 * and a multiple of every alignment. */
#define FILE_MAX_TRANSFER (1024 * 1024 * 1024)
#define FILE_MAX_ALIGN 4096 /* largest alignment probed for O_DIRECT */
#define FILE_RETRIES 100    /* EINTR/EAGAIN retries before giving up */

void file_aio_wake(struct coroutine *co)
{
    if (coroutine_loop(co) == loop_current()) {
        coroutine_enter(co);
    } else {
        coroutine_wake(co);
    }
}

/* "file:name" is the explicit spelling of a plain file name. */
static const char *strip_protocol(const char *filename)
{
    return strncmp(filename, "file:", 5) == 0 ? filename + 5 : filename;
}

/* ---- open and close ---- */

static int64_t fd_size(int fd, bool is_bdev)
{
    struct stat st;
    uint64_t size;

    if (is_bdev) {
        if (ioctl(fd, BLKGETSIZE64, &size) == 0) {
            return size;
        }
        off_t end = lseek(fd, 0, SEEK_END);
        return end < 0 ? -errno : end;
    }
    return fstat(fd, &st) < 0 ? -errno : st.st_size;
}

/* Can fd do an O_DIRECT read of len bytes at offset 0 into buf?  Only
 * EINVAL means "misaligned"; other errors say nothing about alignment. */
static bool io_aligned(int fd, void *buf, size_t len)
{
    ssize_t n = pread(fd, buf, len, 0);
    return n >= 0 || errno != EINVAL;
}

/* QEMU's probe: the smallest request length and buffer alignment an
 * O_DIRECT read accepts.  When even 1 byte passes (a hole or an empty
 * file, where the kernel does not check), assume the largest. */
static void probe_alignment(struct file_state *s)
{
    static const size_t aligns[] = {1, 512, 1024, 2048, 4096};
    uint8_t *buf = xmemalign(FILE_MAX_ALIGN, 2 * FILE_MAX_ALIGN);
    int lbs = 0;

    s->req_align = 0;
    s->buf_align = 0;
    if (s->is_bdev && ioctl(s->fd, BLKSSZGET, &lbs) == 0 && lbs > 0) {
        s->req_align = lbs;
    }
    for (size_t i = 0; !s->req_align && i < ARRAY_SIZE(aligns); i++) {
        if (io_aligned(s->fd, buf, aligns[i])) {
            s->req_align = aligns[i] != 1 ? aligns[i] : FILE_MAX_ALIGN;
        }
    }
    for (size_t i = 0; !s->buf_align && i < ARRAY_SIZE(aligns); i++) {
        if (io_aligned(s->fd, buf + aligns[i], FILE_MAX_ALIGN)) {
            s->buf_align = aligns[i] != 1 ? aligns[i] : s->req_align;
        }
    }
    if (!s->req_align) {
        s->req_align = FILE_MAX_ALIGN;
    }
    if (!s->buf_align) {
        s->buf_align = s->req_align;
    }
    free(buf);
}

static const struct file_aio_ops *find_aio(const char *name)
{
    if (!name || strcmp(name, "threads") == 0) {
        return &file_aio_threads;
    }
    if (strcmp(name, "native") == 0) {
        return &file_aio_native;
    }
    if (strcmp(name, "io_uring") == 0) {
        return &file_aio_uring;
    }
    return NULL;
}

/* Parse locking=on|off|auto into "lock" and "must lock". */
static int parse_locking(const char *v, bool *lock, bool *must,
                         struct strata_error **errp)
{
    *lock = true;
    *must = false;
    if (!v || strcmp(v, "auto") == 0) {
        return 0;
    }
    if (strcmp(v, "on") == 0) {
        *must = true;
        return 0;
    }
    if (strcmp(v, "off") == 0) {
        *lock = false;
        return 0;
    }
    return error_setg(errp, -EINVAL, "invalid parameter value: %s", v);
}

/* The lock bytes an open with these flags holds (QEMU's for read-only
 * and read-write opens). */
static void lock_perms(unsigned flags, bool rdwr, unsigned *perm,
                       unsigned *unshared)
{
    *perm = FILE_PERM_CONSISTENT_READ | (rdwr ? FILE_PERM_WRITE : 0);
    *unshared = (flags & BLK_O_FORCE_SHARE)
                    ? 0
                    : FILE_PERM_WRITE | FILE_PERM_RESIZE;
}

static void file_close(struct blk_node *bs)
{
    struct file_state *s = bs->opaque;

    if (s->aio) {
        s->aio->detach(s);
        s->aio = NULL;
    }
    if (s->fd >= 0) {
        close(s->fd); /* drops the OFD locks too */
        s->fd = -1;
    }
    free(s->filename);
    s->filename = NULL;
}

static int file_open(struct blk_node *bs, struct blk_opts *opts,
                     struct strata_error **errp)
{
    struct file_state *s = bs->opaque;
    const char *name = opts_get(opts, "filename");
    const char *aio_name = opts_get(opts, "aio");
    const char *locking = opts_get(opts, "locking");
    bool rdwr = bs->flags & BLK_O_RDWR, lock, must_lock;
    struct stat st;
    int64_t size;
    int oflags, ret;

    s->fd = -1;
    if (!name) {
        return error_setg(errp, -EINVAL,
                          "The 'file' block driver requires a file name");
    }
    name = strip_protocol(name);
    s->aio = find_aio(aio_name);
    if (!s->aio) {
        return error_setg(errp, -EINVAL, "invalid parameter value: %s",
                          aio_name);
    }
    ret = parse_locking(locking, &lock, &must_lock, errp);
    if (ret < 0) {
        s->aio = NULL;
        return ret;
    }
    if (bs->flags & BLK_O_NO_LOCK) {
        lock = false;
    }
    s->filename = xstrdup(name);
    s->direct = bs->flags & BLK_O_NOCACHE;
    s->no_flush = bs->flags & BLK_O_NO_FLUSH;

    oflags =
        (rdwr ? O_RDWR : O_RDONLY) | O_CLOEXEC | (s->direct ? O_DIRECT : 0);
    do {
        s->fd = open(name, oflags);
    } while (s->fd < 0 && errno == EINTR);
    if (s->fd < 0) {
        ret = error_setg_errno(errp, -errno, "Could not open '%s'", name);
        goto fail;
    }
    if (fstat(s->fd, &st) < 0) {
        ret = error_setg_errno(errp, -errno, "Could not stat '%s'", name);
        goto fail;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        ret = error_setg(errp, -EINVAL,
                         "'file' driver requires '%s' to be a regular file",
                         name);
        goto fail;
    }
    s->is_bdev = S_ISBLK(st.st_mode);
    size = fd_size(s->fd, s->is_bdev);
    if (size < 0) {
        ret = error_setg_errno(errp, size, "Could not get the size of '%s'",
                               name);
        goto fail;
    }
    bs->size = size;

    if (s->direct) {
        probe_alignment(s);
    } else {
        s->req_align = s->buf_align = 1;
    }
    bs->limits.request_alignment = s->req_align;
    bs->limits.buf_alignment = s->buf_align;
    bs->limits.max_transfer = FILE_MAX_TRANSFER;
    if (s->is_bdev) {
        int lbs = 0;
        if (ioctl(s->fd, BLKSSZGET, &lbs) == 0 && lbs > 0) {
            bs->limits.discard_alignment = lbs;
            bs->limits.pwrite_zeroes_alignment = lbs;
        }
    }

    if (lock && !file_lock_supported(s->fd)) {
        if (must_lock) {
            ret = error_setg(errp, -ENOTSUP,
                             "locking=on was given but '%s' does not "
                             "support OFD locks",
                             name);
            goto fail;
        }
        lock = false;
    }
    if (lock) {
        unsigned perm, unshared;
        lock_perms(bs->flags, rdwr, &perm, &unshared);
        ret = file_lock_apply(s->fd, perm, unshared, bs->filename, errp);
        if (ret < 0) {
            goto fail;
        }
        s->locked = true;
    }

    ret = s->aio->attach(s, errp);
    if (ret < 0) {
        s->aio = NULL;
        goto fail;
    }
    return 0;

fail:
    s->aio = NULL;
    file_close(bs);
    return ret;
}

/* Switch between read-only and read-write as QEMU's raw_reopen: a new
 * descriptor of the same file with the same cache flags, the locks moved
 * to it, then the old one closed.  The core drained the node first, and
 * the AIO engines take s->fd per request, so their contexts carry on. */
static int file_reopen(struct blk_node *bs, bool read_write,
                       struct strata_error **errp)
{
    struct file_state *s = bs->opaque;
    int oflags = (read_write ? O_RDWR : O_RDONLY) | O_CLOEXEC |
                 (s->direct ? O_DIRECT : 0);
    unsigned old_perm, old_unshared, new_perm, new_unshared;
    struct stat old_st, new_st;
    int fd, ret;

    if (fstat(s->fd, &old_st) < 0) {
        return error_setg_errno(errp, -errno, "Could not stat '%s'",
                                s->filename);
    }
    do {
        fd = open(s->filename, oflags);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return error_setg_errno(errp, -errno, "Could not reopen file");
    }
    if (fstat(fd, &new_st) < 0 || new_st.st_dev != old_st.st_dev ||
        new_st.st_ino != old_st.st_ino) {
        close(fd);
        return error_setg(errp, -ESTALE, "Could not reopen file: '%s' was "
                          "replaced by another file", s->filename);
    }
    if (s->locked) {
        lock_perms(bs->flags, !bs->read_only, &old_perm, &old_unshared);
        lock_perms(bs->flags, read_write, &new_perm, &new_unshared);
        ret = file_lock_change(s->fd, fd, old_perm, old_unshared, new_perm,
                               new_unshared, bs->filename, errp);
        if (ret < 0) {
            close(fd);
            return ret;
        }
    }
    close(s->fd); /* drops its lock bytes; fd holds them now */
    s->fd = fd;
    return 0;
}

/* ---- reads and writes ---- */

/* Can the rest of a transfer be issued as it stands?  Not under O_DIRECT
 * once a short transfer left offset or buffers unaligned. */
static bool rest_aligned(struct file_state *s, uint64_t offset,
                         const struct iovec *iov, int niov)
{
    if (s->req_align <= 1 && s->buf_align <= 1) {
        return true;
    }
    if (offset % s->req_align) {
        return false;
    }
    for (int i = 0; i < niov; i++) {
        if ((uintptr_t)iov[i].iov_base % s->buf_align ||
            iov[i].iov_len % s->req_align) {
            return false;
        }
    }
    return true;
}

/* Drop the first n bytes of the iovec array. */
static void iov_advance(struct iovec *iov, int *idx, int niov, size_t n)
{
    while (n && *idx < niov) {
        size_t step = MIN(n, iov[*idx].iov_len);
        iov[*idx].iov_base = (char *)iov[*idx].iov_base + step;
        iov[*idx].iov_len -= step;
        n -= step;
        if (iov[*idx].iov_len == 0) {
            (*idx)++;
        }
    }
}

/* Transfer through the AIO engine: lists longer than IOV_MAX go in pieces,
 * short writes are resumed, a read that stops early has hit the end of the
 * file and the rest reads as zeroes. */
static int coroutine_fn file_co_rw(struct blk_node *bs, bool write,
                                   uint64_t offset, uint64_t bytes,
                                   struct blk_iov *qiov, unsigned flags)
{
    struct file_state *s = bs->opaque;
    enum file_aio_op op = write ? FILE_AIO_WRITE : FILE_AIO_READ;
    bool fua = write && (flags & BLK_REQ_FUA) && !s->no_flush;
    int rwflags = fua && !s->no_rwf_dsync ? RWF_DSYNC : 0;
    struct iovec small[8], *iov = small;
    int niov = qiov->niov, idx = 0, retries = 0, ret = 0;
    uint64_t done = 0;

    if (niov > (int)ARRAY_SIZE(small)) {
        iov = xmalloc(niov * sizeof(*iov));
    }
    memcpy(iov, qiov->iov, niov * sizeof(*iov));
    /* never transfer more than asked, whatever the list holds */
    for (int i = 0; i < niov; i++) {
        iov[i].iov_len = MIN(iov[i].iov_len, bytes - done);
        done += iov[i].iov_len;
    }
    done = 0;

    while (done < bytes) {
        while (idx < niov && iov[idx].iov_len == 0) {
            idx++;
        }
        if (idx == niov) {
            ret = -EIO; /* the list is shorter than the request */
            break;
        }
        ssize_t n = s->aio->rw(s, op, offset + done, iov + idx,
                               MIN(niov - idx, IOV_MAX), rwflags);
        if ((n == -EINTR || n == -EAGAIN) && ++retries < FILE_RETRIES) {
            continue;
        }
        if (rwflags && (file_errno_unsupported((int)n) || n == -EINVAL)) {
            /* no RWF_DSYNC here: write, then fdatasync */
            s->no_rwf_dsync = true;
            rwflags = 0;
            continue;
        }
        if (n < 0) {
            ret = n;
            break;
        }
        retries = 0;
        if (n > 0) {
            done += n;
            iov_advance(iov, &idx, niov, n);
        }
        if (done < bytes && (n == 0 || !rest_aligned(s, offset + done,
                                                     iov + idx, niov - idx))) {
            if (write) {
                ret = n == 0 ? -ENOSPC : -EIO;
            } else {
                blk_iov_memset(qiov, done, 0, bytes - done);
                done = bytes;
            }
            break;
        }
    }
    if (iov != small) {
        free(iov);
    }
    if (ret == 0 && fua && !rwflags) {
        ret = s->aio->fsync(s);
    }
    return ret;
}

static int coroutine_fn file_co_preadv(struct blk_node *bs, uint64_t offset,
                                       uint64_t bytes, struct blk_iov *qiov,
                                       unsigned flags)
{
    return file_co_rw(bs, false, offset, bytes, qiov, flags);
}

static int coroutine_fn file_co_pwritev(struct blk_node *bs, uint64_t offset,
                                        uint64_t bytes, struct blk_iov *qiov,
                                        unsigned flags)
{
    return file_co_rw(bs, true, offset, bytes, qiov, flags);
}

static int coroutine_fn file_co_flush(struct blk_node *bs)
{
    struct file_state *s = bs->opaque;

    return s->no_flush ? 0 : s->aio->fsync(s);
}

/* ---- zeroing and discard ---- */

static int coroutine_fn bdev_zeroes(struct blk_node *bs, uint64_t offset,
                                    uint64_t bytes, unsigned flags)
{
    struct file_state *s = bs->opaque;
    uint32_t lbs = MAX(bs->limits.pwrite_zeroes_alignment, 1u);
    int mode = FALLOC_FL_KEEP_SIZE |
               ((flags & BLK_REQ_MAY_UNMAP) ? FALLOC_FL_PUNCH_HOLE
                                            : FALLOC_FL_ZERO_RANGE);
    int ret;

    if (offset % lbs || bytes % lbs) {
        return -ENOTSUP; /* the core writes the zeroes */
    }
    /* the kernel zeroes block devices this way only when it is cheap */
    ret = file_co_fallocate(s, mode, offset, bytes);
    if (ret == 0 || !(file_errno_unsupported(ret) || ret == -EINVAL)) {
        return ret;
    }
    if (flags & BLK_REQ_NO_FALLBACK) {
        return -ENOTSUP;
    }
    ret = file_co_range_ioctl(s, BLKZEROOUT, offset, bytes);
    return file_errno_unsupported(ret) ? -ENOTSUP : ret;
}

/* Zero a range of a regular file without writing data: punch a hole when
 * unmapping is allowed, else ZERO_RANGE (or punch + allocate).  Past the
 * end of the file the file grows, never shrinks. */
static int coroutine_fn file_co_pwrite_zeroes(struct blk_node *bs,
                                              uint64_t offset, uint64_t bytes,
                                              unsigned flags)
{
    struct file_state *s = bs->opaque;
    uint64_t end = offset + bytes;
    int64_t eof;
    int ret;

    if (s->is_bdev) {
        return bdev_zeroes(bs, offset, bytes, flags);
    }
    eof = fd_size(s->fd, false);
    if (eof < 0) {
        return eof;
    }
    if ((flags & BLK_REQ_MAY_UNMAP) && !s->no_punch_hole &&
        offset < (uint64_t)eof) {
        uint64_t punch_end = MIN(end, (uint64_t)eof);
        ret = file_co_fallocate(s, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                offset, punch_end - offset);
        if (ret == 0) {
            if (end <= (uint64_t)eof) {
                return 0;
            }
            offset = punch_end; /* the part past the end is left to grow */
        } else if (file_errno_unsupported(ret)) {
            s->no_punch_hole = true;
        } else {
            return ret;
        }
    }
    if (!s->no_zero_range) {
        ret = file_co_fallocate(s, FALLOC_FL_ZERO_RANGE, offset, end - offset);
        if (ret == 0 || !(file_errno_unsupported(ret) || ret == -EINVAL)) {
            return ret;
        }
        s->no_zero_range = true;
    }
    if (offset < (uint64_t)eof && !s->no_punch_hole) {
        /* punch, then allocate again: zeroes that stay allocated */
        uint64_t in_end = MIN(end, (uint64_t)eof);
        ret = file_co_fallocate(s, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                offset, in_end - offset);
        if (ret == 0) {
            ret = file_co_fallocate(s, 0, offset, in_end - offset);
        }
        if (ret < 0) {
            return file_errno_unsupported(ret) ? -ENOTSUP : ret;
        }
        offset = in_end;
        if (offset == end) {
            return 0;
        }
    }
    if (offset >= (uint64_t)eof) {
        /* growing the file: what fallocate adds reads as zeroes */
        ret = file_co_fallocate(s, 0, offset, end - offset);
        return file_errno_unsupported(ret) ? -ENOTSUP : ret;
    }
    return -ENOTSUP;
}

static int coroutine_fn file_co_discard(struct blk_node *bs, uint64_t offset,
                                        uint64_t bytes)
{
    struct file_state *s = bs->opaque;
    int ret;

    if (s->is_bdev) {
        ret = file_co_range_ioctl(s, BLKDISCARD, offset, bytes);
    } else if (s->no_punch_hole) {
        return 0;
    } else {
        ret = file_co_fallocate(s, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                offset, bytes);
        if (file_errno_unsupported(ret)) {
            s->no_punch_hole = true;
        }
    }
    /* discard is advisory: not being able to is not an error */
    return file_errno_unsupported(ret) || ret == -EINVAL ? 0 : ret;
}

/* ---- status, size, create ---- */

/* Data or hole at offset, from SEEK_DATA/SEEK_HOLE.  As in QEMU a protocol
 * node reports DATA or ZERO and leaves "allocated" to the format. */
static int coroutine_fn file_co_block_status(struct blk_node *bs,
                                             uint64_t offset, uint64_t bytes,
                                             uint64_t *pnum, uint64_t *map,
                                             struct blk_node **file)
{
    struct file_state *s = bs->opaque;
    uint32_t align = bs->limits.request_alignment;
    off_t data, hole;
    int ret = BLK_STATUS_DATA;

    *map = offset;
    *file = bs;
    *pnum = bytes;
    if (s->is_bdev || s->no_seek_data) {
        return BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID;
    }
    data = lseek(s->fd, offset, SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) {
            ret = BLK_STATUS_ZERO; /* trailing hole, or past the end */
        } else if (errno == EINVAL || errno == EOPNOTSUPP) {
            s->no_seek_data = true;
        }
    } else if ((uint64_t)data > offset) {
        *pnum = MIN(bytes, (uint64_t)data - offset);
        ret = BLK_STATUS_ZERO;
        if (*pnum >= align) {
            *pnum = ROUND_DOWN(*pnum, align);
        } else {
            ret = BLK_STATUS_DATA; /* a hole smaller than one block */
            *pnum = MIN(bytes, (uint64_t)align);
        }
    } else {
        hole = lseek(s->fd, offset, SEEK_HOLE);
        if (hole > (off_t)offset) {
            /* a partial block at the end of the file counts whole */
            *pnum = MIN(bytes, ROUND_UP((uint64_t)hole - offset, align));
        }
    }
    return ret | BLK_STATUS_OFFSET_VALID;
}

static int coroutine_fn file_co_truncate(struct blk_node *bs, uint64_t size,
                                         bool exact, enum blk_prealloc prealloc,
                                         struct strata_error **errp)
{
    struct file_state *s = bs->opaque;

    if (s->is_bdev) {
        int64_t cur = fd_size(s->fd, true);
        if (prealloc != BLK_PREALLOC_OFF) {
            return error_setg(errp, -ENOTSUP,
                              "Preallocation mode '%s' unsupported for this "
                              "non-regular file",
                              blk_prealloc_name(prealloc));
        }
        if (cur < 0) {
            return error_setg_errno(errp, cur,
                                    "Could not get the size of "
                                    "'%s'",
                                    s->filename);
        }
        if (size != (uint64_t)cur && exact) {
            return error_setg(errp, -ENOTSUP, "Cannot resize device files");
        }
        if (size > (uint64_t)cur) {
            return error_setg(errp, -EINVAL, "Cannot grow device files");
        }
        return 0;
    }
    int ret = file_run_truncate(s->fd, size, prealloc,
                                s->direct ? s->req_align : 1, errp);
    if (ret >= 0) {
        bs->size = size;
    }
    return ret;
}

static int64_t file_allocated_size(struct blk_node *bs)
{
    struct file_state *s = bs->opaque;
    struct stat st;

    if (fstat(s->fd, &st) < 0) {
        return -errno;
    }
    return (int64_t)st.st_blocks * 512;
}

static bool file_has_zero_init(struct blk_node *bs)
{
    struct file_state *s = bs->opaque;
    return !s->is_bdev;
}

/* Best effort, as in QEMU: file systems without the flag ignore it. */
static void set_nocow(int fd)
{
    int attr;

    if (ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0) {
        attr |= FS_NOCOW_FL;
        ioctl(fd, FS_IOC_SETFLAGS, &attr);
    }
}

/* XFS's extent size hint (QEMU sets 1 MiB by default); 0 or -errno. */
static int set_extent_size_hint(int fd, uint64_t hint)
{
#ifdef FS_IOC_FSSETXATTR
    struct fsxattr attr;

    if (hint == 0) {
        return 0;
    }
    if (hint > UINT32_MAX) {
        return -EINVAL;
    }
    if (ioctl(fd, FS_IOC_FSGETXATTR, &attr) < 0) {
        return -errno;
    }
    attr.fsx_xflags |= FS_XFLAG_EXTSIZE;
    attr.fsx_extsize = hint;
    if (ioctl(fd, FS_IOC_FSSETXATTR, &attr) < 0) {
        return -errno;
    }
#endif
    return 0;
}

/* Create (or empty) a file and give it its size.  Like QEMU, the file is
 * opened without O_TRUNC and emptied only once the lock check passed, so
 * an image in use is not destroyed. */
static int file_create(const char *filename, struct blk_opts *opts,
                       struct strata_error **errp)
{
    const char *name = strip_protocol(filename);
    const char *pa = opts_get(opts, "preallocation");
    enum blk_prealloc prealloc = BLK_PREALLOC_OFF;
    uint64_t size, hint;
    bool nocow;
    struct stat st;
    int fd, ret;

    ret = opts_get_size(opts, "size", 0, &size, errp);
    if (ret < 0) {
        return ret;
    }
    ret = opts_get_bool(opts, "nocow", false, &nocow, errp);
    if (ret < 0) {
        return ret;
    }
    ret = opts_get_size(opts, "extent_size_hint", 1024 * 1024, &hint, errp);
    if (ret < 0) {
        return ret;
    }
    if (pa && blk_parse_prealloc(pa, &prealloc) < 0) {
        return error_setg(errp, -EINVAL, "invalid parameter value: %s", pa);
    }
    if (prealloc == BLK_PREALLOC_METADATA) {
        return error_setg(errp, -ENOTSUP,
                          "Unsupported preallocation mode: metadata");
    }
    size = ROUND_UP(size, BLK_SECTOR_SIZE);
    if (size > INT64_MAX) {
        return error_setg(errp, -EFBIG, "Image size is too large");
    }

    do {
        fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return error_setg_errno(errp, -errno, "Could not create '%s'", name);
    }
    if (fstat(fd, &st) < 0) {
        ret = error_setg_errno(errp, -errno, "Could not stat '%s'", name);
        goto out;
    }
    if (file_lock_supported(fd)) {
        ret = file_lock_apply(fd, FILE_PERM_WRITE | FILE_PERM_RESIZE,
                              FILE_PERM_RESIZE, name, errp);
        if (ret < 0) {
            goto out;
        }
    }
    if (S_ISBLK(st.st_mode)) {
        /* a device keeps its size; it only has to be large enough */
        int64_t cur = fd_size(fd, true);
        if (prealloc != BLK_PREALLOC_OFF) {
            ret = error_setg(errp, -ENOTSUP,
                             "Preallocation mode '%s' "
                             "unsupported for this non-regular file",
                             blk_prealloc_name(prealloc));
        } else if (cur >= 0 && size > (uint64_t)cur) {
            ret = error_setg(errp, -EINVAL, "Cannot grow device files");
        }
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = error_setg(errp, -EINVAL,
                         "'file' driver requires '%s' to be a regular file",
                         name);
        goto out;
    }
    ret = file_run_truncate(fd, 0, BLK_PREALLOC_OFF, 1, errp);
    if (ret < 0) {
        goto out;
    }
    if (nocow) {
        set_nocow(fd);
    }
    /* only a hint that was asked for explicitly has to work */
    ret = set_extent_size_hint(fd, hint);
    if (ret < 0 && opts_has(opts, "extent_size_hint")) {
        error_setg_errno(errp, ret, "Failed to set extent size hint");
        goto out;
    }
    ret = file_run_truncate(fd, size, prealloc, 1, errp);
out:
    close(fd);
    return ret;
}

static const struct blk_opt_desc file_create_opts[] = {
    {"size", OPT_SIZE, "Virtual disk size", NULL},
    {"nocow", OPT_BOOL, "Turn off copy-on-write (valid only on btrfs)", NULL},
    {"preallocation", OPT_STRING,
     "Preallocation mode (allowed values: off, falloc, full)", NULL},
    {"extent_size_hint", OPT_SIZE,
     "Extent size hint for the image file, 0 to disable", NULL},
    {NULL, 0, NULL, NULL},
};

static const char *const file_protocols[] = {"file:", NULL};

const struct blk_driver blk_drv_file = {
    .name = "file",
    .kind = BLK_KIND_PROTOCOL,
    .state_size = sizeof(struct file_state),
    .protocols = file_protocols,
    .open = file_open,
    .close = file_close,
    .reopen = file_reopen,
    .copy_range_from = file_co_copy_range_from,
    .copy_range_to = file_co_copy_range_to,
    .create = file_create,
    .create_opts = file_create_opts,
    .preadv = file_co_preadv,
    .pwritev = file_co_pwritev,
    .pwrite_zeroes = file_co_pwrite_zeroes,
    .discard = file_co_discard,
    .flush = file_co_flush,
    .block_status = file_co_block_status,
    .truncate = file_co_truncate,
    .allocated_size = file_allocated_size,
    .has_zero_init = file_has_zero_init,
    .supported_write_flags = BLK_REQ_FUA,
    .supported_zero_flags = BLK_REQ_MAY_UNMAP | BLK_REQ_NO_FALLBACK,
};
