/* The engine: nodes, drivers and the request path.
 *
 * An open image is a graph of nodes: a format node (raw, qcow2, ...) over a
 * protocol node (file, null, ...), possibly through filter nodes (fault),
 * with an optional backing node.  Every request goes through the checks in
 * io.c (bounds, read-only, alignment, splitting to the driver's limits)
 * before a driver callback sees it, so drivers can trust their arguments:
 *
 *   - offset and bytes are multiples of limits.request_alignment and the
 *     range lies inside [0, size) (writes are not extended by the core);
 *   - bytes <= limits.max_transfer (when set) and never 0;
 *   - every iovec of qiov is aligned to limits.buf_alignment;
 *   - writes only reach drivers of nodes opened read-write;
 *   - flags hold only bits the driver declared in supported_*_flags.
 *
 * Driver callbacks on the data path are coroutine_fn: they run inside a
 * coroutine on the node's loop and may yield while I/O is in flight; many
 * run concurrently on one node.
 */
#ifndef BLOCK_BLOCK_H
#define BLOCK_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "coroutine.h"
#include "error.h"
#include "iov.h"
#include "json.h"
#include "options.h"

#define BLK_SECTOR_SIZE 512
#define BLK_PROBE_BUF_SIZE 2048 /* bytes handed to probe() */
#define BLK_MAX_CHAIN_DEPTH 64  /* longer backing chains are refused */

/* Open flags (node->flags). */
enum {
    BLK_O_RDWR = 1u << 0,
    BLK_O_NOCACHE = 1u << 1,      /* O_DIRECT on protocol nodes */
    BLK_O_NO_FLUSH = 1u << 2,     /* cache=unsafe: flushes succeed at once */
    BLK_O_WRITETHROUGH = 1u << 3, /* every write is made durable (FUA) */
    BLK_O_NO_BACKING = 1u << 4,   /* leave the backing chain closed */
    BLK_O_FORCE_SHARE = 1u << 5,  /* -U: allow other writers (read-only) */
    BLK_O_NO_LOCK = 1u << 6,      /* take no OFD locks */
    BLK_O_PROBED = 1u << 7,       /* format was guessed: raw guards sector 0 */
    BLK_O_CREATE = 1u << 8,       /* opened by a create(); no probing guards */
    BLK_O_CHECK = 1u << 9,        /* opened by check: a corrupt image may be
                                   * opened read-write, a dirty one is not
                                   * repaired on open (QEMU's BDRV_O_CHECK) */
    BLK_O_NO_IO = 1u << 10,       /* opened to be described (info): no
                                   * guest data is read or written, so an
                                   * encrypted image needs no key (QEMU's
                                   * BDRV_O_NO_IO) */
};

/* Request flags. */
enum {
    BLK_REQ_FUA = 1u << 0,         /* write: durable on completion */
    BLK_REQ_MAY_UNMAP = 1u << 1,   /* write_zeroes: may deallocate */
    BLK_REQ_NO_FALLBACK = 1u << 2, /* write_zeroes: -ENOTSUP unless cheap */
};

/* check(): what to repair (qemu-img check -r leaks|all). */
enum {
    BLK_FIX_LEAKS = 1u << 0,
    BLK_FIX_ERRORS = 1u << 1,
};

/* Block status bits (returned by block_status). */
enum {
    BLK_STATUS_DATA = 1u << 0,         /* data is stored for this range */
    BLK_STATUS_ZERO = 1u << 1,         /* reads as zero */
    BLK_STATUS_ALLOCATED = 1u << 2,    /* this layer decides the content */
    BLK_STATUS_OFFSET_VALID = 1u << 3, /* *map is an offset into *file */
    BLK_STATUS_RECURSE = 1u << 4,      /* driver only: ask *file at *map */
    BLK_STATUS_COMPRESSED = 1u << 5,   /* stored compressed */
};

enum blk_kind { BLK_KIND_PROTOCOL, BLK_KIND_FORMAT, BLK_KIND_FILTER };

enum blk_prealloc {
    BLK_PREALLOC_OFF,
    BLK_PREALLOC_METADATA,
    BLK_PREALLOC_FALLOC,
    BLK_PREALLOC_FULL,
};
int blk_parse_prealloc(const char *s, enum blk_prealloc *out);
const char *blk_prealloc_name(enum blk_prealloc p);

