/* Internal to the qcow2 driver: the on-disk layout (docs/interop/qcow2.txt
 * in QEMU's tree is the normative description), the driver state and the
 * functions the qcow2-*.c files share.
 *
 * Locking: every access to metadata (L1 table, the caches, refcounts, the
 * header, the list of in-flight allocations) happens with s->lock held.
 * Guest data I/O runs without it; a cluster being allocated is protected by
 * a struct qcow2_alloc record instead, which later writers, zeroing and
 * discard of the same guest clusters wait for. */
#ifndef FORMATS_QCOW2_H
#define FORMATS_QCOW2_H

#include <stdbool.h>
#include <stdint.h>

#include "block.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_DEFAULT_CLUSTER_SIZE 65536

/* QEMU's implementation limits, kept so images stay interchangeable. */
#define QCOW2_MAX_L1_SIZE (32u * 1024 * 1024)      /* bytes */
#define QCOW2_MAX_REFTABLE_SIZE (8u * 1024 * 1024) /* bytes */
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_SNAPSHOT_HEADER_SIZE 40
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_MAX_FORMAT_NAME 15 /* QEMU keeps it in 16 bytes */

/* Header sizes and field offsets. */
#define QCOW2_V2_HEADER_SIZE 72
#define QCOW2_V3_MIN_HEADER_SIZE 104
#define QCOW2_V3_HEADER_SIZE 112 /* with compression_type and padding */
#define QCOW2_HDR_L1_SIZE 36
#define QCOW2_HDR_REFTABLE_OFFSET 48
#define QCOW2_HDR_INCOMPAT 72
#define QCOW2_HDR_COMPRESSION_TYPE 104

/* Incompatible feature bits. */
#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_INCOMPAT_MASK 0x1full
/* Compatible and autoclear bits. */
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ull << 1)

/* Header extension types. */
#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO_HEADER 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u
#define QCOW2_FEATURE_ENTRY_SIZE 48

#define QCOW2_COMPRESSION_ZLIB 0
#define QCOW2_COMPRESSION_ZSTD 1

/* Table entries. */
#define QCOW2_OFLAG_COPIED (1ull << 63)     /* refcount is exactly one */
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO (1ull << 0)        /* v3: reads as zeroes */
#define QCOW2_L1E_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_L2E_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_L2E_COMPRESSED_MASK 0x3fffffffffffffffull
#define QCOW2_REFT_OFFSET_MASK 0xfffffffffffffe00ull

/* Metadata kinds for overlap checks (QEMU's bit order and names). */
enum {
    QCOW2_OL_MAIN_HEADER = 1u << 0,
    QCOW2_OL_ACTIVE_L1 = 1u << 1,
    QCOW2_OL_ACTIVE_L2 = 1u << 2,
    QCOW2_OL_REFCOUNT_TABLE = 1u << 3,
    QCOW2_OL_REFCOUNT_BLOCK = 1u << 4,
    QCOW2_OL_SNAPSHOT_TABLE = 1u << 5,
    QCOW2_OL_INACTIVE_L1 = 1u << 6,
    QCOW2_OL_INACTIVE_L2 = 1u << 7,
    QCOW2_OL_BITMAP_DIRECTORY = 1u << 8,
    QCOW2_OL_MAX_BITNR = 9,
    QCOW2_OL_ALL = (1u << 9) - 1,
    /* the templates of the overlap-check option */
    QCOW2_OL_CONSTANT = QCOW2_OL_MAIN_HEADER | QCOW2_OL_ACTIVE_L1 |
                        QCOW2_OL_REFCOUNT_TABLE | QCOW2_OL_SNAPSHOT_TABLE |
                        QCOW2_OL_BITMAP_DIRECTORY,
    QCOW2_OL_CACHED = QCOW2_OL_ALL & ~QCOW2_OL_INACTIVE_L2,
};

/* Why clusters are freed: decides whether the file is told (discard). */
enum qcow2_discard_type {
    QCOW2_DISCARD_NEVER,
    QCOW2_DISCARD_ALWAYS,
    QCOW2_DISCARD_REQUEST,
    QCOW2_DISCARD_SNAPSHOT,
    QCOW2_DISCARD_OTHER,
    QCOW2_DISCARD_MAX,
};

enum qcow2_cluster_type {
    QCOW2_CLUSTER_UNALLOCATED,
    QCOW2_CLUSTER_ZERO_PLAIN, /* zero flag, no host cluster */
    QCOW2_CLUSTER_ZERO_ALLOC, /* zero flag over a preallocated cluster */
    QCOW2_CLUSTER_NORMAL,
    QCOW2_CLUSTER_COMPRESSED,
};
/* extended L2 only (qcow2_subcluster_type): a subcluster of a cluster
 * with a host offset that has neither its allocation nor zero bit (kept
 * out of the enum so switches over cluster types need not know it) */
#define QCOW2_CLUSTER_UNALLOCATED_ALLOC (QCOW2_CLUSTER_COMPRESSED + 1)

/* Extended L2 entries: the 64-bit bitmap after each descriptor, bits
 * 0-31 "allocated", 32-63 "reads as zeroes", one per subcluster. */
