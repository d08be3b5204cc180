/* Internal to the vmdk driver: on-disk constants, the driver state and the
 * functions the vmdk-*.c files share.
 *
 * A vmdk image is a descriptor (a text file, or text embedded in the first
 * sparse extent) listing extents in virtual-disk order.  Extents are flat
 * (a window of a plain file), hosted sparse (VMDK4 "KDMV": grain directory
 * -> grain tables -> grains, optionally zlib-compressed grains with
 * markers = streamOptimized), ESX sparse ("COWD", read) or seSparse
 * (read).  Layout as VMware's "Virtual Disk Format 5.0" and QEMU's
 * block/vmdk.c describe it; files written here match qemu-img's.
 *
 * Locking: grain directories, the grain-table cache and allocation state
 * are guarded by s->lock.  Data I/O to allocated grains runs without it. */
#ifndef FORMATS_VMDK_H
#define FORMATS_VMDK_H

#include <stdbool.h>
#include <stdint.h>

#include "block.h"

#define VMDK3_MAGIC 0x434f5744u /* "COWD", big-endian view */
#define VMDK4_MAGIC 0x4b444d56u /* "KDMV" */
#define VMDK4_COMPRESSION_DEFLATE 1
#define VMDK4_FLAG_NL_DETECT (1u << 0)
#define VMDK4_FLAG_RGD (1u << 1)
#define VMDK4_FLAG_ZERO_GRAIN (1u << 2)
#define VMDK4_FLAG_COMPRESS (1u << 16)
#define VMDK4_FLAG_MARKER (1u << 17)
#define VMDK4_GD_AT_END 0xffffffffffffffffull
#define VMDK_GTE_ZEROED 1u
#define VMDK_MAX_EXTENT_SECTORS (1ull << 32) /* 32-bit grain table entries */
#define VMDK_DESC_SIZE (20 * 512)            /* embedded descriptor, bytes */
#define VMDK_MAX_DESC_FILE (1u << 20)        /* descriptor files we parse */
#define VMDK_MAX_EXTENTS 4096
#define VMDK_MAX_GRAIN_SECTORS 0x200000ull   /* 1 GiB: QEMU's limit */
#define VMDK_MAX_GD_ENTRIES (32u * 1024 * 1024)
#define VMDK_L2_CACHE_SIZE 16
#define VMDK_MARKER_SIZE 12                  /* lba (8) + size (4) */

enum vmdk_marker_type {
    VMDK_MARKER_EOS = 0,
    VMDK_MARKER_GT = 1,
    VMDK_MARKER_GD = 2,
    VMDK_MARKER_FOOTER = 3,
};

enum vmdk_kind {
    VMDK_EXT_FLAT,     /* FLAT, VMFS: a window of a plain file */
    VMDK_EXT_SPARSE,   /* VMDK4 hosted sparse (incl. streamOptimized) */
    VMDK_EXT_COWD,     /* VMDK3/ESX sparse: read only */
    VMDK_EXT_SESPARSE, /* seSparse: read only */
};

/* Result of looking up one grain. */
enum vmdk_grain {
    VMDK_GRAIN_UNALLOC, /* not in this layer */
    VMDK_GRAIN_ZERO,    /* zeroed grain (reads as zeroes, hides backing) */
    VMDK_GRAIN_DATA,    /* stored at *host (bytes) */
};

struct vmdk_extent {
    struct blk_node *file;  /* bs->file or an extent node we own */
    bool owned;             /* file was opened by us (close it) */
    enum vmdk_kind kind;
    char *type;             /* extent type from the descriptor, or NULL */
    bool compressed, has_marker, has_zero_grain;
    int version;
    uint64_t start, end;    /* virtual bytes covered */
    uint64_t flat_offset;   /* FLAT: byte offset in the file */

    /* sparse: sizes in sectors unless said otherwise */
    uint64_t grain_sectors;
    uint32_t gt_entries;    /* entries per grain table */
    unsigned entry_size;    /* 4, or 8 for seSparse */
    uint64_t gd_offset;     /* bytes */
    uint64_t rgd_offset;    /* bytes, 0 = no redundant directory */
    uint32_t gd_entries;
    void *gd;               /* host order: uint32_t[] or uint64_t[] */
    uint32_t *rgd;
    uint64_t se_gt_offset, se_grains_offset; /* seSparse, sectors */
    uint64_t next_sector;   /* where the next grain is appended */
    uint64_t desc_offset, desc_size; /* embedded descriptor, bytes */

    /* grain-table cache (s->lock), least recently used out: requests
     * walk the disk in order, several tables at a time */
    uint8_t *gt_cache;
    uint64_t gt_cache_off[VMDK_L2_CACHE_SIZE]; /* GT byte offsets, 0 = free */
    uint64_t gt_cache_used[VMDK_L2_CACHE_SIZE]; /* gt_clock at last use */
    uint64_t gt_clock;

    uint64_t stream_end;    /* compressed: bytes the file must reach */
};

