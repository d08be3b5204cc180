/* qcow2 check and repair: QEMU's qcow2_check_refcounts().  Every cluster
 * the metadata references is counted in an in-memory refcount table (the
 * "IMRT", laid out exactly as on-disk refcount blocks of the image's
 * refcount width, so a rebuild can write slices of it as refblocks), which
 * is then compared with the refcounts stored in the image.  Findings are
 * counted as QEMU counts them and described, in QEMU's words, in
 * res->messages; the tool prints those where qemu-img prints them
 * (stderr).  Repairs follow QEMU: leaked and under-counted clusters are
 * fixed in place, OFLAG_COPIED flags rewritten, and a refcount structure
 * that cannot be trusted is rebuilt from the IMRT (qcow2-check-repair.c;
 * the IMRT and message helpers are in qcow2-check-util.c).
 *
 * Metadata is read straight from the file, as QEMU's check does; the
 * caches are written out first so the file is current, and tables the
 * check rewrites directly are dropped from them. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "qcow2.h"
#include "util.h"

/* Reserved bits (QEMU's L1E_RESERVED_MASK and L2E_STD_RESERVED_MASK). */
#define L1E_RESERVED_MASK 0x7f000000000001ffull
#define L2E_STD_RESERVED_MASK 0x3f000000000001feull

/* Flags of check_l1()/check_l2(). */
enum { CHECK_FRAG_INFO = 1 };

/* ---- walking the metadata ---- */

/* qcow2_imrt_inc() of one aligned data cluster inside the file and the
 * IMRT, for the common 16-bit refcounts; false: take the general way. */
static inline bool imrt_inc_fast(struct blk_node *bs, struct qcow2_imrt *t,
                                 uint64_t offset)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t k = offset >> s->cluster_bits;
    uint8_t *p;
    unsigned v;

    if (s->refcount_order != 4 || qcow2_offset_into_cluster(s, offset) ||
        offset >= bs->file->size || (int64_t)k >= t->size) {
        return false;
    }
    p = t->table + 2 * k;
    v = (unsigned)p[0] << 8 | p[1];
    if (v == 0xffff) {
        return false; /* the overflow message */
    }
    v++;
    p[0] = v >> 8;
    p[1] = v;
    return true;
}