/* Limits a driver sets in open() (units: bytes). */
struct blk_limits {
    uint32_t request_alignment; /* offsets/lengths seen by the driver; >= 1 */
    uint32_t buf_alignment;     /* memory alignment of buffers; >= 1 */
    uint64_t max_transfer;      /* per request, 0 = unlimited */
    uint64_t opt_transfer;      /* preferred size for large copies, 0 = none */
    uint64_t max_pwrite_zeroes; /* 0 = unlimited */
    uint64_t max_discard;       /* 0 = unlimited */
    uint32_t pwrite_zeroes_alignment; /* preferred granularity, 0 = none */
    uint32_t discard_alignment;       /* granularity below which discard is a no-op */
};

struct blk_node;

/* The result of a consistency check, as QEMU's BdrvCheckResult: counts of
 * problems found and fixed, and the fragmentation figures of `check`. */
struct blk_check_result {
    int corruptions;        /* errors left after the check (and repair) */
    int leaks;              /* leaked clusters left */
    int check_errors;       /* the check itself failed to read something */
    int corruptions_fixed;
    int leaks_fixed;
    int64_t image_end_offset; /* 0: unknown */
    uint64_t total_clusters, allocated_clusters, fragmented_clusters,
        compressed_clusters;  /* all 0: the format has no such figures */
    char *messages;         /* malloc'd lines the check reports as it goes
                             * (what QEMU prints on stderr), or NULL; the
                             * caller frees it.  A line starting with '\1'
                             * is an error to print after the program's
                             * name ("strata-img: ...") */
};

/* An internal snapshot (qcow2), as `snapshot -l` and `info` list it. */
struct blk_snapshot {
    char *id;               /* "1", "2", ... (owned) */
    char *name;             /* (owned) */
    uint64_t vm_state_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount;        /* UINT64_MAX: not recorded */
    uint64_t disk_size;     /* virtual size when taken */
};
void blk_snapshot_list_free(struct blk_snapshot *list, int n);

/* The sizes `measure` reports, in bytes. */
struct blk_measure {
    uint64_t required;        /* for the allocated data of the input */
    uint64_t fully_allocated; /* if every cluster were allocated */
    uint64_t bitmaps;         /* for persistent bitmaps (qcow2) */
    bool has_bitmaps;         /* the output format stores bitmaps */
};

/* Progress of a long operation: done out of total (any unit). */
typedef void blk_progress_fn(void *opaque, uint64_t done, uint64_t total);

/* Information a format reports for `info`. */
struct blk_info {
    uint32_t cluster_size;         /* 0 when the format has none */
    bool is_dirty;
    bool encrypted;                /* data is encrypted (info's "encrypted") */
    struct json *format_specific;  /* {"type":..., "data": {...}} or NULL; owned */
};

struct blk_driver {
    const char *name;
    const char *const *aliases; /* NULL-terminated, or NULL */
    enum blk_kind kind;
    size_t state_size;          /* bytes of zeroed driver state, node->opaque */
    const char *const *protocols; /* URI prefixes handled ("null-co://"), NULL-terminated */

    /* Score 0..100 for the first BLK_PROBE_BUF_SIZE bytes (fewer if the
     * file is shorter); raw answers 1.  Formats only. */
    int (*probe)(const uint8_t *buf, size_t len, const char *filename);

    /* Open: node->file is already open for formats and filters; the
     * driver consumes its own keys from opts and sets size and limits. */
    int (*open)(struct blk_node *bs, struct blk_opts *opts,
                struct strata_error **errp);
    /* Release driver state.  The core has flushed the node and its
     * subtree just before; a driver that writes anything here (a header
     * update) must flush its file itself. */
    void (*close)(struct blk_node *bs);

    /* Create an image; opts hold "size" and the create options. */
    int (*create)(const char *filename, struct blk_opts *opts,
                  struct strata_error **errp);
    const struct blk_opt_desc *create_opts;