#define QCOW2_EXTL2_SUBCLUSTERS 32
#define QCOW2_L2_BITMAP_ALL_ALLOC 0xffffffffull
#define QCOW2_L2_BITMAP_ALL_ZEROES (QCOW2_L2_BITMAP_ALL_ALLOC << 32)

struct qcow2_cache;

/* A header extension this driver does not interpret, kept verbatim so a
 * header rewrite preserves it. */
struct qcow2_unknown_ext {
    uint32_t magic;
    uint32_t len;
    uint8_t *data;
    struct qcow2_unknown_ext *next;
};

/* An internal snapshot: its L1 table (what overlap checks need) and the
 * rest of its table entry. */
struct qcow2_snapshot {
    uint64_t l1_offset;
    uint32_t l1_size; /* entries */
    /* The rest of the entry (qcow2-snapshot.c).  The strings and the
     * unknown extra data live in the same allocation as the array, so
     * free(s->snapshots) releases everything. */
    char *id_str;
    char *name;
    uint64_t vm_state_size;     /* bytes */
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount;            /* UINT64_MAX: not recorded */
    uint64_t disk_size;         /* virtual size when taken, bytes */
    uint32_t extra_size;        /* extra data bytes of the entry as read */
    uint32_t unknown_extra_size; /* extra data past the 24 bytes we know */
    uint8_t *unknown_extra;     /* kept verbatim when rewriting the table */
    /* Only when opened for `check` (BLK_O_CHECK), which reports it as QEMU
     * does: the L1 table is misaligned (QCOW2_SN_L1_MISALIGNED) or too
     * large (QCOW2_SN_L1_TOO_LARGE).  Such a snapshot is never used. */
    uint8_t l1_bad;
};
#define QCOW2_SN_L1_MISALIGNED 1
#define QCOW2_SN_L1_TOO_LARGE 2

/* A cluster allocation of a write between choosing the host clusters and
 * entering them into the L2 table (guest data and COW are written in
 * between, without s->lock). */
struct qcow2_alloc {
    uint64_t guest_offset;  /* first guest cluster, bytes, cluster aligned */
    uint64_t nb_clusters;
    uint64_t host_offset;   /* first host cluster, bytes */
    bool keep_old;          /* host clusters reused (zero flag cleared) */
    uint64_t old_first;     /* previous L2 entries of the first and last */
    uint64_t old_last;      /* cluster: where COW data comes from */
    uint64_t cow_head;      /* bytes before the guest data in the first */
    uint64_t cow_tail;      /* bytes after it in the last cluster
                             * (they end at the cluster end, unless the
                             * image has extended L2 entries) */
    /* extended L2: the bitmaps of old_first/old_last, and whether the
     * allocation is a preallocation (allocation bits left as they are) */
    uint64_t old_first_bitmap, old_last_bitmap;
    uint64_t written_from, written_to; /* bytes from guest_offset */
    bool prealloc;
    struct co_queue waiters;
    struct qcow2_alloc *next, *prev;
};

/* A range of the file whose clusters were freed, waiting to be discarded. */
struct qcow2_discard {
    uint64_t offset, bytes;
    struct qcow2_discard *next;
};

struct qcow2_state {
    /* from the header */
    int version;                   /* 2 or 3 */
    unsigned cluster_bits;
    uint32_t cluster_size;
    unsigned l2_bits;              /* log2 of entries per L2 table */
    uint32_t l2_size;              /* entries per L2 table */
    uint32_t l2_slice_size;        /* entries QEMU allocates in one go */
    /* extended L2 entries: 16 bytes per entry instead of 8, subclusters
     * of cluster_size / 32 (else one subcluster per cluster) */
    bool extended_l2;
    unsigned l2e_size;             /* bytes per L2 entry */
    unsigned subcluster_bits;
    uint32_t subcluster_size;
    /* external data file (incompatible bit 2): guest data clusters are
     * read and written there, at the host offsets of the L2 entries;
     * NULL when data lives in bs->file (see qcow2-datafile.c) */
    struct blk_node *data_file;
    bool data_file_raw;            /* autoclear bit 1: data at guest offsets */
    char *image_data_file;         /* its name from the header extension
                                    * (NULL: none recorded) */
    unsigned refcount_order;
    uint64_t refcount_max;
    unsigned refblock_bits;        /* log2 of entries per refcount block */
    uint32_t refblock_size;        /* entries per refcount block */
    unsigned csize_shift;          /* compressed descriptor layout */
    uint64_t csize_mask;
    uint64_t cluster_offset_mask;
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t crypt_method;
    /* crypto (qcow2-crypto.c): the unlocked cipher (NULL: not
     * encrypted) and the LUKS header's clusters from the extension */
    struct crypto_block *crypto;
    uint64_t crypto_header_offset, crypto_header_length; /* bytes */
    uint8_t compression_type;
    uint8_t *unknown_header_fields; /* header bytes past the ones we know */
    uint32_t unknown_header_fields_size;
    struct qcow2_unknown_ext *unknown_exts; /* in file order */
    char *image_backing_file;      /* as recorded in the image */
    char *image_backing_format;