/* A big-endian 64-bit load the compiler turns into one instruction. */
static inline uint64_t be64_at(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

/* The entries from i on that need nothing but counting, in one tight
 * loop: unallocated ones, and aligned data clusters without flags or bits
 * they must not have whose 16-bit refcount in the IMRT cannot overflow.
 * Images without extended L2 entries or a data file only.  Returns the
 * first entry it leaves to the general code (l2_size: none). */
static uint32_t scan_common(struct blk_node *bs, struct blk_check_result *res,
                            struct qcow2_imrt *t, const uint8_t *buf,
                            uint32_t i, unsigned flags,
                            uint64_t *next_contiguous, bool *copied_ok)
{
    struct qcow2_state *s = bs->opaque;
    /* everything in locals: stores into the IMRT may alias anything */
    const uint64_t bad = ~(QCOW2_OFLAG_COPIED | QCOW2_L2E_OFFSET_MASK) |
                         (s->cluster_size - 1);
    const uint64_t end = MIN(bs->file->size,
                             (uint64_t)t->size << s->cluster_bits);
    const uint64_t cs = s->cluster_size;
    const uint32_t n = s->l2_size, rb_n = t->rb_saved_n;
    const unsigned bits = s->cluster_bits, rb_bits = s->refblock_bits;
    const uint64_t rb_mask = s->refblock_size - 1;
    uint8_t *const table = t->table;
    uint8_t *const *const rb_saved = t->rb_saved;
    uint64_t next = *next_contiguous, allocated = 0, fragmented = 0;
    uint64_t rb_idx = UINT64_MAX;
    const uint8_t *rb = NULL;
    bool ok = *copied_ok;

    for (; i < n; i++) {
        uint64_t e = be64_at(buf + 8 * (size_t)i), off, k;
        uint16_t v;

        if (!e) {
            continue;
        }
        off = e & QCOW2_L2E_OFFSET_MASK;
        if ((e & bad) || !off || off >= end) {
            break; /* flags, misaligned, no offset or past the end */
        }
        k = off >> bits;
        memcpy(&v, table + 2 * k, 2);
        v = __builtin_bswap16(v);
        if (v == 0xffff) {
            break; /* the overflow message */
        }
        v = __builtin_bswap16((uint16_t)(v + 1));
        memcpy(table + 2 * k, &v, 2);
        if (ok) {
            /* the OFLAG_COPIED pass's question, answered while here */
            if ((k >> rb_bits) != rb_idx) {
                rb_idx = k >> rb_bits;
                rb = rb_idx < rb_n ? rb_saved[rb_idx] : NULL;
            }
            if (!rb) {
                ok = false;
            } else {
                memcpy(&v, rb + 2 * (k & rb_mask), 2);
                ok = (__builtin_bswap16(v) == 1) == (e >> 63);
            }
        }
        allocated++;
        fragmented += next && off != next;
        next = off + cs;
    }
    *copied_ok = ok;
    if (flags & CHECK_FRAG_INFO) {
        res->allocated_clusters += allocated;
        res->fragmented_clusters += fragmented;
        *next_contiguous = next;
    }
    return i;
}

/* Count a data cluster (NORMAL or ZERO_ALLOC) of an L2 table: the
 * fragmentation figures when asked for, and its reference. */
static inline int count_data(struct blk_node *bs,
                             struct blk_check_result *res,
                             struct qcow2_imrt *t, uint64_t offset,
                             unsigned flags, uint64_t *next_contiguous)
{
    struct qcow2_state *s = bs->opaque;

    if (flags & CHECK_FRAG_INFO) {
        res->allocated_clusters++;
        if (*next_contiguous && offset != *next_contiguous) {
            res->fragmented_clusters++;
        }
        *next_contiguous = offset + s->cluster_size;
    }
    if (qcow2_has_data_file(s)) {
        return 0; /* QEMU: data file clusters have no refcounts */
    }
    if (imrt_inc_fast(bs, t, offset)) {
        return 0;
    }
    return qcow2_imrt_inc(bs, res, t, offset, s->cluster_size);
}

/* Rewrite one L2 entry in place, straight to the file (overlap already
 * checked by the caller). */
static int coroutine_fn write_l2_entry(struct blk_node *bs, uint64_t l2_offset,
                                       uint32_t i, uint64_t entry)
{
    struct qcow2_state *s = bs->opaque;
    uint8_t be[8];
    int ret;

    qcow2_st64(be, entry);
    qcow2_cache_discard(s->l2_cache, l2_offset);
    ret = blk_co_pwrite(bs->file, l2_offset + (uint64_t)i * s->l2e_size, 8,
                        be, 0);
    return ret < 0 ? ret : blk_co_flush(bs->file);
}

/* A misaligned NORMAL/ZERO_ALLOC entry: count it, and when it holds no
 * data and errors are fixed, turn it into a plain zero cluster (with
 * extended L2 an unallocated one, its zero bits kept).  *fixed is the
 * new descriptor.  Returns 1 when repaired (the cluster is no longer
 * referenced), 0, or -errno. */
static int coroutine_fn misaligned_entry(struct blk_node *bs,
                                         struct blk_check_result *res,
                                         uint64_t l2_offset, uint32_t i,
                                         uint64_t l2_entry, uint64_t bitmap,
                                         unsigned fix, bool active,
                                         uint64_t *fixed)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t offset = l2_entry & QCOW2_L2E_OFFSET_MASK;
    bool has_data = s->extended_l2 ? (bitmap & QCOW2_L2_BITMAP_ALL_ALLOC)
                                   : !(l2_entry & QCOW2_OFLAG_ZERO);
    int ret;

    res->corruptions++;
    if (has_data) {
        qcow2_check_report(res, "ERROR offset=%" PRIx64 ": Data cluster is "
                           "not properly aligned; L2 entry corrupted.",
                           offset);
        return 0;
    }
    qcow2_check_report(res, "%s offset=%" PRIx64 ": Preallocated cluster is "
                       "not properly aligned; L2 entry corrupted.",
                       fix & BLK_FIX_ERRORS ? "Repairing" : "ERROR", offset);
    if (!(fix & BLK_FIX_ERRORS)) {
        return 0;
    }
    *fixed = s->extended_l2 ? 0 : QCOW2_OFLAG_ZERO;
    ret = qcow2_check_overlap(bs, active ? QCOW2_OL_ACTIVE_L2
                                         : QCOW2_OL_INACTIVE_L2,
                              l2_offset + (uint64_t)i * s->l2e_size, 8);
    if (ret < 0) {
        qcow2_check_report(res, "ERROR: Overlap check failed");
        res->check_errors++;
        return ret;
    }
    ret = write_l2_entry(bs, l2_offset, i, *fixed);
    if (ret < 0) {
        qcow2_check_report(res, "ERROR: Failed to overwrite L2 table entry: "
                           "%s", strerror(-ret));
        res->check_errors++;
        return 0;
    }
    res->corruptions--;
    res->corruptions_fixed++;
    return 1;
}