    /* The data path (coroutine_fn).  See the guarantees at the top. */
    int (*preadv)(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                  struct blk_iov *qiov, unsigned flags);
    int (*pwritev)(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                   struct blk_iov *qiov, unsigned flags);
    /* NULL: the core writes zero buffers (unless BLK_REQ_NO_FALLBACK). */
    int (*pwrite_zeroes)(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                         unsigned flags);
    /* NULL: discard is a successful no-op. */
    int (*discard)(struct blk_node *bs, uint64_t offset, uint64_t bytes);
    /* Flush this node's own state; the core then flushes its children. */
    int (*flush)(struct blk_node *bs);
    /* Status of the first *pnum bytes of [offset, offset+bytes); *pnum > 0
     * on success.  NULL: "allocated data" for protocols, "ask the file"
     * for filters. */
    int (*block_status)(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                        uint64_t *pnum, uint64_t *map, struct blk_node **file);
    /* Resize; on success the driver sets bs->size to the size the node
     * really has (a non-exact shrink of a device keeps its length). */
    int (*truncate)(struct blk_node *bs, uint64_t size, bool exact,
                    enum blk_prealloc prealloc, struct strata_error **errp);

    /* Bytes the image occupies on the host (actual-size); NULL: the sum
     * over its file child, -ENOTSUP for protocols. */
    int64_t (*allocated_size)(struct blk_node *bs);
    /* Does a newly created image read as zeroes?  NULL: false. */
    bool (*has_zero_init)(struct blk_node *bs);
    int (*get_info)(struct blk_node *bs, struct blk_info *info);

    /* ---- optional operations; NULL: the core answers -ENOTSUP ---- */

    /* Write compressed data (convert -c, coroutine_fn): offset is aligned
     * to the cluster size and bytes is one cluster (less at the end of the
     * image); the core does no splitting or read-modify-write. */
    int (*pwritev_compressed)(struct blk_node *bs, uint64_t offset,
                              uint64_t bytes, struct blk_iov *qiov);

    /* Internal snapshots (coroutine_fn).  create fills in the id when
     * sn->id is NULL; list returns the count and a malloc'd array. */
    int (*snapshot_create)(struct blk_node *bs, struct blk_snapshot *sn,
                           struct strata_error **errp);
    int (*snapshot_goto)(struct blk_node *bs, const char *id_or_name,
                         struct strata_error **errp);
    int (*snapshot_delete)(struct blk_node *bs, const char *id,
                           const char *name, struct strata_error **errp);
    int (*snapshot_list)(struct blk_node *bs, struct blk_snapshot **list);
    /* Make a read-only node read an internal snapshot's content (at the
     * current virtual size) until it is closed, as QEMU's
     * bdrv_snapshot_load_tmp: id and name (either may be NULL) must both
     * match; -ENOENT "Can't find snapshot".  coroutine_fn. */
    int (*snapshot_load_tmp)(struct blk_node *bs, const char *id,
                             const char *name, struct strata_error **errp);

    /* Consistency check with optional repair (BLK_FIX_*), coroutine_fn.
     * Returns 0 when the check ran (whatever it found), -errno when it
     * could not. */
    int (*check)(struct blk_node *bs, struct blk_check_result *res,
                 unsigned fix);

    /* Change creation options of an open (read-write) image: amend -o.
     * Options the format cannot change give a clear error. */
    int (*amend)(struct blk_node *bs, struct blk_opts *opts, bool force,
                 blk_progress_fn *progress, void *opaque,
                 struct strata_error **errp);

    /* Sizes a new image of this format would need for the create options
     * in opts ("size" when in is NULL) holding the data of `in`. */
    int (*measure)(struct blk_opts *opts, struct blk_node *in,
                   struct blk_measure *out, struct strata_error **errp);

    /* Rewrite the backing file name and format recorded in the image
     * (NULL file: no backing). */
    int (*change_backing_file)(struct blk_node *bs, const char *backing_file,
                               const char *backing_fmt,
                               struct strata_error **errp);

    /* Drop every allocation so the image reads from its backing again
     * (after commit); coroutine_fn. */
    int (*make_empty)(struct blk_node *bs, struct strata_error **errp);

    /* Switch an open node between read-only and read-write (protocols
     * reopen their descriptor and locks; formats prepare their metadata).
     * The core calls the children first. */
    int (*reopen)(struct blk_node *bs, bool read_write,
                  struct strata_error **errp);