    /* tables */
    uint64_t l1_table_offset;
    uint32_t l1_size;              /* entries */
    uint64_t *l1_table;            /* host byte order */
    uint64_t l1_vm_state_index;    /* L1 entries the virtual size needs */
    uint64_t refcount_table_offset;
    uint32_t refcount_table_size;  /* entries */
    uint32_t max_refcount_table_index; /* last used entry */
    uint64_t *refcount_table;      /* host byte order */
    uint64_t snapshots_offset;
    uint32_t nb_snapshots;
    uint64_t snapshots_size;       /* bytes of the snapshot table */
    struct qcow2_snapshot *snapshots;
    /* A snapshot table that `check` (read-only) could not read: the open
     * went on without snapshots and check fails with this report, as
     * qemu-img check does ('\1'-prefixed first line, hint or NULL). */
    int sn_check_ret;
    char *sn_check_msg, *sn_check_hint;

    /* allocation */
    uint64_t free_cluster_index;   /* no free cluster below this index */
    uint64_t free_byte_offset;     /* compressed data continues here (0:
                                    * start a new cluster), as QEMU */
    struct qcow2_cache *l2_cache;
    struct qcow2_cache *refblock_cache;
    struct co_mutex lock;
    struct qcow2_alloc *allocs;    /* in flight */
    bool cache_discards;           /* collect freed ranges, discard later */
    struct qcow2_discard *discards;
    bool discard_passthrough[QCOW2_DISCARD_MAX];
    unsigned overlap_check;        /* QCOW2_OL_* checked before writes */
    bool use_lazy_refcounts;       /* lazy-refcounts: set the dirty bit on
                                    * first write, let refcounts lag */
    bool metadata_preallocation;   /* block status asks the file for holes */
    bool metadata_preallocation_checked;

    /* corruption */
    bool corrupt_signalled;        /* one message is enough */
    bool dead;                     /* a fatal inconsistency: refuse I/O */
    char *corrupt_msg;             /* what was wrong (also in get_info) */
};

/* ---- byte order ---- */

static inline uint32_t qcow2_ld32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
           b[3];
}

static inline uint64_t qcow2_ld64(const void *p)
{
    return (uint64_t)qcow2_ld32(p) << 32 | qcow2_ld32((const uint8_t *)p + 4);
}

static inline void qcow2_st32(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = v >> 24;
    b[1] = v >> 16;
    b[2] = v >> 8;
    b[3] = v;
}

static inline void qcow2_st64(void *p, uint64_t v)
{
    qcow2_st32(p, v >> 32);
    qcow2_st32((uint8_t *)p + 4, (uint32_t)v);
}

/* ---- geometry ---- */

static inline uint64_t qcow2_offset_into_cluster(const struct qcow2_state *s,
                                                 uint64_t offset)
{
    return offset & (s->cluster_size - 1);
}

static inline uint64_t qcow2_start_of_cluster(const struct qcow2_state *s,
                                              uint64_t offset)
{
    return offset & ~(uint64_t)(s->cluster_size - 1);
}

static inline uint64_t qcow2_size_to_clusters(const struct qcow2_state *s,
                                              uint64_t size)
{
    return (size + s->cluster_size - 1) >> s->cluster_bits;
}

/* L1 entries needed for a virtual size (without overflow). */
static inline uint64_t qcow2_size_to_l1(const struct qcow2_state *s,
                                        uint64_t size)
{
    unsigned shift = s->cluster_bits + s->l2_bits;
    return (size >> shift) + ((size & ((1ull << shift) - 1)) != 0);
}

static inline uint64_t qcow2_l1_index(const struct qcow2_state *s,
                                      uint64_t offset)
{
    return offset >> (s->l2_bits + s->cluster_bits);
}

static inline uint32_t qcow2_l2_index(const struct qcow2_state *s,
                                      uint64_t offset)
{
    return (offset >> s->cluster_bits) & (s->l2_size - 1);
}

enum qcow2_cluster_type qcow2_cluster_type(const struct qcow2_state *s,
                                           uint64_t l2_entry);

/* L2 entry i of a table (descriptor, and the bitmap with extended L2). */
static inline uint64_t qcow2_l2_entry(const struct qcow2_state *s,
                                      const void *l2, uint32_t i)
{
    return qcow2_ld64((const uint8_t *)l2 + (size_t)s->l2e_size * i);
}

static inline uint64_t qcow2_l2_bitmap(const struct qcow2_state *s,
                                       const void *l2, uint32_t i)
{
    return s->extended_l2
               ? qcow2_ld64((const uint8_t *)l2 + (size_t)16 * i + 8)
               : 0;
}

static inline void qcow2_set_l2_entry(const struct qcow2_state *s, void *l2,
                                      uint32_t i, uint64_t v)
{
    qcow2_st64((uint8_t *)l2 + (size_t)s->l2e_size * i, v);
}

static inline void qcow2_set_l2_bitmap(const struct qcow2_state *s,
                                       void *l2, uint32_t i, uint64_t v)
{
    if (s->extended_l2) {
        qcow2_st64((uint8_t *)l2 + (size_t)16 * i + 8, v);
    }
}

/* Allocation bits of subclusters [from, to) (zero bits: shift by 32). */
static inline uint64_t qcow2_sc_alloc_range(unsigned from, unsigned to)
{
    return ((1ull << to) - 1) & ~((1ull << from) - 1);
}

/* The type of subcluster sc of an extended L2 entry (the cluster type
 * without extended L2), or -EIO for an invalid entry/bitmap pair. */