/* Count the clusters one L2 table references, checking its entries
 * (QEMU's check_refcounts_l2). */
static int coroutine_fn check_l2(struct blk_node *bs,
                                 struct blk_check_result *res,
                                 struct qcow2_imrt *t, uint64_t l2_offset,
                                 unsigned flags, unsigned fix, bool active,
                                 uint8_t *buf, bool loaded, bool *copied_ok)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t next_contiguous = 0;
    bool fast = !s->extended_l2 && !qcow2_has_data_file(s) &&
                s->refcount_order == 4;
    bool all_copied_ok = copied_ok != NULL;
    int ret = 0;

    if (!loaded) {
        ret = blk_co_pread(bs->file, l2_offset,
                           (uint64_t)s->l2_size * s->l2e_size, buf, 0);
    }
    if (ret < 0) {
        qcow2_check_report(res, "ERROR: I/O error in check_refcounts_l2");
        res->check_errors++;
        return ret;
    }
    for (uint32_t i = 0; i < s->l2_size; i++) {
        if (fast) {
            i = scan_common(bs, res, t, buf, i, flags, &next_contiguous,
                            &all_copied_ok);
            if (i >= s->l2_size) {
                break;
            }
        }
        all_copied_ok = false; /* the general code: ask again later */
        uint64_t l2_entry = qcow2_l2_entry(s, buf, i);
        uint64_t bitmap = qcow2_l2_bitmap(s, buf, i);
        uint64_t data = l2_entry & QCOW2_L2E_OFFSET_MASK;
        enum qcow2_cluster_type type;

        if (!l2_entry && !bitmap) {
            continue; /* unallocated: nothing to count or check */
        }
        if (!(l2_entry & ~(QCOW2_OFLAG_COPIED | QCOW2_L2E_OFFSET_MASK)) &&
            data && !qcow2_offset_into_cluster(s, data) &&
            !((bitmap >> 32) & bitmap)) {
            /* the common case, decided without the general checks: an
             * aligned data cluster with no flags or bits it must not have */
            ret = count_data(bs, res, t, data, flags, &next_contiguous);
            if (ret < 0) {
                return ret;
            }
            continue;
        }
        type = qcow2_cluster_type(s, l2_entry);

        if (type != QCOW2_CLUSTER_COMPRESSED &&
            (l2_entry & L2E_STD_RESERVED_MASK)) {
            qcow2_check_report(res, "ERROR found l2 entry with reserved bits "
                               "set: %" PRIx64, l2_entry);
            res->corruptions++;
        }

        switch (type) {
        case QCOW2_CLUSTER_COMPRESSED: {
            uint64_t coffset, csize;

            if (l2_entry & QCOW2_OFLAG_COPIED) {
                qcow2_check_report(res, "ERROR: coffset=0x%" PRIx64 ": "
                                   "copied flag must never be set for "
                                   "compressed clusters",
                                   l2_entry & s->cluster_offset_mask);
                l2_entry &= ~QCOW2_OFLAG_COPIED;
                res->corruptions++;
            }
            if (qcow2_has_data_file(s)) {
                qcow2_check_report(res, "ERROR compressed cluster %" PRIu32
                                   " with data file, entry=0x%" PRIx64, i,
                                   l2_entry);
                res->corruptions++;
                break;
            }
            if (bitmap) {
                qcow2_check_report(res, "ERROR compressed cluster %" PRIu32
                                   " with non-zero subcluster allocation "
                                   "bitmap, entry=0x%" PRIx64, i, l2_entry);
                res->corruptions++;
                break;
            }
            qcow2_compressed_range(s, l2_entry, &coffset, &csize);
            ret = qcow2_imrt_inc(bs, res, t, coffset, csize);
            if (ret < 0) {
                return ret;
            }
            if (flags & CHECK_FRAG_INFO) {
                /* compressed clusters count as fragmented: neighbours
                 * share sectors that are read again */
                res->allocated_clusters++;
                res->compressed_clusters++;
                res->fragmented_clusters++;
            }
            break;
        }
        case QCOW2_CLUSTER_ZERO_ALLOC:
        case QCOW2_CLUSTER_NORMAL: {
            uint64_t offset = l2_entry & QCOW2_L2E_OFFSET_MASK, fixed;

            if ((bitmap >> 32) & bitmap) {
                res->corruptions++;
                qcow2_check_report(res, "ERROR offset=%" PRIx64 ": Allocated "
                                   "cluster has corrupted subcluster "
                                   "allocation bitmap", offset);
            }
            if (qcow2_offset_into_cluster(s, offset)) {
                ret = misaligned_entry(bs, res, l2_offset, i, l2_entry,
                                       bitmap, fix, active, &fixed);
                if (ret < 0) {
                    return ret;
                }
                if (ret > 0) {
                    /* the saved copy shows what the file has now */
                    qcow2_set_l2_entry(s, buf, i, fixed);
                    continue;
                }
            }
            ret = count_data(bs, res, t, offset, flags, &next_contiguous);
            if (ret < 0) {
                return ret;
            }
            break;
        }
        case QCOW2_CLUSTER_ZERO_PLAIN:
            break;
        case QCOW2_CLUSTER_UNALLOCATED:
            if (bitmap & QCOW2_L2_BITMAP_ALL_ALLOC) {
                res->corruptions++;
                qcow2_check_report(res, "ERROR: Unallocated cluster has "
                                   "non-zero subcluster allocation map");
            }
            break;
        }
    }
    if (copied_ok) {
        *copied_ok = all_copied_ok;
    }
    return 0;
}