    /* Copy [src_off, src_off+bytes) of src to dst_off of dst without the
     * data passing through our memory (copy_file_range), coroutine_fn.
     * The core calls src's copy_range_from; a format that maps straight
     * onto its file (raw) forwards to its child, and a protocol hands over
     * to dst's copy_range_to, which forwards down to dst's protocol.
     * -ENOTSUP anywhere: the caller copies the ordinary way. */
    int (*copy_range_from)(struct blk_node *bs, uint64_t src_off,
                           struct blk_node *dst, uint64_t dst_off,
                           uint64_t bytes);
    int (*copy_range_to)(struct blk_node *src, uint64_t src_off,
                         struct blk_node *bs, uint64_t dst_off,
                         uint64_t bytes);

    unsigned supported_write_flags; /* BLK_REQ_FUA */
    unsigned supported_zero_flags;  /* BLK_REQ_FUA | BLK_REQ_MAY_UNMAP */
};

/* An in-flight request, tracked so unaligned read-modify-write cycles are
 * serialised against overlapping requests. */
struct blk_tracked_req {
    uint64_t start, end; /* bytes, aligned outward to request_alignment */
    bool serialising;
    struct coroutine *co;
    struct blk_tracked_req *next, *prev;
    struct co_queue waiters;
};

struct blk_node {
    const struct blk_driver *drv;
    void *opaque;            /* driver state, drv->state_size bytes */
    char *filename;          /* as opened (after resolving a backing name) */
    struct blk_node *file;   /* the child below a format or filter (owned) */
    struct blk_node *backing;/* backing image (owned), or NULL */
    char *backing_file;      /* backing name recorded in the image, or NULL */
    char *backing_format;    /* its format, or NULL */
    struct blk_opts *options;/* this node's open options (owned) */
    unsigned flags;          /* BLK_O_* */
    bool read_only;
    uint64_t size;           /* virtual size in bytes */
    struct blk_limits limits;
    struct loop *loop;       /* the loop this node is used from */

    /* request tracking (io.c) */
    struct blk_tracked_req *tracked;
    unsigned in_flight;
    struct co_queue drain_waiters;
};

/* ---- drivers ---- */

/* The driver table: every built-in driver, NULL-terminated. */
extern const struct blk_driver *const blk_driver_table[];
const struct blk_driver *blk_find_driver(const char *name); /* or alias */
/* The protocol driver for a filename ("null-co://", else file). */
const struct blk_driver *blk_find_protocol(const char *filename);
/* Pick the format of an open protocol node by probe score. */
int blk_probe_format(struct blk_node *file, const struct blk_driver **drv,
                     struct strata_error **errp);
/* Score buf against every format other than `except` (NULL for none);
 * returns the best driver with score > 1, or NULL. */
const struct blk_driver *blk_probe_buf(const uint8_t *buf, size_t len,
                                       const char *filename,
                                       const struct blk_driver *except);

/* Parse a cache mode (writeback, writethrough, none, directsync, unsafe)
 * into BLK_O_NOCACHE/BLK_O_NO_FLUSH/BLK_O_WRITETHROUGH bits. */
int blk_parse_cache_mode(const char *mode, unsigned *flags);
/* aio=threads: buffered reads of up to `bytes` whose data is in the page
 * cache are copied on the calling thread rather than by a worker (default
 * 64 KiB, metadata-sized).  A batch program whose loop thread is otherwise
 * idle (strata-img) raises it: that thread then does the reading while
 * workers write, instead of more workers than cores copying at once. */
void blk_set_inline_read_max(size_t bytes);

/* ---- opening and creating ---- */

/* Open an image.  opts (borrowed, may be NULL) hold open options:
 * "driver" (format; absent = probe), "file.*" for the child,
 * "backing" ("" = none). filename may be NULL when opts hold
 * "file.filename". */
int blk_open(struct blk_node **out, const char *filename,
             const struct blk_opts *opts, unsigned flags,
             struct strata_error **errp);
/* Close a node and everything below it (waits for in-flight requests). */
void blk_close(struct blk_node *bs);
/* For format drivers: open bs->backing from bs->backing_file/format,
 * resolved relative to bs->filename; refuses loops and absurd depth. */
int blk_open_backing(struct blk_node *bs, struct strata_error **errp);
/* A "json:{...}" name (QEMU's pseudo-protocol: the image's open options
 * as a JSON object)?  blk_open and backing files accept them. */
bool blk_is_json_filename(const char *filename);
/* Add the options of a json: name to opts (nested objects become dotted
 * keys; keys opts already holds keep their value).  1 if it was one, 0 if
 * filename is an ordinary name, or -errno for bad JSON. */
