/* qcow2 cluster mapping: L1 -> L2 -> host clusters, growing the L1 table,
 * allocating L2 tables (copying shared ones).  Choosing host clusters for
 * writes and entering them once the data is written is in qcow2-alloc.c,
 * compressed clusters are entered in qcow2-compress.c, zeroing and
 * discarding are in qcow2-zero.c.
 * Everything here runs with s->lock held. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

enum qcow2_cluster_type qcow2_cluster_type(const struct qcow2_state *s,
                                           uint64_t l2_entry)
{
    if (l2_entry & QCOW2_OFLAG_COMPRESSED) {
        return QCOW2_CLUSTER_COMPRESSED;
    }
    if ((l2_entry & QCOW2_OFLAG_ZERO) && !s->extended_l2) {
        return (l2_entry & QCOW2_L2E_OFFSET_MASK) ? QCOW2_CLUSTER_ZERO_ALLOC
                                                  : QCOW2_CLUSTER_ZERO_PLAIN;
    }
    if (!(l2_entry & QCOW2_L2E_OFFSET_MASK)) {
        /* offset 0 is a real place in a data file, where every cluster
         * has OFLAG_COPIED (QEMU tells them apart the same way) */
        if (qcow2_has_data_file(s) && (l2_entry & QCOW2_OFLAG_COPIED)) {
            return QCOW2_CLUSTER_NORMAL;
        }
        return QCOW2_CLUSTER_UNALLOCATED;
    }
    return QCOW2_CLUSTER_NORMAL;
}

void qcow2_compressed_range(const struct qcow2_state *s, uint64_t l2_entry,
                            uint64_t *offset, uint64_t *bytes)
{
    uint64_t nb_sectors = ((l2_entry >> s->csize_shift) & s->csize_mask) + 1;

    *offset = l2_entry & s->cluster_offset_mask;
    *bytes = nb_sectors * 512 - (*offset & 511);
}

#define l2_get(l2, i) qcow2_l2_entry(s, (l2), (i))
#define l2_set(l2, i, v) qcow2_set_l2_entry(s, (l2), (i), (v))

int qcow2_subcluster_type(const struct qcow2_state *s, uint64_t l2_entry,
                          uint64_t bitmap, unsigned sc)
{
    enum qcow2_cluster_type t = qcow2_cluster_type(s, l2_entry);
    bool zero = (bitmap >> (32 + sc)) & 1;

    switch (t) {
    case QCOW2_CLUSTER_COMPRESSED:
        return t;
    case QCOW2_CLUSTER_UNALLOCATED:
        if (bitmap & QCOW2_L2_BITMAP_ALL_ALLOC) {
            return -EIO;
        }
        return zero ? QCOW2_CLUSTER_ZERO_PLAIN : QCOW2_CLUSTER_UNALLOCATED;
    default:
        if ((bitmap >> 32) & bitmap) {
            return -EIO;
        }
        if (zero) {
            return QCOW2_CLUSTER_ZERO_ALLOC;
        }
        return (bitmap >> sc) & 1 ? QCOW2_CLUSTER_NORMAL
                                  : QCOW2_CLUSTER_UNALLOCATED_ALLOC;
    }
}

/* Extended L2: the type of the subcluster at in_cluster of entry
 * l2_index and how far (bytes from the start of that cluster, at most
 * `needed`, rounded up to subclusters) the same type continues, for data
 * at contiguous host offsets. */
static int ext_run(const struct qcow2_state *s, const void *l2,
                   uint32_t l2_index, uint64_t in_cluster, uint64_t needed,
                   uint64_t *end)
{
    uint64_t e0 = l2_get(l2, l2_index);
    uint64_t host0 = e0 & QCOW2_L2E_OFFSET_MASK;
    unsigned sc = (unsigned)(in_cluster >> s->subcluster_bits);
    int type = qcow2_subcluster_type(s, e0, qcow2_l2_bitmap(s, l2, l2_index),
                                     sc);
    uint64_t pos = (uint64_t)(sc + 1) << s->subcluster_bits;

    if (type == QCOW2_CLUSTER_COMPRESSED) {
        pos = s->cluster_size;
    }
    while (type > 0 && type != QCOW2_CLUSTER_COMPRESSED && pos < needed) {
        uint32_t i = (uint32_t)(pos >> s->cluster_bits);
        uint64_t e = l2_get(l2, l2_index + i);
        int t = qcow2_subcluster_type(s, e, qcow2_l2_bitmap(s, l2,
                                                            l2_index + i),
                                      (unsigned)(pos >> s->subcluster_bits) &
                                          (QCOW2_EXTL2_SUBCLUSTERS - 1));
        if (t != type) {
            break;
        }
        if (type != QCOW2_CLUSTER_UNALLOCATED &&
            type != QCOW2_CLUSTER_ZERO_PLAIN &&
            (e & QCOW2_L2E_OFFSET_MASK) !=
                host0 + ((uint64_t)i << s->cluster_bits)) {
            break;
        }
        pos += s->subcluster_size;
    }
    *end = pos;
    return type;
}