int qcow2_subcluster_type(const struct qcow2_state *s, uint64_t l2_entry,
                          uint64_t bitmap, unsigned sc);

static inline bool qcow2_cluster_is_allocated(enum qcow2_cluster_type t)
{
    return t == QCOW2_CLUSTER_NORMAL || t == QCOW2_CLUSTER_ZERO_ALLOC ||
           t == QCOW2_CLUSTER_COMPRESSED;
}

/* The bytes of the file holding a compressed cluster. */
void qcow2_compressed_range(const struct qcow2_state *s, uint64_t l2_entry,
                            uint64_t *offset, uint64_t *bytes);

/* ---- qcow2-header.c ---- */

/* Read and check the header, tables and extensions (s->lock held). */
int coroutine_fn qcow2_do_open(struct blk_node *bs, struct blk_opts *opts,
                               struct strata_error **errp);
/* Rewrite the header cluster from the state (extensions included). */
int coroutine_fn qcow2_update_header(struct blk_node *bs);

/* ---- qcow2.c: options, corruption ---- */

/* The runtime options (caches, overlap checks, discard); sets up caches. */
int qcow2_parse_options(struct blk_node *bs, struct blk_opts *opts,
                        struct strata_error **errp);
/* Record an inconsistency found in the image; a fatal one marks the image
 * corrupt (v3) and refuses further I/O.  Returns -EIO. */