int blk_json_filename_opts(const char *filename, struct blk_opts *opts,
                           struct strata_error **errp);
/* "dir/of/overlay" + relative backing name; absolute names (and json:
 * names) unchanged. */
char *blk_resolve_backing_name(const char *overlay, const char *backing);
/* Create an image of format fmt; opts hold "size" and create options. */
int blk_create(const char *filename, const char *fmt, struct blk_opts *opts,
               struct strata_error **errp);
/* The create options of format drv over protocol proto (may be NULL):
 * the format's, then those of the protocol it lacks, as QEMU appends the
 * two lists.  NULL-name terminated; the caller frees the array. */
struct blk_opt_desc *blk_create_opt_list(const struct blk_driver *drv,
                                         const struct blk_driver *proto);
/* Create the protocol-level file for a format's create(). */
int blk_create_file(const char *filename, struct blk_opts *opts,
                    struct strata_error **errp);
/* Open that file (its protocol driver, no format) for a create() to write
 * the new image: read-write, BLK_O_CREATE, plus flags. */
int blk_open_created_file(struct blk_node **out, const char *filename,
                          unsigned flags, struct strata_error **errp);

/* ---- the request path (coroutine_fn) ---- */

int coroutine_fn blk_co_preadv(struct blk_node *bs, uint64_t offset,
                               uint64_t bytes, struct blk_iov *qiov,
                               unsigned flags);
int coroutine_fn blk_co_pwritev(struct blk_node *bs, uint64_t offset,
                                uint64_t bytes, struct blk_iov *qiov,
                                unsigned flags);
int coroutine_fn blk_co_pread(struct blk_node *bs, uint64_t offset,
                              uint64_t bytes, void *buf, unsigned flags);
int coroutine_fn blk_co_pwrite(struct blk_node *bs, uint64_t offset,
                               uint64_t bytes, const void *buf,
                               unsigned flags);
int coroutine_fn blk_co_pwrite_zeroes(struct blk_node *bs, uint64_t offset,
                                      uint64_t bytes, unsigned flags);
int coroutine_fn blk_co_discard(struct blk_node *bs, uint64_t offset,
                                uint64_t bytes);
int coroutine_fn blk_co_flush(struct blk_node *bs);
/* Status of this node alone (no backing), following RECURSE into the file:
 * returns the BLK_STATUS_* bits of the first *pnum bytes.  map/file may be
 * NULL. */
int coroutine_fn blk_co_block_status(struct blk_node *bs, uint64_t offset,
                                     uint64_t bytes, uint64_t *pnum,
                                     uint64_t *map, struct blk_node **file);
/* Status through the chain from bs down to (not including) base: ALLOCATED
 * if some layer above base decides the content; *depth is that layer's
 * distance from bs (0 = bs), or the chain length when none does. */
int coroutine_fn blk_co_block_status_above(struct blk_node *bs,
                                           struct blk_node *base,
                                           uint64_t offset, uint64_t bytes,
                                           uint64_t *pnum, uint64_t *map,
                                           struct blk_node **file, int *depth);
int coroutine_fn blk_co_truncate(struct blk_node *bs, uint64_t size,
                                 bool exact, enum blk_prealloc prealloc,
                                 struct strata_error **errp);
/* For format drivers: read [offset, offset+bytes) of the virtual disk from
 * the backing chain, zero-filling where it has none or past its end. */
int coroutine_fn blk_co_read_backing(struct blk_node *bs, uint64_t offset,
                                     uint64_t bytes, struct blk_iov *qiov);
/* Wait until no request is in flight on bs. */
void coroutine_fn blk_co_drain(struct blk_node *bs);
/* Copy between two nodes without a bounce through memory when both sides
 * support it (see copy_range_from); -ENOTSUP when not. */
int coroutine_fn blk_co_copy_range(struct blk_node *src, uint64_t src_off,
                                   struct blk_node *dst, uint64_t dst_off,
                                   uint64_t bytes);
/* Cache hints for bulk copies (block/file-copy.c); nothing changes what
 * any node reads or how durable it is (flush still decides that).
 * writeback: start writing the host-file ranges behind [offset, +bytes)
 * of bs out now, so a later flush waits less; with drop, wait for them
 * and evict them from the page cache (streaming writes that recycle
 * memory).  Ranges not backed by a plain file are skipped.
 * drop_cache: evict bs's whole file (clean pages only).  0 or -errno. */