struct vmdk_state {
    struct co_mutex lock;
    int nb_extents;
    struct vmdk_extent *extents;
    char *create_type;
    uint32_t cid, parent_cid;
    bool cid_updated;       /* a new CID was written by this open */
    bool cid_valid;         /* the backing image's CID is our parentCID */
    bool desc_in_file;      /* descriptor is bs->file (not embedded) */
    uint64_t desc_offset;   /* of the descriptor in bs->file, bytes */
    uint64_t desc_size;     /* room for it there (embedded), bytes */

    /* streamOptimized appends: compressed grains are written in the order
     * their requests arrived, though compressed in parallel */
    uint64_t stream_ticket, stream_serving;
    struct co_queue stream_waiters;
};

/* little-endian access */
static inline uint16_t vmdk_ld16(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | b[1] << 8);
}
static inline uint32_t vmdk_ld32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}
static inline uint64_t vmdk_ld64(const void *p)
{
    return vmdk_ld32(p) | (uint64_t)vmdk_ld32((const uint8_t *)p + 4) << 32;
}
static inline void vmdk_st16(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}
static inline void vmdk_st32(void *p, uint32_t v)
{
    uint8_t *b = p;
    for (int i = 0; i < 4; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
}
static inline void vmdk_st64(void *p, uint64_t v)
{
    vmdk_st32(p, (uint32_t)v);
    vmdk_st32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* vmdk-desc.c: the descriptor text */
/* Value of `key` ("createType", "parentFileNameHint"...) with quotes
 * removed, malloc'd; NULL when absent. */
char *vmdk_desc_get(const char *desc, const char *key);
/* CID/parentCID (hex); -EINVAL when absent or malformed. */
int vmdk_desc_get_cid(const char *desc, const char *key, uint32_t *out);
/* Open every extent line of a descriptor file. */
int vmdk_parse_extents(struct blk_node *bs, const char *desc,
                       struct strata_error **errp);
/* desc with CID replaced by cid (malloc'd), NULL when it has no CID. */
char *vmdk_desc_set_cid(const char *desc, uint32_t cid);
/* Read the descriptor text of bs (embedded or file), NUL-terminated;
 * in or out of coroutine context. */
int vmdk_read_desc(struct blk_node *bs, char **out);
/* Give the image a new CID on its first write, as VMware and QEMU do. */
int coroutine_fn vmdk_update_cid(struct blk_node *bs);

/* vmdk-sparse.c: sparse extents */
/* Open the sparse extent in `file` (header at 0) and append it. */
int vmdk_open_sparse(struct blk_node *bs, struct blk_node *file, bool owned,
                     const char *type, uint64_t desc_sectors,
                     struct strata_error **errp);
struct vmdk_extent *vmdk_add_extent(struct blk_node *bs);
void vmdk_free_extent(struct vmdk_extent *e);
/* Look up the grain holding extent-relative byte `off` (s->lock held):
 * the kind, the host byte offset of the grain, and how many bytes from
 * off on share the status and host contiguity (within one grain table). */
int coroutine_fn vmdk_lookup(struct vmdk_extent *e, uint64_t off,
                             uint64_t bytes, uint64_t *host, uint64_t *pnum);
/* Point grain table entries at `sector` (both copies; s->lock held). */
int coroutine_fn vmdk_set_gte(struct vmdk_extent *e, uint64_t off,
                              uint32_t sector);
/* Point the grain table entries of n consecutive grains from `off` on
 * at sectors[] (both copies, one write per table; s->lock held). */
int coroutine_fn vmdk_set_gtes(struct vmdk_extent *e, uint64_t off,
                               const uint32_t *sectors, int n);
/* Write to a hosted sparse extent (not compressed). */
int coroutine_fn vmdk_sparse_write(struct blk_node *bs, struct vmdk_extent *e,
                                   uint64_t voff, uint64_t bytes,
                                   struct blk_iov *qiov, size_t qoff);
/* Zeroed-grain writes: whole grains only, else -ENOTSUP. */
int coroutine_fn vmdk_sparse_zero(struct blk_node *bs, struct vmdk_extent *e,
                                  uint64_t voff, uint64_t bytes, bool dry_run);

/* vmdk-stream-read.c: read the compressed grains from extent-relative
 * byte rel on (the first one is compressed data), at most `bytes`, into
 * qiov at qoff; *pnum = bytes done (a batch of them, maybe fewer). */
int coroutine_fn vmdk_stream_readv(struct blk_node *bs, struct vmdk_extent *e,
                                   uint64_t rel, uint64_t bytes,
                                   struct blk_iov *qiov, size_t qoff,
                                   uint64_t *pnum);

/* vmdk-stream.c: compressed grains, writing */
int coroutine_fn vmdk_stream_write(struct blk_node *bs, struct vmdk_extent *e,
                                   uint64_t voff, uint64_t bytes,
                                   struct blk_iov *qiov, size_t qoff);
/* Extend the file over the last grain written, as QEMU leaves it. */
int coroutine_fn vmdk_stream_finish(struct vmdk_extent *e);

/* vmdk-create.c */
extern const struct blk_opt_desc vmdk_create_opts[];
int vmdk_create(const char *filename, struct blk_opts *opts,
                struct strata_error **errp);

#endif
