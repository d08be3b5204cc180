/* Internal to the file protocol driver: its per-node state, the AIO
 * engines behind a small ops table (aio-threads.c, aio-native.c,
 * aio-uring.c) and image locking (file-lock.c). */
#ifndef BLOCK_FILE_H
#define BLOCK_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "block.h"

struct file_state;

enum file_aio_op { FILE_AIO_READ, FILE_AIO_WRITE, FILE_AIO_FSYNC };

/* An AIO engine.  rw() runs in a coroutine: it submits one preadv/pwritev
 * of at most IOV_MAX iovecs, yields until it completed and returns the byte
 * count (possibly short) or -errno; rwflags are RWF_* (RWF_DSYNC for FUA).
 * fsync() does an fdatasync the same way.  Many requests of one node may be
 * in flight at once. */
struct file_aio_ops {
    const char *name; /* the aio= value */
    /* Per-node setup on the opening thread (may create the thread's I/O
     * context); fails with a message naming the engine. */
    int (*attach)(struct file_state *s, struct strata_error **errp);
    void (*detach)(struct file_state *s);
    ssize_t (*rw)(struct file_state *s, enum file_aio_op op, uint64_t offset,
                  const struct iovec *iov, int niov, int rwflags);
    int (*fsync)(struct file_state *s);
};

extern const struct file_aio_ops file_aio_threads;
extern const struct file_aio_ops file_aio_native;
extern const struct file_aio_ops file_aio_uring; /* refuses without liburing */

/* Permission bits as QEMU numbers them: byte 100+bit holds a permission,
 * byte 200+bit refuses to share it (file-lock.c). */
enum {
    FILE_PERM_CONSISTENT_READ = 1u << 0,
    FILE_PERM_WRITE = 1u << 1,
    FILE_PERM_WRITE_UNCHANGED = 1u << 2,
    FILE_PERM_RESIZE = 1u << 3,
    FILE_PERM_ALL = 0xf,
};

struct file_state {
    int fd;
    bool is_bdev;       /* a block device rather than a regular file */
    bool direct;        /* opened with O_DIRECT */
    bool no_flush;      /* cache=unsafe: flush and FUA are no-ops */
    bool locked;        /* holds OFD lock bytes */
    bool no_rwf_dsync;  /* the kernel refused RWF_DSYNC: write + fdatasync */
    bool no_nowait;     /* RWF_NOWAIT refused: small reads use the pool too */
    bool no_seek_data;  /* SEEK_DATA unsupported: everything is data */
    bool no_zero_range; /* FALLOC_FL_ZERO_RANGE unsupported */
    bool no_punch_hole; /* FALLOC_FL_PUNCH_HOLE unsupported */
    uint32_t req_align; /* copies of the node limits, for the engines */
    uint32_t buf_align;
    const struct file_aio_ops *aio;
    void *aio_ctx;  /* the engine's per-thread context (native, uring) */
    char *filename; /* for messages */
};

/* Take the lock bytes for `perm`/`unshared` on fd and check that no other
 * open file description conflicts; on failure nothing stays locked and
 * errp says which permission is in use ("Failed to get "write" lock ...").
 * -ENOTSUP when the file system has no OFD locks. */
int file_lock_apply(int fd, unsigned perm, unsigned unshared,
                    const char *filename, struct strata_error **errp);
/* Reopen: move the locks of old_fd (old_perm/old_unshared) to new_fd with
 * new_perm/new_unshared, checking only what is new against other opens;
 * on failure old_fd keeps its old bytes and new_fd holds none. */
int file_lock_change(int old_fd, int new_fd, unsigned old_perm,
                     unsigned old_unshared, unsigned new_perm,
                     unsigned new_unshared, const char *filename,
                     struct strata_error **errp);
/* Drop every lock byte this fd holds. */
void file_lock_release(int fd);
/* True when the kernel and file system behind fd support OFD locks. */
bool file_lock_supported(int fd);
/* Human name of a single permission bit, as QEMU prints it. */
const char *file_perm_name(unsigned bit);

/* Blocking calls on the thread pool (aio-threads.c), whatever the engine:
 * 0 or -errno. */
int coroutine_fn file_co_fallocate(struct file_state *s, int mode,
                                   uint64_t offset, uint64_t bytes);
/* BLKZEROOUT, BLKDISCARD: an ioctl taking a {start, length} range. */
int coroutine_fn file_co_range_ioctl(struct file_state *s, unsigned long req,
                                     uint64_t offset, uint64_t bytes);
/* Resize a regular file to `size`, preallocating growth as QEMU does
 * (align: O_DIRECT granularity of fd, else 1); errp says what failed. */
int file_run_truncate(int fd, uint64_t size, enum blk_prealloc prealloc,
                      uint32_t align, struct strata_error **errp);
/* Errors meaning "this kernel or file system cannot do that". */
bool file_errno_unsupported(int ret);

/* Wake a coroutine waiting for an AIO completion: enter it directly when it
 * lives on this thread, otherwise through its home loop. */
void file_aio_wake(struct coroutine *co);

/* Offloaded copies (file-copy.c), the driver's copy_range ops. */
int coroutine_fn file_co_copy_range_from(struct blk_node *bs,
                                         uint64_t src_off,
                                         struct blk_node *dst,
                                         uint64_t dst_off, uint64_t bytes);
int coroutine_fn file_co_copy_range_to(struct blk_node *src,
                                       uint64_t src_off,
                                       struct blk_node *bs,
                                       uint64_t dst_off, uint64_t bytes);

#endif