int qcow2_signal_corruption(struct blk_node *bs, bool fatal,
                            const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void qcow2_free_state(struct qcow2_state *s);
/* lazy_refcounts: set the dirty bit (before the first L2 update whose
 * refcounts may lag), clear it once everything is on disk. */
int coroutine_fn qcow2_mark_dirty(struct blk_node *bs);
int coroutine_fn qcow2_mark_clean(struct blk_node *bs);
/* Flush both caches (refcounts before L2, as dependencies require). */
int coroutine_fn qcow2_write_caches(struct blk_node *bs);
int coroutine_fn qcow2_flush_caches(struct blk_node *bs);
/* Does [offset, offset+size) overlap metadata (minus `ign`)?  Returns the
 * QCOW2_OL_* bit of the first kind hit, 0, or -errno. */
int coroutine_fn qcow2_check_metadata_overlap(struct blk_node *bs,
                                              unsigned ign, uint64_t offset,
                                              uint64_t size);
/* The same, signalling corruption on a hit: 0 or -EIO. */
int coroutine_fn qcow2_pre_write_overlap_check(struct blk_node *bs,
                                               unsigned ign, uint64_t offset,
                                               uint64_t size);

/* ---- qcow2-create.c ---- */

extern const struct blk_opt_desc qcow2_create_opts[];
int qcow2_create(const char *filename, struct blk_opts *opts,
                 struct strata_error **errp);
/* Grow the virtual size (create and resize), with preallocation. */
int coroutine_fn qcow2_co_truncate(struct blk_node *bs, uint64_t size,
                                   bool exact, enum blk_prealloc prealloc,
                                   struct strata_error **errp);

/* How many of clusters [0, end) have a non-zero refcount, counting at
 * most up to limit; absent refcount blocks are skipped whole. */
int coroutine_fn qcow2_count_used_clusters(struct blk_node *bs, uint64_t end,
                                           uint64_t limit, uint64_t *count);
/* ---- qcow2-refcount.c ---- */

int coroutine_fn qcow2_refcount_init(struct blk_node *bs);
int coroutine_fn qcow2_get_refcount(struct blk_node *bs,
                                    uint64_t cluster_index,
                                    uint64_t *refcount);
/* Allocate `size` bytes of contiguous clusters; returns the offset. */
int64_t coroutine_fn qcow2_alloc_clusters(struct blk_node *bs,
                                          uint64_t size);
/* Allocate up to nb free clusters at offset; returns how many. */
int64_t coroutine_fn qcow2_alloc_clusters_at(struct blk_node *bs,
                                             uint64_t offset, uint64_t nb);
int coroutine_fn qcow2_update_refcount(struct blk_node *bs, uint64_t offset,
                                       uint64_t length, uint64_t addend,
                                       bool decrease,
                                       enum qcow2_discard_type type);
void coroutine_fn qcow2_free_clusters(struct blk_node *bs, uint64_t offset,
                                      uint64_t size,
                                      enum qcow2_discard_type type);
/* Drop the reference an L2 entry holds (any cluster type). */
void coroutine_fn qcow2_free_any_cluster(struct blk_node *bs,
                                         uint64_t l2_entry,
                                         enum qcow2_discard_type type);
/* New self-describing refcount structures at start_offset (the end of
 * the used part of the file) covering it plus additional_clusters. */
int64_t coroutine_fn qcow2_refcount_area(struct blk_node *bs,
                                         uint64_t start_offset,
                                         uint64_t additional_clusters,
                                         bool exact_size,
                                         uint32_t new_refblock_index,
                                         uint64_t new_refblock_offset);
/* Bytes of refcount metadata needed for `clusters` host clusters. */
int64_t qcow2_refcount_metadata_size(int64_t clusters, uint32_t cluster_size,
                                     unsigned refcount_order,
                                     bool generous_increase,
                                     uint64_t *refblock_count);
/* Index of the last cluster with a nonzero refcount below size, or -1. */
int64_t coroutine_fn qcow2_get_last_cluster(struct blk_node *bs,
                                            uint64_t size);
void coroutine_fn qcow2_process_discards(struct blk_node *bs, int ret);
/* ---- qcow2-cluster.c ---- */

/* Map guest [offset, offset + *bytes): the type of the first cluster, and
 * *bytes cut to the run that shares it (host-contiguous for data).  *host
 * is the host offset of `offset` (NORMAL, ZERO_ALLOC); *l2_entry the raw
 * entry of the first cluster.  Lock held. */
int coroutine_fn qcow2_get_host_offset(struct blk_node *bs, uint64_t offset,
                                       uint64_t *bytes, uint64_t *host,
                                       uint64_t *l2_entry);
int coroutine_fn qcow2_grow_l1_table(struct blk_node *bs, uint64_t min_size,
                                     bool exact_size);
/* The L2 table for a guest offset, made writable (allocated or unshared)
 * first; referenced in the cache, put it back when done.  Lock held. */
int coroutine_fn qcow2_get_l2_for_write(struct blk_node *bs, uint64_t offset,
                                        void **l2, uint32_t *l2_index);
/* Decide where a write of [offset, offset + *bytes) goes: either in place
 * (*alloc NULL) or into clusters allocated now (*alloc set, registered as
 * in flight); new clusters go at `hint` (where the previous part of the
 * same request ended, 0 for none) if they are free.  *bytes is cut to
 * what this step covers.  Lock held (dropped while waiting for another
 * allocation). */
int coroutine_fn qcow2_alloc_host_offset(struct blk_node *bs,
                                         uint64_t offset, uint64_t *bytes,
                                         uint64_t hint, uint64_t *host,
                                         struct qcow2_alloc **alloc);
/* Enter a finished allocation into the L2 table (or give it up), take it
 * off the in-flight list and wake whoever waits for it.  Lock held. */
int coroutine_fn qcow2_alloc_link_l2(struct blk_node *bs,
                                     struct qcow2_alloc *m);
void coroutine_fn qcow2_alloc_abort(struct blk_node *bs,
                                    struct qcow2_alloc *m);
/* Enter preallocated host clusters for guest clusters; the first `keep`
 * bytes of the first one are copied from its old content (as QEMU). */
int coroutine_fn qcow2_link_prealloc(struct blk_node *bs, uint64_t guest,
                                     uint64_t host, uint64_t nb_clusters,
                                     uint64_t keep);
/* Put an allocation on the in-flight list / take it off (waking those
 * who wait for it). */
void qcow2_register_alloc(struct qcow2_state *s, struct qcow2_alloc *m);
void qcow2_unregister_alloc(struct qcow2_state *s, struct qcow2_alloc *m);
/* Wait (dropping the lock) until no allocation overlaps the guest range. */
void coroutine_fn qcow2_wait_allocs(struct blk_node *bs, uint64_t offset,
                                    uint64_t bytes);
int coroutine_fn qcow2_cluster_zeroize(struct blk_node *bs, uint64_t offset,
                                       uint64_t bytes, unsigned flags);
/* Extended L2 write_zeroes (qcow2-zero.c): subclusters get zero bits. */
int coroutine_fn qcow2_ext_pwrite_zeroes(struct blk_node *bs,
                                         uint64_t offset, uint64_t bytes,
                                         unsigned flags);
int coroutine_fn qcow2_cluster_discard(struct blk_node *bs, uint64_t offset,
                                       uint64_t bytes,
                                       enum qcow2_discard_type type,
                                       bool full_discard);

/* ---- qcow2-io.c: the data path callbacks ---- */

int coroutine_fn qcow2_co_preadv(struct blk_node *bs, uint64_t offset,
                                 uint64_t bytes, struct blk_iov *qiov,
                                 unsigned flags);
/* Write only the copy-on-write parts of an allocation (preallocation). */
int coroutine_fn qcow2_perform_cow(struct blk_node *bs, struct qcow2_alloc *m);
int coroutine_fn qcow2_co_pwritev(struct blk_node *bs, uint64_t offset,
                                  uint64_t bytes, struct blk_iov *qiov,
                                  unsigned flags);
int coroutine_fn qcow2_co_pwrite_zeroes(struct blk_node *bs, uint64_t offset,
                                        uint64_t bytes, unsigned flags);
int coroutine_fn qcow2_co_discard(struct blk_node *bs, uint64_t offset,
                                  uint64_t bytes);
int coroutine_fn qcow2_co_flush(struct blk_node *bs);
int coroutine_fn qcow2_co_block_status(struct blk_node *bs, uint64_t offset,
                                       uint64_t bytes, uint64_t *pnum,
                                       uint64_t *map, struct blk_node **file);

/* ---- qcow2-cache.c ---- */

/* A cache of `nb` tables of `table_size` bytes; `ol_kind` is the overlap
 * kind its tables are (ignored when checking their own writes). */
struct qcow2_cache *qcow2_cache_create(int nb, uint32_t table_size,
                                       unsigned ol_kind);
void qcow2_cache_destroy(struct qcow2_cache *c);
/* Reference the table at offset, reading it unless cached. */
int coroutine_fn qcow2_cache_get(struct blk_node *bs, struct qcow2_cache *c,
                                 uint64_t offset, void **table);
/* The same for a table about to be filled by the caller (no read). */
int coroutine_fn qcow2_cache_get_empty(struct blk_node *bs,
                                       struct qcow2_cache *c,
                                       uint64_t offset, void **table);
void qcow2_cache_put(struct qcow2_cache *c, void **table);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table);
/* Write dirty tables (after what they depend on). */
int coroutine_fn qcow2_cache_write(struct blk_node *bs,
                                   struct qcow2_cache *c);