/* Count an L1 table, its L2 tables and what they reference (QEMU's
 * check_refcounts_l1). */
static int coroutine_fn check_l1(struct blk_node *bs,
                                 struct blk_check_result *res,
                                 struct qcow2_imrt *t, uint64_t l1_offset,
                                 uint32_t l1_size, unsigned flags,
                                 unsigned fix, bool active)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t bytes = (uint64_t)l1_size * 8;
    uint8_t *l1, *l2buf;
    bool *loaded;
    int ret;

    if (!l1_size) {
        return 0;
    }
    ret = qcow2_imrt_inc(bs, res, t, l1_offset, bytes);
    if (ret < 0) {
        return ret;
    }
    l1 = malloc(bytes);
    if (!l1) {
        res->check_errors++;
        return -ENOMEM;
    }
    if (active && bs->read_only && l1_offset == s->l1_table_offset &&
        l1_size == s->l1_size) {
        /* nothing can have changed the table read at open */
        for (uint32_t i = 0; i < l1_size; i++) {
            qcow2_st64(l1 + 8 * (size_t)i, s->l1_table[i]);
        }
        ret = 0;
    } else {
        ret = blk_co_pread(bs->file, l1_offset, bytes, l1, 0);
    }
    if (ret < 0) {
        qcow2_check_report(res, "ERROR: I/O error in check_refcounts_l1");
        res->check_errors++;
        free(l1);
        return ret;
    }
    l2buf = xmalloc((size_t)s->l2_size * s->l2e_size);
    loaded = xzalloc(l1_size);
    if (active) {
        qcow2_check_prefetch(bs, t, l1, l1_size, loaded);
    }
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t e = qcow2_ld64(l1 + 8 * (size_t)i), l2_offset;
        uint8_t *buf = l2buf;

        if (!e) {
            continue;
        }
        if (e & L1E_RESERVED_MASK) {
            qcow2_check_report(res, "ERROR found L1 entry with reserved bits "
                               "set: %" PRIx64, e);
            res->corruptions++;
        }
        l2_offset = e & QCOW2_L1E_OFFSET_MASK;
        ret = qcow2_imrt_inc(bs, res, t, l2_offset, s->cluster_size);
        if (ret < 0) {
            break;
        }
        if (qcow2_offset_into_cluster(s, l2_offset)) {
            qcow2_check_report(res, "ERROR l2_offset=%" PRIx64 ": Table is "
                               "not cluster aligned; L1 entry corrupted",
                               l2_offset);
            res->corruptions++;
        }
        if (active && t->l2_saved[i]) {
            buf = t->l2_saved[i];
        }
        ret = check_l2(bs, res, t, l2_offset, flags, fix, active, buf,
                       loaded[i],
                       active && t->l2_copied_ok && buf == t->l2_saved[i]
                           ? &t->l2_copied_ok[i] : NULL);
        if (ret < 0) {
            break;
        }
    }
    free(loaded);
    free(l2buf);
    free(l1);
    return ret < 0 ? ret : 0;
}

