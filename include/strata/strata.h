/* libstrata: the public API.
 *
 * Every function returns 0 (or a non-negative count) on success and a
 * negative errno on failure.  Functions that can fail for a reason worth
 * explaining also take a `struct strata_error **errp`: when it is non-NULL
 * and *errp is NULL, a failure stores a newly allocated error there, which
 * the caller releases with strata_error_free().  The library never prints
 * and never exits.
 *
 * The synchronous calls below may be used from any thread that is not
 * already running libstrata's event loop; a node is used from one thread at
 * a time.
 */
#ifndef STRATA_STRATA_H
#define STRATA_STRATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_VERSION_STRING "0.1.0"

/* ---- errors ---- */

/* An error: the negative errno and a message naming what failed. */
struct strata_error {
    int code;  /* negative errno */
    char *msg; /* owned, NUL-terminated, no trailing newline */
};

void strata_error_free(struct strata_error *err);

/* ---- opening images ---- */

struct strata_node;

/* Flags for strata_open(). */
enum {
    STRATA_OPEN_RDWR = 1u << 0,        /* open for writing */
    STRATA_OPEN_NO_BACKING = 1u << 1,  /* do not open the backing chain */
    STRATA_OPEN_FORCE_SHARE = 1u << 2, /* -U: share with writers (read-only only) */
    STRATA_OPEN_NO_LOCK = 1u << 3,     /* take no image locks at all */
};

/* Open `filename` (a path or a protocol URI) as format `fmt` (NULL probes).
 * `options` is an optional "key=value,..." string of open options in
 * QEMU's dotted form ("file.aio=io_uring,cache.direct=on").  The cache mode
 * string ("writeback", "none", ...; NULL for writeback) selects O_DIRECT and
 * flush behaviour as QEMU's -t does. */
int strata_open(struct strata_node **out, const char *filename,
                const char *fmt, const char *options, const char *cache,
                unsigned flags, struct strata_error **errp);
void strata_close(struct strata_node *node);

/* Create an image of `size` bytes with creation options "k=v,...". */
int strata_create(const char *filename, const char *fmt, uint64_t size,
                  const char *options, struct strata_error **errp);

/* ---- I/O ---- */

enum {
    STRATA_WRITE_FUA = 1u << 0,     /* the write is durable when it returns */
    STRATA_ZERO_MAY_UNMAP = 1u << 1 /* write_zeroes may deallocate */
};

/* Block status bits, as from strata_block_status(). */
enum {
    STRATA_STATUS_DATA = 1u << 0,      /* reads return data stored somewhere */
    STRATA_STATUS_ZERO = 1u << 1,      /* reads return zeroes */
    STRATA_STATUS_ALLOCATED = 1u << 2, /* allocated in this node, not a backing */
    STRATA_STATUS_OFFSET_VALID = 1u << 3,
};

int64_t strata_size(struct strata_node *node);
const char *strata_format(struct strata_node *node);
int strata_pread(struct strata_node *node, void *buf, size_t len,
                 uint64_t offset);
int strata_pwrite(struct strata_node *node, const void *buf, size_t len,
                  uint64_t offset, unsigned flags);
int strata_pwrite_zeroes(struct strata_node *node, uint64_t offset,
                         uint64_t len, unsigned flags);
int strata_discard(struct strata_node *node, uint64_t offset, uint64_t len);
int strata_flush(struct strata_node *node);
int strata_truncate(struct strata_node *node, uint64_t size,
                    struct strata_error **errp);
/* Status of [offset, offset+len) in this node's view: returns the status
 * bits (>= 0) of the first *pnum bytes, or a negative errno. */
int strata_block_status(struct strata_node *node, uint64_t offset,
                        uint64_t len, uint64_t *pnum);

/* Parse a size with an optional k/M/G/T/P/E suffix (powers of 1024). */
int strata_parse_size(const char *str, uint64_t *out);

#ifdef __cplusplus
}
#endif

#endif
