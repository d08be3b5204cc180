/* Scatter/gather lists for the request path.  A blk_iov describes `size`
 * bytes spread over `niov` iovecs; the buffers are not owned. */
#ifndef BLOCK_IOV_H
#define BLOCK_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk_iov {
    struct iovec *iov;
    int niov;
    int nalloc;   /* -1: iov points at `local` and cannot grow */
    size_t size;  /* sum of the iov_len */
    struct iovec local;
};

/* One buffer, no allocation. */
void blk_iov_init_buf(struct blk_iov *q, void *buf, size_t len);
/* Empty list with room for `hint` entries (allocated). */
void blk_iov_init(struct blk_iov *q, int hint);
void blk_iov_add(struct blk_iov *q, void *base, size_t len);
/* Append bytes [off, off+len) of src (entries are shared, not copied). */
void blk_iov_concat(struct blk_iov *q, const struct blk_iov *src, size_t off,
                    size_t len);
void blk_iov_reset(struct blk_iov *q);
void blk_iov_destroy(struct blk_iov *q);

size_t blk_iov_to_buf(const struct blk_iov *q, size_t off, void *buf,
                      size_t len);
size_t blk_iov_from_buf(struct blk_iov *q, size_t off, const void *buf,
                        size_t len);
size_t blk_iov_memset(struct blk_iov *q, size_t off, int c, size_t len);
/* True when every byte of the list is zero. */
bool blk_iov_is_zero(const struct blk_iov *q);
/* True when every entry's base and length are multiples of `align`. */
bool blk_iov_is_aligned(const struct blk_iov *q, size_t align);

/* Fast test for an all-zero buffer (any length, any alignment). */
bool buffer_is_zero(const void *buf, size_t len);

#endif