/* Count every reference of the image into t. */
int coroutine_fn qcow2_check_calculate(struct blk_node *bs,
                                       struct blk_check_result *res,
                                       unsigned fix, bool *rebuild,
                                       struct qcow2_imrt *t)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    if (!t->table) {
        int64_t n = t->size;
        t->size = 0;
        ret = qcow2_imrt_resize(s, t, n);
        if (ret < 0) {
            res->check_errors++;
            return ret;
        }
    }
    /* the header */
    ret = qcow2_imrt_inc(bs, res, t, 0, s->cluster_size);
    if (ret < 0) {
        return ret;
    }
    ret = check_l1(bs, res, t, s->l1_table_offset, s->l1_size,
                   CHECK_FRAG_INFO, fix, true);
    if (ret < 0) {
        return ret;
    }
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if (s->snapshots[i].l1_bad) {
            continue; /* reported by report_bad_snapshots() */
        }
        ret = check_l1(bs, res, t, s->snapshots[i].l1_offset,
                       s->snapshots[i].l1_size, 0, fix, false);
        if (ret < 0) {
            return ret;
        }
    }
    ret = qcow2_imrt_inc(bs, res, t, s->snapshots_offset, s->snapshots_size);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_imrt_inc(bs, res, t, s->refcount_table_offset,
                         (uint64_t)s->refcount_table_size * 8);
    if (ret < 0) {
        return ret;
    }
    if (s->crypto_header_length) {
        /* the LUKS header and key material */
        ret = qcow2_imrt_inc(bs, res, t, s->crypto_header_offset,
                             s->crypto_header_length);
        if (ret < 0) {
            return ret;
        }
    }
    ret = qcow2_check_bitmaps(bs, res, t);
    if (ret < 0) {
        return ret;
    }
    return qcow2_check_refblocks(bs, res, fix, rebuild, t);
}

/* Is the refblock starting at cluster `first` equal to its slice of the
 * IMRT (the two share a layout)?  Then *highest is updated from it. */