/* Write dirty tables and flush the file. */
int coroutine_fn qcow2_cache_flush(struct blk_node *bs,
                                   struct qcow2_cache *c);
/* Tables of c may only reach the disk after those of dep. */
int coroutine_fn qcow2_cache_set_dependency(struct blk_node *bs,
                                            struct qcow2_cache *c,
                                            struct qcow2_cache *dep);
/* Forget the table at offset (its cluster was freed): no write-back. */
void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset);
/* Forget every table (after a failed write, or on close). */
void qcow2_cache_clear(struct qcow2_cache *c);

/* ---- compressed writes (qcow2-compress.c) ---- */
int coroutine_fn qcow2_co_pwritev_compressed(struct blk_node *bs,
                                             uint64_t offset, uint64_t bytes,
                                             struct blk_iov *qiov);
/* qcow2-compress.c: the guest cluster at offset (unallocated, else -EIO
 * as QEMU) gets `size` bytes of packed compressed space at *host; it is
 * registered as in flight until qcow2_link_compressed() enters it into
 * the L2 table (ok) or gives it up.  Lock held. */
int coroutine_fn qcow2_alloc_compressed(struct blk_node *bs, uint64_t offset,
                                        uint64_t size, uint64_t *host,
                                        struct qcow2_alloc **alloc);
int coroutine_fn qcow2_link_compressed(struct blk_node *bs,
                                       struct qcow2_alloc *m, uint64_t size,
                                       bool ok);
/* qcow2-refcount.c: `size` bytes (<= a cluster) of shared clusters for
 * compressed data, packed after the previous ones (QEMU's alloc_bytes). */
int64_t coroutine_fn qcow2_alloc_bytes(struct blk_node *bs, uint64_t size);

/* ---- internal snapshots (qcow2-snapshot.c) ---- */
int coroutine_fn qcow2_snapshot_create(struct blk_node *bs,
                                       struct blk_snapshot *sn,
                                       struct strata_error **errp);
int coroutine_fn qcow2_snapshot_goto(struct blk_node *bs,
                                     const char *id_or_name,
                                     struct strata_error **errp);
int coroutine_fn qcow2_snapshot_delete(struct blk_node *bs, const char *id,
                                       const char *name,
                                       struct strata_error **errp);
int coroutine_fn qcow2_snapshot_list(struct blk_node *bs,
                                     struct blk_snapshot **list);
int coroutine_fn qcow2_snapshot_load_tmp(struct blk_node *bs, const char *id,
                                         const char *name,
                                         struct strata_error **errp);
/* qcow2-snapshot-table.c: read and check the snapshot table at open;
 * write a new table for `sn` (n entries), point the header at it, free
 * the old one and make s->snapshots a packed copy of `sn`.  Lock held. */
int coroutine_fn qcow2_read_snapshots(struct blk_node *bs,
                                      struct strata_error **errp);
int coroutine_fn qcow2_write_snapshots(struct blk_node *bs,
                                       const struct qcow2_snapshot *sn,
                                       uint32_t n);

/* check: the report of a snapshot table check could not read (then a
 * negative errno: the check fails), else the entries whose L1 table is
 * unusable and, in a version 3 image, those with less than 16 bytes of
 * extra data (corruptions, as qemu-img check reports them; the latter
 * counted in *table_errors). */
int qcow2_check_snapshot_table(struct blk_node *bs,
                               struct blk_check_result *res, unsigned fix,
                               int *table_errors);
/* check -r all: rewrite the table whose entries the check found
 * incomplete (table_errors of them, counted as corruptions). */
int coroutine_fn qcow2_check_fix_snapshot_table(struct blk_node *bs,
                                                struct blk_check_result *res,
                                                int table_errors);
bool qcow2_ranges_overlap(uint64_t a, uint64_t alen, uint64_t b,
                          uint64_t blen);

/* ---- check and repair (qcow2-check.c) ---- */
int coroutine_fn qcow2_co_check(struct blk_node *bs,
                                struct blk_check_result *res, unsigned fix);
/* The same with s->lock already held (repair of a dirty image on open).
 * The caller frees res->messages. */
int coroutine_fn qcow2_check_locked(struct blk_node *bs,
                                    struct blk_check_result *res,
                                    unsigned fix);

/* The in-memory refcount table of a check: one entry per host cluster,
 * in the image's on-disk refcount format (a slice of refblock_size
 * entries is a refblock); allocated in whole clusters. */