/* ---- reading the mapping ---- */

/* How many entries from i on continue the run of the first one. */
static uint32_t count_run(const struct qcow2_state *s, const void *l2,
                          uint32_t i, uint32_t max)
{
    uint64_t first = l2_get(l2, i);
    enum qcow2_cluster_type type = qcow2_cluster_type(s, first);
    uint64_t host = first & QCOW2_L2E_OFFSET_MASK;
    uint32_t n = 1;

    if (type == QCOW2_CLUSTER_COMPRESSED) {
        return 1;
    }
    for (; n < max; n++) {
        uint64_t e = l2_get(l2, i + n);
        if (qcow2_cluster_type(s, e) != type) {
            break;
        }
        if ((type == QCOW2_CLUSTER_NORMAL ||
             type == QCOW2_CLUSTER_ZERO_ALLOC) &&
            (e & QCOW2_L2E_OFFSET_MASK) !=
                host + ((uint64_t)n << s->cluster_bits)) {
            break;
        }
    }
    return n;
}

int coroutine_fn qcow2_get_host_offset(struct blk_node *bs, uint64_t offset,
                                       uint64_t *bytes, uint64_t *host,
                                       uint64_t *l2_entry)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t in_cluster = qcow2_offset_into_cluster(s, offset);
    uint64_t l1_index = qcow2_l1_index(s, offset);
    uint32_t l2_index = qcow2_l2_index(s, offset);
    uint64_t needed = *bytes + in_cluster;
    uint64_t avail = (uint64_t)(s->l2_size - l2_index) << s->cluster_bits;
    enum qcow2_cluster_type type = QCOW2_CLUSTER_UNALLOCATED;
    uint64_t l2_offset, entry = 0;
    void *l2;
    int ret;

    *host = 0;
    needed = MIN(needed, avail);
    if (l1_index >= s->l1_size) {
        goto out;
    }
    l2_offset = s->l1_table[l1_index] & QCOW2_L1E_OFFSET_MASK;
    if (!l2_offset) {
        goto out;
    }
    if (qcow2_offset_into_cluster(s, l2_offset)) {
        return qcow2_signal_corruption(bs, true, "L2 table offset %#llx "
                                       "unaligned (L1 index: %#llx)",
                                       (unsigned long long)l2_offset,
                                       (unsigned long long)l1_index);
    }
    ret = qcow2_cache_get(bs, s->l2_cache, l2_offset, &l2);
    if (ret < 0) {
        return ret;
    }
    entry = l2_get(l2, l2_index);
    type = qcow2_cluster_type(s, entry);
    if (s->version < 3 && (type == QCOW2_CLUSTER_ZERO_PLAIN ||
                           type == QCOW2_CLUSTER_ZERO_ALLOC)) {
        qcow2_cache_put(s->l2_cache, &l2);
        return qcow2_signal_corruption(bs, true, "Zero cluster entry found "
                                       "in pre-v3 image (L2 offset: %#llx, "
                                       "L2 index: %#x)",
                                       (unsigned long long)l2_offset,
                                       l2_index);
    }
    if (type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC) {
        uint64_t hc = entry & QCOW2_L2E_OFFSET_MASK;
        if (qcow2_offset_into_cluster(s, hc)) {
            qcow2_cache_put(s->l2_cache, &l2);
            return qcow2_signal_corruption(bs, true, "Cluster allocation "
                                           "offset %#llx unaligned (L2 "
                                           "offset: %#llx, L2 index: %#x)",
                                           (unsigned long long)hc,
                                           (unsigned long long)l2_offset,
                                           l2_index);
        }
        *host = hc + in_cluster;
    }
    ret = qcow2_datafile_check_entry(bs, entry, offset - in_cluster,
                                     l2_offset, l2_index);
    if (ret < 0) {
        qcow2_cache_put(s->l2_cache, &l2);
        return ret;
    }
    if (s->extended_l2) {
        int t = ext_run(s, l2, l2_index, in_cluster, needed, &avail);
        if (t < 0) {
            qcow2_cache_put(s->l2_cache, &l2);
            return qcow2_signal_corruption(bs, true, "Invalid cluster entry "
                                           "found (L2 offset: %#llx, L2 "
                                           "index: %#x)",
                                           (unsigned long long)l2_offset,
                                           l2_index);
        }
        type = t;
        if (type == QCOW2_CLUSTER_UNALLOCATED ||
            type == QCOW2_CLUSTER_ZERO_PLAIN ||
            type == QCOW2_CLUSTER_COMPRESSED) {
            *host = 0;
        }
    } else {
        avail = (uint64_t)count_run(s, l2, l2_index,
                                    (uint32_t)qcow2_size_to_clusters(s,
                                                                     needed))
                << s->cluster_bits;
    }
    qcow2_cache_put(s->l2_cache, &l2);