static bool coroutine_fn same_refblock(struct blk_node *bs,
                                       struct blk_check_result *res,
                                       struct qcow2_rc_cursor *cur,
                                       const struct qcow2_imrt *t,
                                       int64_t first, int64_t *highest)
{
    struct qcow2_state *s = bs->opaque;
    const uint8_t *slice = t->table + (uint64_t)(first >> s->refblock_bits) *
                                      s->cluster_size;
    uint64_t rc;
    int64_t last;

    uint64_t k = first >> s->refblock_bits;
    const void *blk;

    if (k >= s->refcount_table_size || !s->refcount_table[k]) {
        /* no refblock: every refcount is 0, so is every reference? */
        return buffer_is_zero(slice, s->cluster_size);
    }
    if (first + s->refblock_size > t->size) {
        return false;
    }
    if (k < t->rb_saved_n && t->rb_saved[k]) {
        blk = t->rb_saved[k];
    } else if (qcow2_rc_cursor_get(bs, res, cur, first, &rc) < 0 ||
               !cur->blk || cur->index != (int64_t)k) {
        return false;
    } else {
        blk = cur->blk;
    }
    if (memcmp(blk, slice, s->cluster_size) != 0) {
        return false;
    }
    for (last = s->cluster_size - 1; last >= 0 && !slice[last]; last--) {
    }
    if (last >= 0) {
        *highest = first + (((uint64_t)last * 8) >> s->refcount_order) +
                   ((8u >> s->refcount_order) > 1
                    ? (63 - __builtin_clzll(slice[last])) >> s->refcount_order
                    : 0);
    }
    return true;
}

/* Compare t with the stored refcounts; fix what `fix` allows. */
void coroutine_fn qcow2_check_compare(struct blk_node *bs,
                                      struct blk_check_result *res,
                                      unsigned fix, bool *rebuild,
                                      int64_t *highest_cluster,
                                      struct qcow2_imrt *t)
{
    struct qcow2_state *s = bs->opaque;

    struct qcow2_rc_cursor cur = {0};

    *highest_cluster = 0;
    for (int64_t i = 0; i < t->size; i++) {
        uint64_t rc1, rc2;
        int *num_fixed = NULL;
        int ret;

        if (!(i & (s->refblock_size - 1)) &&
            same_refblock(bs, res, &cur, t, i, highest_cluster)) {
            /* nothing to report or fix in this whole refblock */
            i += s->refblock_size - 1;
            continue;
        }
        ret = qcow2_rc_cursor_get(bs, res, &cur, i, &rc1);

        if (ret < 0) {
            qcow2_check_report(res, "Can't get refcount for cluster %" PRId64
                               ": %s", i, strerror(-ret));
            res->check_errors++;
            continue;
        }
        rc2 = qcow2_imrt_get(s, t->table, i);
        if (rc1 > 0 || rc2 > 0) {
            *highest_cluster = i;
        }
        if (rc1 == rc2) {
            continue;
        }
        if (rc1 == 0) {
            *rebuild = true;
        } else if (rc1 > rc2 && (fix & BLK_FIX_LEAKS)) {
            num_fixed = &res->leaks_fixed;
        } else if (rc1 < rc2 && (fix & BLK_FIX_ERRORS)) {
            num_fixed = &res->corruptions_fixed;
        }
        qcow2_check_report(res, "%s cluster %" PRId64 " refcount=%" PRIu64
                           " reference=%" PRIu64,
                           num_fixed ? "Repairing"
                           : rc1 < rc2 ? "ERROR" : "Leaked", i, rc1, rc2);
        if (num_fixed) {
            qcow2_rc_cursor_release(s, &cur);
            ret = qcow2_update_refcount(bs, (uint64_t)i << s->cluster_bits,
                                        1, rc1 > rc2 ? rc1 - rc2 : rc2 - rc1,
                                        rc1 > rc2, QCOW2_DISCARD_ALWAYS);
            if (ret >= 0) {
                (*num_fixed)++;
                continue;
            }
        }
        if (rc1 < rc2) {
            res->corruptions++;
        } else {
            res->leaks++;
        }
    }
    qcow2_rc_cursor_release(s, &cur);
}