struct qcow2_imrt {
    uint8_t *table;
    int64_t size;          /* entries */
    /* the active L2 tables as read by the check, by L1 index (NULL: not
     * kept), so the OFLAG_COPIED pass does not read them again */
    uint8_t **l2_saved;
    uint64_t *l2_saved_l1; /* the L1 entry each was read for */
    uint32_t l2_saved_n;
    uint64_t l2_saved_bytes;
    /* refcount blocks read ahead with them (read-only nodes: nothing is
     * newer in the cache), by reftable index; NULL: not read */
    uint8_t **rb_saved;
    uint32_t rb_saved_n;
    /* the memory both of those point into (qcow2-check.c), unmapped at
     * the end of the check */
    uint8_t *arena;
    uint64_t arena_bytes;
    /* read-only nodes, by L1 index: the first pass found every COPIED
     * flag of that active L2 table right (against rb_saved), so the
     * OFLAG_COPIED pass skips it; NULL: not known */
    bool *l2_copied_ok;
};
/* Refcount lookups that keep the last refblock referenced in the cache. */
struct qcow2_rc_cursor {
    int64_t index;         /* reftable index of blk */
    void *blk;             /* NULL: none */
};
int coroutine_fn qcow2_rc_cursor_get(struct blk_node *bs,
                                     struct blk_check_result *res,
                                     struct qcow2_rc_cursor *c,
                                     uint64_t cluster, uint64_t *rc);
void qcow2_rc_cursor_release(struct qcow2_state *s,
                             struct qcow2_rc_cursor *c);
uint64_t qcow2_imrt_get(const struct qcow2_state *s, const void *a,
                        uint64_t i);
void qcow2_imrt_set(const struct qcow2_state *s, void *a, uint64_t i,
                    uint64_t v);
int qcow2_imrt_resize(const struct qcow2_state *s, struct qcow2_imrt *t,
                      int64_t new_size);
int qcow2_imrt_inc(struct blk_node *bs, struct blk_check_result *res,
                   struct qcow2_imrt *t, uint64_t offset, uint64_t size);