int coroutine_fn blk_co_writeback(struct blk_node *bs, uint64_t offset,
                                  uint64_t bytes, bool drop);
int coroutine_fn blk_co_drop_cache(struct blk_node *bs);
/* Compressed write of one cluster (see pwritev_compressed). */
int coroutine_fn blk_co_pwritev_compressed(struct blk_node *bs,
                                           uint64_t offset, uint64_t bytes,
                                           struct blk_iov *qiov);

/* Synchronous wrappers: callable in or out of coroutine context. */
int blk_preadv(struct blk_node *bs, uint64_t offset, uint64_t bytes,
               struct blk_iov *qiov, unsigned flags);
int blk_pwritev(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                struct blk_iov *qiov, unsigned flags);
int blk_pread(struct blk_node *bs, uint64_t offset, uint64_t bytes,
              void *buf, unsigned flags);
int blk_pwrite(struct blk_node *bs, uint64_t offset, uint64_t bytes,
               const void *buf, unsigned flags);
int blk_pwrite_zeroes(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                      unsigned flags);
int blk_discard(struct blk_node *bs, uint64_t offset, uint64_t bytes);
int blk_flush(struct blk_node *bs);
int blk_block_status(struct blk_node *bs, uint64_t offset, uint64_t bytes,
                     uint64_t *pnum, uint64_t *map, struct blk_node **file);
int blk_block_status_above(struct blk_node *bs, struct blk_node *base,
                           uint64_t offset, uint64_t bytes, uint64_t *pnum,
                           uint64_t *map, struct blk_node **file, int *depth);
int blk_truncate(struct blk_node *bs, uint64_t size, bool exact,
                 enum blk_prealloc prealloc, struct strata_error **errp);
void blk_drain(struct blk_node *bs);
int blk_pwrite_compressed(struct blk_node *bs, uint64_t offset,
                          uint64_t bytes, const void *buf);
/* Run fn(opaque) in a coroutine on this thread's loop (or directly when
 * already in one) and return its result: sync wrappers for the optional
 * operations are built on this. */
int blk_run_co(int coroutine_fn (*fn)(void *opaque), void *opaque);

/* ---- optional operations (ops.c): -ENOTSUP with a message naming the
 * format when its driver lacks the operation ---- */

int blk_snapshot_create(struct blk_node *bs, struct blk_snapshot *sn,
                        struct strata_error **errp);
int blk_snapshot_goto(struct blk_node *bs, const char *id_or_name,
                      struct strata_error **errp);
int blk_snapshot_delete(struct blk_node *bs, const char *id,
                        const char *name, struct strata_error **errp);
/* Returns the count (>= 0) and a malloc'd array (NULL when 0). */
int blk_snapshot_list(struct blk_node *bs, struct blk_snapshot **list);
int blk_check(struct blk_node *bs, struct blk_check_result *res,
              unsigned fix, struct strata_error **errp);
int blk_amend(struct blk_node *bs, struct blk_opts *opts, bool force,
              blk_progress_fn *progress, void *opaque,
              struct strata_error **errp);
int blk_measure(const struct blk_driver *drv, struct blk_opts *opts,
                struct blk_node *in, struct blk_measure *out,
                struct strata_error **errp);
int blk_change_backing_file(struct blk_node *bs, const char *backing_file,
                            const char *backing_fmt,
                            struct strata_error **errp);
int blk_make_empty(struct blk_node *bs, struct strata_error **errp);
/* Make bs and its subtree read-write or read-only again (commit opens its
 * base read-write this way, the same node the overlay's chain holds). */
int blk_reopen(struct blk_node *bs, bool read_write,
               struct strata_error **errp);

/* ---- queries ---- */

int64_t blk_allocated_size(struct blk_node *bs);
bool blk_has_zero_init(struct blk_node *bs);
int blk_get_info(struct blk_node *bs, struct blk_info *info);
void blk_info_release(struct blk_info *info);
/* The bottom-most node (the protocol node under formats and filters). */
struct blk_node *blk_protocol_node(struct blk_node *bs);
/* Number of layers in the backing chain, bs included. */
int blk_chain_length(struct blk_node *bs);

/* Allocate a buffer aligned for bs (O_DIRECT-safe); free with free(). */
void *blk_alloc_buf(struct blk_node *bs, size_t len);

#endif