/* The refcount part of the check (QEMU's qcow2_check_refcounts). */
static int coroutine_fn check_refcounts(struct blk_node *bs,
                                        struct blk_check_result *res,
                                        unsigned fix)
{
    struct qcow2_state *s = bs->opaque;
    struct blk_check_result pre_compare;
    struct qcow2_imrt t = {0};
    int64_t highest_cluster = 0;
    bool rebuild = false;
    int ret;

    t.size = qcow2_size_to_clusters(s, bs->file->size);
    if (t.size > INT32_MAX) {
        res->check_errors++;
        return -EFBIG;
    }
    res->total_clusters = qcow2_size_to_clusters(
        s, ROUND_UP(bs->size, (uint64_t)BLK_SECTOR_SIZE));

    ret = qcow2_check_calculate(bs, res, fix, &rebuild, &t);
    if (ret < 0) {
        goto out;
    }
    /* when something is fixed without a rebuild, the comparison runs
     * again with fixing on, from the counts as they are here */
    pre_compare = *res;
    pre_compare.messages = NULL;
    qcow2_check_compare(bs, res, 0, &rebuild, &highest_cluster, &t);

    if (rebuild && (fix & BLK_FIX_ERRORS)) {
        ret = qcow2_check_rebuild(bs, res, fix, &t, &highest_cluster);
        if (ret < 0) {
            goto out;
        }
    } else if (fix) {
        if (rebuild) {
            qcow2_check_report(res, "ERROR need to rebuild refcount "
                               "structures");
            res->check_errors++;
            ret = -EIO;
            goto out;
        }
        if (res->leaks || res->corruptions) {
            char *msgs = res->messages;

            *res = pre_compare;
            res->messages = msgs;
            qcow2_check_compare(bs, res, fix, &rebuild, &highest_cluster,
                                &t);
        }
    }

    ret = qcow2_check_oflag_copied(bs, res, fix, &t);
    if (ret < 0) {
        goto out;
    }
    res->image_end_offset = (highest_cluster + 1) * s->cluster_size;
    ret = 0;
out:
    if (t.arena) {
        munmap(t.arena, t.arena_bytes);
    }
    free(t.l2_saved);
    free(t.l2_saved_l1);
    free(t.rb_saved);
    free(t.l2_copied_ok);
    free(t.table);
    return ret;
}

/* Clear the dirty and corrupt bits after a successful repair. */
static int coroutine_fn mark_clean(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    int ret = qcow2_mark_clean(bs);

    if (ret < 0 || !(s->incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
        return ret;
    }
    s->incompatible_features &= ~QCOW2_INCOMPAT_CORRUPT;
    return qcow2_update_header(bs);
}

/* The check itself, s->lock held (qcow2's open calls it to repair a
 * dirty image). */
int coroutine_fn qcow2_check_locked(struct blk_node *bs,
                                    struct blk_check_result *res,
                                    unsigned fix)
{
    struct qcow2_state *s = bs->opaque;
    int ret, table_errors;

    if (!bs->read_only) {
        /* the check reads metadata from the file */
        ret = qcow2_write_caches(bs);
        if (ret < 0) {
            res->check_errors++;
            return ret;
        }
    }
    ret = qcow2_check_snapshot_table(bs, res, fix, &table_errors);
    if (ret < 0) {
        return ret;
    }
    ret = check_refcounts(bs, res, fix);
    if (ret < 0) {
        return ret;
    }
    if (table_errors && (fix & BLK_FIX_ERRORS)) {
        ret = qcow2_check_fix_snapshot_table(bs, res, table_errors);
        if (ret < 0) {
            return ret;
        }
    }
    if (fix) {
        /* allocation may start over where repairs freed clusters */
        s->free_cluster_index = 0;
    }
    if (fix && res->check_errors == 0 && res->corruptions == 0) {
        return mark_clean(bs);
    }
    return 0;
}

/* The driver's check callback. */
int coroutine_fn qcow2_co_check(struct blk_node *bs,
                                struct blk_check_result *res, unsigned fix)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    if (s->dead) {
        /* QEMU drops the driver of an image found corrupt */
        return -ENOMEDIUM;
    }
    co_mutex_lock(&s->lock);
    ret = qcow2_check_locked(bs, res, fix);
    co_mutex_unlock(&s->lock);
    return ret;
}