out:
    avail = MIN(avail, needed);
    *bytes = avail - in_cluster;
    if (l2_entry) {
        *l2_entry = entry;
    }
    return type;
}

/* ---- the L1 table ---- */

/* Write one L1 entry through to the disk. */
static int coroutine_fn write_l1_entry(struct blk_node *bs, uint32_t index)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t off = s->l1_table_offset + (uint64_t)index * 8;
    uint8_t be[8];
    int ret;

    qcow2_st64(be, s->l1_table[index]);
    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ACTIVE_L1, off, 8);
    if (ret < 0) {
        return ret;
    }
    ret = blk_co_pwrite(bs->file, off, 8, be, 0);
    return ret < 0 ? ret : blk_co_flush(bs->file);
}

int coroutine_fn qcow2_grow_l1_table(struct blk_node *bs, uint64_t min_size,
                                     bool exact_size)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t new_size, new_bytes, *new_table, old_offset, old_size;
    int64_t new_offset;
    uint8_t hdr[12];
    int ret;

    if (min_size <= s->l1_size) {
        return 0;
    }
    if (min_size > INT32_MAX / 8) {
        return -EFBIG;
    }
    if (exact_size) {
        new_size = min_size;
    } else {
        /* grow by half, so a growing image does not rewrite it each time */
        new_size = s->l1_size ? s->l1_size : 1;
        while (min_size > new_size) {
            new_size = (new_size * 3 + 1) / 2;
        }
    }
    if (new_size > QCOW2_MAX_L1_SIZE / 8) {
        return -EFBIG;
    }
    new_bytes = new_size * 8;
    new_table = xzalloc(ROUND_UP(new_bytes, 512));
    if (s->l1_size) {
        memcpy(new_table, s->l1_table, (size_t)s->l1_size * 8);
    }

    new_offset = qcow2_alloc_clusters(bs, new_bytes);
    if (new_offset < 0) {
        free(new_table);
        return (int)new_offset;
    }
    ret = qcow2_cache_flush(bs, s->refblock_cache);
    if (ret >= 0) {
        ret = qcow2_pre_write_overlap_check(bs, 0, new_offset, new_bytes);
    }
    if (ret >= 0) {
        for (uint64_t i = 0; i < new_size; i++) {
            qcow2_st64(&new_table[i], new_table[i]);
        }
        ret = blk_co_pwrite(bs->file, new_offset, new_bytes, new_table, 0);
        if (ret >= 0) {
            ret = blk_co_flush(bs->file);
        }
        for (uint64_t i = 0; i < new_size; i++) {
            new_table[i] = qcow2_ld64(&new_table[i]);
        }
    }
    if (ret >= 0) {
        qcow2_st32(hdr, (uint32_t)new_size);
        qcow2_st64(hdr + 4, new_offset);
        ret = blk_co_pwrite(bs->file, QCOW2_HDR_L1_SIZE, sizeof(hdr), hdr, 0);
        if (ret >= 0) {
            ret = blk_co_flush(bs->file);
        }
    }
    if (ret < 0) {
        free(new_table);
        qcow2_free_clusters(bs, new_offset, new_bytes, QCOW2_DISCARD_OTHER);
        return ret;
    }
    old_offset = s->l1_table_offset;
    old_size = s->l1_size;
    free(s->l1_table);
    s->l1_table = new_table;
    s->l1_table_offset = new_offset;
    s->l1_size = (uint32_t)new_size;
    qcow2_free_clusters(bs, old_offset, old_size * 8, QCOW2_DISCARD_OTHER);
    return 0;
}