/* Append a line to res->messages. */
void qcow2_check_report(struct blk_check_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The same for an error the tool reports with its name (QEMU's
 * error_report): the line starts with '\1'. */
void qcow2_check_error(struct blk_check_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The overlap check before the check's own writes: unlike
 * qcow2_pre_write_overlap_check() it still lets repairs write after a
 * fatal corruption was found, as QEMU's check does. */
int coroutine_fn qcow2_check_overlap(struct blk_node *bs, unsigned ign,
                                     uint64_t offset, uint64_t size);
/* qcow2_get_refcount(), reporting a corruption it signals as QEMU prints
 * it. */
int coroutine_fn qcow2_check_get_refcount(struct blk_node *bs,
                                          struct blk_check_result *res,
                                          uint64_t cluster, uint64_t *rc);
/* Read the L2 tables of the active L1 table l1 (big-endian, l1_size
 * entries) into t->l2_saved, several at a time, and on read-only nodes
 * the refcount blocks into t->rb_saved; loaded[i]: table i was read
 * (qcow2-check-util.c). */
void coroutine_fn qcow2_check_prefetch(struct blk_node *bs,
                                       struct qcow2_imrt *t,
                                       const uint8_t *l1, uint32_t l1_size,
                                       bool *loaded);
/* Count the refcount blocks into t and check the reftable entries
 * (QEMU's check_refblocks; qcow2-check-util.c). */
int coroutine_fn qcow2_check_refblocks(struct blk_node *bs,
                                       struct blk_check_result *res,
                                       unsigned fix, bool *rebuild,
                                       struct qcow2_imrt *t);
/* Count every reference into t (QEMU's calculate_refcounts). */
int coroutine_fn qcow2_check_calculate(struct blk_node *bs,
                                       struct blk_check_result *res,
                                       unsigned fix, bool *rebuild,
                                       struct qcow2_imrt *t);
/* Compare t with the image's refcounts, fixing what fix allows. */
void coroutine_fn qcow2_check_compare(struct blk_node *bs,
                                      struct blk_check_result *res,
                                      unsigned fix, bool *rebuild,
                                      int64_t *highest_cluster,
                                      struct qcow2_imrt *t);
/* qcow2-check-repair.c */
int coroutine_fn qcow2_check_bitmaps(struct blk_node *bs,
                                     struct blk_check_result *res,
                                     struct qcow2_imrt *t);
int coroutine_fn qcow2_check_oflag_copied(struct blk_node *bs,
                                          struct blk_check_result *res,
                                          unsigned fix,
                                          struct qcow2_imrt *t);
int coroutine_fn qcow2_check_rebuild(struct blk_node *bs,
                                     struct blk_check_result *res,
                                     unsigned fix, struct qcow2_imrt *t,
                                     int64_t *highest_cluster);

/* ---- amend and measure (qcow2-amend.c) ---- */
int coroutine_fn qcow2_amend(struct blk_node *bs, struct blk_opts *opts,
                             bool force, blk_progress_fn *progress,
                             void *opaque, struct strata_error **errp);
int qcow2_measure(struct blk_opts *opts, struct blk_node *in,
                  struct blk_measure *out, struct strata_error **errp);

/* ---- backing file and emptying (qcow2-backing.c) ---- */
int coroutine_fn qcow2_change_backing_file(struct blk_node *bs,
                                           const char *backing_file,
                                           const char *backing_fmt,
                                           struct strata_error **errp);
int coroutine_fn qcow2_make_empty(struct blk_node *bs,
                                  struct strata_error **errp);

/* ---- encryption (qcow2-crypto.c) ---- */
struct crypto_block;
struct json;
#include "crypto.h"
/* Open the encryption the header names (after the extensions are read):
 * needs encrypt.key-secret; AES images only read-only. */
int coroutine_fn qcow2_crypto_open(struct blk_node *bs, struct blk_opts *opts,
                                   struct strata_error **errp);
void qcow2_crypto_free(struct qcow2_state *s);
/* 512-byte request alignment for encrypted images. */
void qcow2_crypto_refresh_limits(struct blk_node *bs);
/* Add the "encrypt" object to the format-specific info data. */
void qcow2_crypto_get_info(struct blk_node *bs, struct json *data);
/* Decrypt guest data just read from host offset `host` (guest offset
 * `guest`) in place. */
int coroutine_fn qcow2_crypto_decrypt(struct blk_node *bs, uint64_t host,
                                      uint64_t guest, uint64_t bytes,
                                      struct blk_iov *qiov);
/* Write guest data to `child` at host, encrypted when the image is (a
 * plain blk_co_pwritev otherwise). */
int coroutine_fn qcow2_crypto_pwritev(struct blk_node *bs,
                                      struct blk_node *child, uint64_t host,
                                      uint64_t guest, uint64_t bytes,
                                      struct blk_iov *qiov);
/* Create options: which encryption, and its parameters. */
struct qcow2_crypto_create {
    bool luks;
    struct crypto_luks_params p;
    const char *secret;
};
int qcow2_crypto_create_parse(struct blk_opts *opts, bool encryption,
                              const char *efmt,
                              struct qcow2_crypto_create *c,
                              struct strata_error **errp);
/* Set up LUKS in a freshly created image (lock held). */
int coroutine_fn qcow2_crypto_create(struct blk_node *bs,
                                     const struct qcow2_crypto_create *c,
                                     struct strata_error **errp);
/* ---- external data file (qcow2-datafile.c) ---- */
/* amend's data_file / data_file_raw keys (NULL / -1 when not given):
 * with apply false only checks them (in QEMU's order of messages), with
 * apply true (lock held) changes the image. */
int coroutine_fn qcow2_datafile_amend(struct blk_node *bs,
                                      const char *data_file,
                                      int data_file_raw, bool apply,
                                      struct strata_error **errp);
/* Does the image keep guest data in an external file (incompatible bit
 * 2)?  Its data clusters then have no refcounts and sit at host offset ==
 * guest offset, as QEMU allocates them. */
static inline bool qcow2_has_data_file(const struct qcow2_state *s)
{
    return (s->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) != 0;
}
/* A data-file image opened without its data file (BLK_O_NO_BACKING, as
 * QEMU's info opens it): metadata only, guest data I/O fails. */
static inline bool qcow2_data_missing(const struct qcow2_state *s)
{
    return qcow2_has_data_file(s) && !s->data_file;
}
/* The node guest data clusters are read from and written to. */
static inline struct blk_node *qcow2_data_child(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    return s->data_file ? s->data_file : bs->file;
}
/* Open the data file at open time (after the extensions are read): the
 * data-file option, else the recorded name; refuses data-file options
 * and data_file_raw on images without one.  Lock held. */
int coroutine_fn qcow2_datafile_open(struct blk_node *bs,
                                     struct blk_opts *opts,
                                     struct strata_error **errp);
void qcow2_datafile_close(struct qcow2_state *s);
/* Drop the reference an L2 entry holds: for data-file images only a
 * discard of the data file (as `type` allows; data_file_raw: zeroes
 * written), else qcow2_free_any_cluster(). */
void coroutine_fn qcow2_free_data_cluster(struct blk_node *bs,
                                          uint64_t l2_entry,
                                          enum qcow2_discard_type type);
/* An L2 entry of a data-file image must not be compressed and must map
 * its guest cluster (at `cluster`) 1:1: else a fatal corruption (-EIO),
 * as QEMU.  0 for other images. */
int qcow2_datafile_check_entry(struct blk_node *bs, uint64_t entry,
                               uint64_t cluster, uint64_t l2_offset,
                               uint32_t l2_index);
/* info: "data-file" and "data-file-raw" (QAPI order: after "compat"). */
void qcow2_datafile_get_info(struct blk_node *bs, struct json *data);
/* ---- encryption amendment (qcow2-crypto.c) ---- */
/* amend's encrypt.* keys (marks them used): with apply false only checks
 * them, with apply true (lock not held) changes the LUKS keyslots. */
/* (lukamend) apply false returns 1 when encrypt.* options are present, so
 * the caller can count the update; apply true works with or without the
 * lock held (it takes no qcow2 lock, writes only the LUKS header area). */
int coroutine_fn qcow2_crypto_amend(struct blk_node *bs,
                                    struct blk_opts *opts, bool force,
                                    bool apply, struct strata_error **errp);
/* .reopen: refuses read-write for corrupt or dirty images (qcow2.c's
 * driver table should point at it) */
int qcow2_reopen(struct blk_node *bs, bool read_write,
                 struct strata_error **errp);

#endif