/* ---- L2 tables for writing ---- */

/* Give L1 entry l1_index an L2 table of its own (refcount 1): a new empty
 * one, or a copy of the shared one it points to.  The table is on disk
 * before the L1 entry points to it. */
static int coroutine_fn l2_allocate(struct blk_node *bs, uint32_t l1_index)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t old = s->l1_table[l1_index] & QCOW2_L1E_OFFSET_MASK;
    void *table = NULL, *old_table;
    int64_t l2_offset;
    int ret;

    l2_offset = qcow2_alloc_clusters(bs, s->cluster_size);
    if (l2_offset < 0) {
        return (int)l2_offset;
    }
    /* its refcount reaches the disk before the table is used */
    ret = qcow2_cache_flush(bs, s->refblock_cache);
    if (ret < 0) {
        goto fail;
    }
    ret = qcow2_cache_get_empty(bs, s->l2_cache, l2_offset, &table);
    if (ret < 0) {
        goto fail;
    }
    if (old) {
        ret = qcow2_cache_get(bs, s->l2_cache, old, &old_table);
        if (ret < 0) {
            qcow2_cache_put(s->l2_cache, &table);
            goto fail;
        }
        memcpy(table, old_table, s->cluster_size);
        qcow2_cache_put(s->l2_cache, &old_table);
    } else {
        memset(table, 0, s->cluster_size);
    }
    qcow2_cache_mark_dirty(s->l2_cache, table);
    qcow2_cache_put(s->l2_cache, &table);
    ret = qcow2_cache_flush(bs, s->l2_cache);
    if (ret < 0) {
        goto fail;
    }
    uint64_t saved = s->l1_table[l1_index];
    s->l1_table[l1_index] = (uint64_t)l2_offset | QCOW2_OFLAG_COPIED;
    ret = write_l1_entry(bs, l1_index);
    if (ret < 0) {
        s->l1_table[l1_index] = saved;
        goto fail;
    }
    return 0;

fail:
    qcow2_cache_discard(s->l2_cache, l2_offset);
    qcow2_free_clusters(bs, l2_offset, s->cluster_size, QCOW2_DISCARD_ALWAYS);
    return ret;
}

/* The L2 table for a guest offset, made writable (allocated or unshared)
 * first; referenced in the cache, put it back when done. */
int coroutine_fn qcow2_get_l2_for_write(struct blk_node *bs, uint64_t offset,
                                        void **l2, uint32_t *l2_index)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t l1_index = qcow2_l1_index(s, offset);
    uint64_t l2_offset;
    int ret;

    if (l1_index >= s->l1_size) {
        ret = qcow2_grow_l1_table(bs, l1_index + 1, false);
        if (ret < 0) {
            return ret;
        }
    }
    l2_offset = s->l1_table[l1_index] & QCOW2_L1E_OFFSET_MASK;
    if (qcow2_offset_into_cluster(s, l2_offset)) {
        return qcow2_signal_corruption(bs, true, "L2 table offset %#llx "
                                       "unaligned (L1 index: %#llx)",
                                       (unsigned long long)l2_offset,
                                       (unsigned long long)l1_index);
    }
    if (!(s->l1_table[l1_index] & QCOW2_OFLAG_COPIED) || !l2_offset) {
        ret = l2_allocate(bs, (uint32_t)l1_index);
        if (ret < 0) {
            return ret;
        }
        if (l2_offset) {
            /* the shared table loses our reference */
            qcow2_free_clusters(bs, l2_offset, s->cluster_size,
                                QCOW2_DISCARD_OTHER);
        }
        l2_offset = s->l1_table[l1_index] & QCOW2_L1E_OFFSET_MASK;
    }
    *l2_index = qcow2_l2_index(s, offset);
    return qcow2_cache_get(bs, s->l2_cache, l2_offset, l2);
}
