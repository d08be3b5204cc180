/* qcow2 refcounts: the two-level refcount structure (a table of refcount
 * blocks), cluster allocation and freeing, and growing the refcount
 * table.
 *
 * Allocation follows QEMU's policy exactly (first fit from a moving
 * "free cluster index", refcount blocks placed at the next free cluster and
 * the search restarted after one was added) so that images laid out here
 * match images QEMU lays out for the same operations.  All of this runs
 * with s->lock held. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

/* ---- entries of every width (refcount_order 0..6) ---- */

/* A refcount block and an in-memory refcount table (qcow2-check-util.c)
 * share one layout. */
static inline uint64_t rc_get(const struct qcow2_state *s, const void *blk,
                              uint64_t i)
{
    return qcow2_imrt_get(s, blk, i);
}

static inline void rc_set(const struct qcow2_state *s, void *blk,
                          uint64_t i, uint64_t v)
{
    qcow2_imrt_set(s, blk, i, v);
}

static void update_max_refcount_table_index(struct qcow2_state *s)
{
    uint32_t i = s->refcount_table_size ? s->refcount_table_size - 1 : 0;

    while (i > 0 && !(s->refcount_table[i] & QCOW2_REFT_OFFSET_MASK)) {
        i--;
    }
    s->max_refcount_table_index = i;
}

int coroutine_fn qcow2_refcount_init(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    size_t bytes = (size_t)s->refcount_table_size * 8;
    int ret;

    s->refcount_table = xmalloc(bytes);
    if (bytes) {
        ret = blk_co_pread(bs->file, s->refcount_table_offset, bytes,
                           s->refcount_table, 0);
        if (ret < 0) {
            return ret;
        }
        for (uint32_t i = 0; i < s->refcount_table_size; i++) {
            s->refcount_table[i] = qcow2_ld64(&s->refcount_table[i]);
        }
    }
    update_max_refcount_table_index(s);
    return 0;
}

/* The reftable entry for a refcount block, checked for alignment. */
static int refblock_offset(struct blk_node *bs, uint64_t table_index,
                           uint64_t *offset)
{
    struct qcow2_state *s = bs->opaque;

    *offset = 0;
    if (table_index >= s->refcount_table_size) {
        return 0;
    }
    *offset = s->refcount_table[table_index] & QCOW2_REFT_OFFSET_MASK;
    if (qcow2_offset_into_cluster(s, *offset)) {
        return qcow2_signal_corruption(bs, true, "Refblock offset %#llx "
                                       "unaligned (reftable index: %#llx)",
                                       (unsigned long long)*offset,
                                       (unsigned long long)table_index);
    }
    return 0;
}

int coroutine_fn qcow2_get_refcount(struct blk_node *bs,
                                    uint64_t cluster_index,
                                    uint64_t *refcount)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t off;
    void *blk;
    int ret;

    *refcount = 0;
    ret = refblock_offset(bs, cluster_index >> s->refblock_bits, &off);
    if (ret < 0 || !off) {
        return ret;
    }
    ret = qcow2_cache_get(bs, s->refblock_cache, off, &blk);
    if (ret < 0) {
        return ret;
    }
    *refcount = rc_get(s, blk, cluster_index & (s->refblock_size - 1));
    qcow2_cache_put(s->refblock_cache, &blk);
    return 0;
}

int coroutine_fn qcow2_count_used_clusters(struct blk_node *bs, uint64_t end,
                                           uint64_t limit, uint64_t *count)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t n = 0;
    int ret = 0;

    for (uint64_t first = 0; first < end && n < limit;
         first += s->refblock_size) {
        uint64_t off, stop = MIN(end - first, (uint64_t)s->refblock_size);
        void *blk;

        if ((first >> s->refblock_bits) >= s->refcount_table_size) {
            break; /* no refcount table entry: nothing beyond is in use */
        }
        ret = refblock_offset(bs, first >> s->refblock_bits, &off);
        if (ret < 0) {
            break;
        }
        if (!off) {
            continue; /* a whole refcount block of free clusters */
        }
        ret = qcow2_cache_get(bs, s->refblock_cache, off, &blk);
        if (ret < 0) {
            break;
        }
        for (uint64_t i = 0; i < stop && n < limit; i++) {
            n += rc_get(s, blk, i) != 0;
        }
        qcow2_cache_put(s->refblock_cache, &blk);
    }
    *count = n;
    return ret;
}

static bool in_same_refblock(const struct qcow2_state *s, uint64_t a,
                             uint64_t b)
{
    unsigned shift = s->cluster_bits + s->refblock_bits;
    return (a >> shift) == (b >> shift);
}

/* First fit: the first run of nb free clusters at or after the free
 * cluster index; their refcounts are left to the caller. */
static int64_t coroutine_fn alloc_clusters_noref(struct blk_node *bs,
                                                 uint64_t size)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t nb = qcow2_size_to_clusters(s, size), rc;
    int ret;

    /* a freed cluster queued for discard must not be reused first: the
     * discard would punch a hole into its new content */
    if (s->cache_discards) {
        qcow2_process_discards(bs, 0);
    }
retry:
    for (uint64_t i = 0; i < nb; i++) {
        uint64_t idx = s->free_cluster_index++;
        if (idx > (uint64_t)(INT64_MAX >> s->cluster_bits)) {
            return -EFBIG;
        }
        ret = qcow2_get_refcount(bs, idx, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc != 0) {
            goto retry;
        }
    }
    if (s->free_cluster_index > 0 &&
        s->free_cluster_index - 1 > (uint64_t)(INT64_MAX >> s->cluster_bits)) {
        return -EFBIG;
    }
    return (int64_t)((s->free_cluster_index - nb) << s->cluster_bits);
}

/* The refcount block covering cluster_index, allocating it (and growing
 * the table) when missing.  After an allocation it returns -EAGAIN: the
 * new block may sit where the caller meant to put its clusters, so the
 * caller undoes its work and searches again. */
static int coroutine_fn alloc_refcount_block(struct blk_node *bs,
                                             uint64_t cluster_index,
                                             void **refblock)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t table_index = cluster_index >> s->refblock_bits;
    uint64_t off;
    int64_t new_block;
    int ret;

    *refblock = NULL;
    ret = refblock_offset(bs, table_index, &off);
    if (ret < 0) {
        return ret;
    }
    if (off) {
        return qcow2_cache_get(bs, s->refblock_cache, off, refblock);
    }

    /* the reftable is about to change: L2 tables must not lag behind */
    ret = qcow2_cache_flush(bs, s->l2_cache);
    if (ret < 0) {
        return ret;
    }
    new_block = alloc_clusters_noref(bs, s->cluster_size);
    if (new_block < 0) {
        return new_block;
    }
    if (in_same_refblock(s, new_block, cluster_index << s->cluster_bits)) {
        /* the block describes itself */
        ret = qcow2_cache_get_empty(bs, s->refblock_cache, new_block,
                                    refblock);
        if (ret < 0) {
            return ret;
        }
        memset(*refblock, 0, s->cluster_size);
        rc_set(s, *refblock,
               ((uint64_t)new_block >> s->cluster_bits) &
                   (s->refblock_size - 1), 1);
    } else {
        /* described by another block; this recurses at most twice */
        ret = qcow2_update_refcount(bs, new_block, s->cluster_size, 1, false,
                                    QCOW2_DISCARD_NEVER);
        if (ret < 0) {
            return ret;
        }
        ret = qcow2_cache_flush(bs, s->refblock_cache);
        if (ret < 0) {
            return ret;
        }
        ret = qcow2_cache_get_empty(bs, s->refblock_cache, new_block,
                                    refblock);
        if (ret < 0) {
            return ret;
        }
        memset(*refblock, 0, s->cluster_size);
    }
    qcow2_cache_mark_dirty(s->refblock_cache, *refblock);
    ret = qcow2_cache_flush(bs, s->refblock_cache);
    if (ret < 0) {
        goto fail;
    }

    if (table_index < s->refcount_table_size) {
        uint8_t be[8];
        qcow2_st64(be, new_block);
        ret = blk_co_pwrite(bs->file, s->refcount_table_offset +
                            table_index * 8, 8, be, 0);
        if (ret >= 0) {
            ret = blk_co_flush(bs->file);
        }
        if (ret < 0) {
            goto fail;
        }
        s->refcount_table[table_index] = new_block;
        s->max_refcount_table_index = MAX(s->max_refcount_table_index,
                                          (uint32_t)table_index);
        qcow2_cache_put(s->refblock_cache, refblock);
        return -EAGAIN;
    }
    qcow2_cache_put(s->refblock_cache, refblock);

    /* The table is full: new self-describing refcount structures go right
     * after the area the existing blocks (and new_block) cover, and the
     * new table takes over in one header write. */
    uint64_t used = MAX(cluster_index + 1,
                        ((uint64_t)new_block >> s->cluster_bits) + 1);
    uint64_t blocks_used = DIV_ROUND_UP(used, s->refblock_size);
    if (blocks_used > QCOW2_MAX_REFTABLE_SIZE / 8) {
        return -EFBIG;
    }
    uint64_t meta_offset = (blocks_used * s->refblock_size) << s->cluster_bits;
    int64_t r = qcow2_refcount_area(bs, meta_offset, 0, false,
                                    (uint32_t)table_index, new_block);
    if (r < 0) {
        return (int)r;
    }
    return -EAGAIN;

fail:
    if (*refblock) {
        qcow2_cache_put(s->refblock_cache, refblock);
    }
    return ret;
}

int64_t qcow2_refcount_metadata_size(int64_t clusters, uint32_t cluster_size,
                                     unsigned refcount_order,
                                     bool generous_increase,
                                     uint64_t *refblock_count)
{
    /* Refcount metadata counts itself too: iterate to the fixed point
     * where the blocks and table clusters cover everything, themselves
     * included. */
    int64_t per_table_cluster = cluster_size / 8;
    int64_t per_block = (int64_t)cluster_size * 8 >> refcount_order;
    int64_t table = 0, blocks = 0, n = 0, last;

    do {
        last = n;
        blocks = DIV_ROUND_UP(clusters + table + blocks, per_block);
        table = DIV_ROUND_UP(blocks, per_table_cluster);
        n = clusters + blocks + table;
        if (n == last && generous_increase) {
            clusters += DIV_ROUND_UP(table, 2);
            n = 0;
            generous_increase = false;
        }
    } while (n != last);

    if (refblock_count) {
        *refblock_count = blocks;
    }
    return (blocks + table) * cluster_size;
}

int64_t coroutine_fn qcow2_refcount_area(struct blk_node *bs,
                                         uint64_t start_offset,
                                         uint64_t additional_clusters,
                                         bool exact_size,
                                         uint32_t new_refblock_index,
                                         uint64_t new_refblock_offset)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t total_u64, table_size, table_clusters, extra = 0;
    uint64_t area_index, table_offset, block_offset, end_offset;
    uint64_t *new_table;
    uint8_t hdr[12];
    int ret;

    qcow2_refcount_metadata_size(start_offset / s->cluster_size +
                                     additional_clusters,
                                 s->cluster_size, s->refcount_order,
                                 !exact_size, &total_u64);
    if (total_u64 > QCOW2_MAX_REFTABLE_SIZE) {
        return -EFBIG;
    }
    area_index = (start_offset / s->cluster_size) / s->refblock_size;
    table_size = exact_size ? total_u64
                            : total_u64 + DIV_ROUND_UP(total_u64, 2);
    table_size = ROUND_UP(table_size, s->cluster_size / 8);
    table_clusters = table_size * 8 / s->cluster_size;
    if (table_size > QCOW2_MAX_REFTABLE_SIZE / 8) {
        return -EFBIG;
    }

    new_table = xzalloc(table_size * 8);
    if (table_size > s->max_refcount_table_index) {
        memcpy(new_table, s->refcount_table,
               MIN((uint64_t)s->max_refcount_table_index + 1,
                   (uint64_t)s->refcount_table_size) * 8);
    } else {
        /* shrinking: only empty space lies beyond start_offset */
        memcpy(new_table, s->refcount_table, table_size * 8);
    }
    if (new_refblock_offset) {
        new_table[new_refblock_index] = new_refblock_offset;
    }
    for (uint64_t i = area_index; i < total_u64; i++) {
        if (!new_table[i]) {
            extra++;
        }
    }
    table_offset = start_offset + extra * s->cluster_size;
    end_offset = table_offset + table_clusters * s->cluster_size;

    /* fill existing and new refcount blocks: the new structures count 1 */
    block_offset = start_offset;
    for (uint64_t i = area_index; i < total_u64; i++) {
        uint64_t first = (i * s->refblock_size) << s->cluster_bits;
        void *blk;

        if (new_table[i]) {
            ret = qcow2_cache_get(bs, s->refblock_cache, new_table[i], &blk);
        } else {
            ret = qcow2_cache_get_empty(bs, s->refblock_cache, block_offset,
                                        &blk);
            if (ret >= 0) {
                memset(blk, 0, s->cluster_size);
                qcow2_cache_mark_dirty(s->refblock_cache, blk);
                new_table[i] = block_offset;
                block_offset += s->cluster_size;
            }
        }
        if (ret < 0) {
            goto fail;
        }
        if (first < end_offset) {
            uint64_t j = first < start_offset
                             ? (start_offset - first) / s->cluster_size : 0;
            uint64_t end = MIN((end_offset - first) / s->cluster_size,
                               (uint64_t)s->refblock_size);
            for (; j < end; j++) {
                rc_set(s, blk, j, 1);
            }
            qcow2_cache_mark_dirty(s->refblock_cache, blk);
        }
        qcow2_cache_put(s->refblock_cache, &blk);
    }

    ret = qcow2_cache_flush(bs, s->refblock_cache);
    if (ret < 0) {
        goto fail;
    }
    for (uint64_t i = 0; i < table_size; i++) {
        qcow2_st64(&new_table[i], new_table[i]);
    }
    ret = qcow2_pre_write_overlap_check(bs, 0, table_offset, table_size * 8);
    if (ret >= 0) {
        ret = blk_co_pwrite(bs->file, table_offset, table_size * 8,
                            new_table, 0);
    }
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    for (uint64_t i = 0; i < table_size; i++) {
        new_table[i] = qcow2_ld64(&new_table[i]);
    }
    if (ret < 0) {
        goto fail;
    }

    qcow2_st64(hdr, table_offset);
    qcow2_st32(hdr + 8, (uint32_t)table_clusters);
    ret = blk_co_pwrite(bs->file, QCOW2_HDR_REFTABLE_OFFSET, sizeof(hdr), hdr,
                        0);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        goto fail;
    }

    uint64_t old_offset = s->refcount_table_offset;
    uint64_t old_size = s->refcount_table_size;
    free(s->refcount_table);
    s->refcount_table = new_table;
    s->refcount_table_size = (uint32_t)table_size;
    s->refcount_table_offset = table_offset;
    update_max_refcount_table_index(s);
    qcow2_free_clusters(bs, old_offset, old_size * 8, QCOW2_DISCARD_OTHER);
    return (int64_t)end_offset;

fail:
    free(new_table);
    return ret;
}

/* ---- freed ranges passed down as discards ---- */

void coroutine_fn qcow2_process_discards(struct blk_node *bs, int ret)
{
    struct qcow2_state *s = bs->opaque;

    while (s->discards) {
        struct qcow2_discard *d = s->discards;
        s->discards = d->next;
        if (ret >= 0) {
            blk_co_discard(bs->file, d->offset, d->bytes); /* advisory */
        }
        free(d);
    }
}

static void queue_discard(struct qcow2_state *s, uint64_t offset,
                          uint64_t bytes)
{
    struct qcow2_discard *d, **pp;

    for (d = s->discards; d; d = d->next) {
        if (d->offset + d->bytes == offset) {
            d->bytes += bytes;
            goto merge;
        }
        if (offset + bytes == d->offset) {
            d->offset = offset;
            d->bytes += bytes;
            goto merge;
        }
    }
    d = xzalloc(sizeof(*d));
    d->offset = offset;
    d->bytes = bytes;
    for (pp = &s->discards; *pp; pp = &(*pp)->next) {
    }
    *pp = d;
    return;
merge:
    /* the grown range may now touch another one */
    for (pp = &s->discards; *pp;) {
        struct qcow2_discard *p = *pp;
        if (p != d && (p->offset == d->offset + d->bytes ||
                       d->offset == p->offset + p->bytes)) {
            d->offset = MIN(d->offset, p->offset);
            d->bytes += p->bytes;
            *pp = p->next;
            free(p);
        } else {
            pp = &p->next;
        }
    }
}

/* ---- changing refcounts ---- */

/* Add or subtract addend on every cluster of [offset, offset+length),
 * allocating refcount blocks on the way (then -EAGAIN: see
 * alloc_refcount_block); on failure what was done is undone. */
int coroutine_fn qcow2_update_refcount(struct blk_node *bs, uint64_t offset,
                                       uint64_t length, uint64_t addend,
                                       bool decrease,
                                       enum qcow2_discard_type type)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t start, last, cluster_offset;
    int64_t old_table_index = -1;
    void *blk = NULL;
    uint64_t blk_offset = 0;
    int ret = 0;

    if (length == 0) {
        return 0;
    }
    if (decrease) {
        /* L2 entries dropping the reference reach the disk first */
        ret = qcow2_cache_set_dependency(bs, s->refblock_cache, s->l2_cache);
        if (ret < 0) {
            return ret;
        }
    }
    start = qcow2_start_of_cluster(s, offset);
    last = qcow2_start_of_cluster(s, offset + length - 1);
    for (cluster_offset = start; cluster_offset <= last;
         cluster_offset += s->cluster_size) {
        uint64_t cluster_index = cluster_offset >> s->cluster_bits;
        int64_t table_index = cluster_index >> s->refblock_bits;
        uint64_t block_index = cluster_index & (s->refblock_size - 1);
        uint64_t rc;

        if (table_index != old_table_index) {
            if (blk) {
                qcow2_cache_put(s->refblock_cache, &blk);
            }
            ret = alloc_refcount_block(bs, cluster_index, &blk);
            if (ret == -EAGAIN &&
                s->free_cluster_index > (start >> s->cluster_bits)) {
                /* the caller searches again: the same clusters first */
                s->free_cluster_index = start >> s->cluster_bits;
            }
            if (ret < 0) {
                goto fail;
            }
            blk_offset = s->refcount_table[table_index] &
                         QCOW2_REFT_OFFSET_MASK;
        }
        old_table_index = table_index;
        qcow2_cache_mark_dirty(s->refblock_cache, blk);

        rc = rc_get(s, blk, block_index);
        if (decrease ? rc < addend
                     : (rc + addend < rc || rc + addend > s->refcount_max)) {
            ret = -EINVAL;
            goto fail;
        }
        rc = decrease ? rc - addend : rc + addend;
        if (rc == 0 && cluster_index < s->free_cluster_index) {
            s->free_cluster_index = cluster_index;
        }
        rc_set(s, blk, block_index, rc);

        if (rc == 0) {
            /* packed compressed data must not continue in a free cluster */
            if (s->free_byte_offset &&
                qcow2_start_of_cluster(s, s->free_byte_offset) ==
                    cluster_offset) {
                s->free_byte_offset = 0;
            }
            /* a freed table must not be written back over new data */
            if (cluster_offset == blk_offset) {
                qcow2_cache_put(s->refblock_cache, &blk);
                old_table_index = -1;
            }
            qcow2_cache_discard(s->refblock_cache, cluster_offset);
            qcow2_cache_discard(s->l2_cache, cluster_offset);
            if (s->discard_passthrough[type]) {
                queue_discard(s, cluster_offset, s->cluster_size);
            }
        }
    }
    ret = 0;
fail:
    if (!s->cache_discards) {
        qcow2_process_discards(bs, ret);
    }
    if (blk) {
        qcow2_cache_put(s->refblock_cache, &blk);
    }
    if (ret < 0 && cluster_offset > start) {
        /* undo what was done (may fail again; nothing more to do then) */
        qcow2_update_refcount(bs, offset, cluster_offset - offset, addend,
                              !decrease, QCOW2_DISCARD_NEVER);
    }
    return ret;
}

int64_t coroutine_fn qcow2_alloc_clusters(struct blk_node *bs, uint64_t size)
{
    int64_t offset;
    int ret;

    do {
        offset = alloc_clusters_noref(bs, size);
        if (offset < 0) {
            return offset;
        }
        ret = qcow2_update_refcount(bs, offset, size, 1, false,
                                    QCOW2_DISCARD_NEVER);
    } while (ret == -EAGAIN);
    return ret < 0 ? ret : offset;
}

int64_t coroutine_fn qcow2_alloc_bytes(struct blk_node *bs, uint64_t size)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t offset = s->free_byte_offset, free_in_cluster, rc;
    int64_t new_cluster;
    int ret;

    if (size == 0 || size > s->cluster_size) {
        return -EINVAL;
    }
    if (offset) {
        /* a cluster shared by as many compressed clusters as a refcount
         * can count is full */
        ret = qcow2_get_refcount(bs, offset >> s->cluster_bits, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc == s->refcount_max) {
            offset = 0;
        }
    }
    free_in_cluster = s->cluster_size - qcow2_offset_into_cluster(s, offset);
    do {
        if (!offset || free_in_cluster < size) {
            new_cluster = alloc_clusters_noref(bs, s->cluster_size);
            if (new_cluster < 0) {
                return new_cluster;
            }
            if (new_cluster == 0) {
                return qcow2_signal_corruption(bs, true, "Preventing invalid "
                                               "allocation of compressed "
                                               "cluster at offset 0");
            }
            if (!offset || ROUND_UP(offset, (uint64_t)s->cluster_size) !=
                               (uint64_t)new_cluster) {
                offset = (uint64_t)new_cluster;
                free_in_cluster = s->cluster_size;
            } else {
                free_in_cluster += s->cluster_size; /* spills over */
            }
        }
        ret = qcow2_update_refcount(bs, offset, size, 1, false,
                                    QCOW2_DISCARD_NEVER);
        if (ret < 0) {
            offset = 0;
        }
    } while (ret == -EAGAIN);
    if (ret < 0) {
        return ret;
    }
    /* the refcounts reach the disk before the L2 entry using them */
    ret = qcow2_cache_set_dependency(bs, s->l2_cache, s->refblock_cache);
    if (ret < 0) {
        return ret;
    }
    s->free_byte_offset = offset + size;
    if (!qcow2_offset_into_cluster(s, s->free_byte_offset)) {
        s->free_byte_offset = 0;
    }
    return (int64_t)offset;
}

int64_t coroutine_fn qcow2_alloc_clusters_at(struct blk_node *bs,
                                             uint64_t offset, uint64_t nb)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t i, rc;
    int ret;

    if (nb == 0) {
        return 0;
    }
    do {
        uint64_t idx = offset >> s->cluster_bits;
        for (i = 0; i < nb; i++) {
            ret = qcow2_get_refcount(bs, idx + i, &rc);
            if (ret < 0) {
                return ret;
            }
            if (rc != 0) {
                break;
            }
        }
        ret = qcow2_update_refcount(bs, offset, i << s->cluster_bits, 1,
                                    false, QCOW2_DISCARD_NEVER);
    } while (ret == -EAGAIN);
    return ret < 0 ? ret : (int64_t)i;
}

void coroutine_fn qcow2_free_clusters(struct blk_node *bs, uint64_t offset,
                                      uint64_t size,
                                      enum qcow2_discard_type type)
{
    /* a failure leaks the clusters, which check -r can reclaim */
    qcow2_update_refcount(bs, offset, size, 1, true, type);
}

void coroutine_fn qcow2_free_any_cluster(struct blk_node *bs,
                                         uint64_t l2_entry,
                                         enum qcow2_discard_type type)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t off, bytes;

    switch (qcow2_cluster_type(s, l2_entry)) {
    case QCOW2_CLUSTER_COMPRESSED:
        qcow2_compressed_range(s, l2_entry, &off, &bytes);
        qcow2_free_clusters(bs, off, bytes, type);
        break;
    case QCOW2_CLUSTER_NORMAL:
    case QCOW2_CLUSTER_ZERO_ALLOC:
        off = l2_entry & QCOW2_L2E_OFFSET_MASK;
        if (qcow2_offset_into_cluster(s, off)) {
            qcow2_signal_corruption(bs, false, "Cannot free unaligned "
                                    "cluster %#llx", (unsigned long long)off);
        } else {
            qcow2_free_clusters(bs, off, s->cluster_size, type);
        }
        break;
    default:
        break;
    }
}

int64_t coroutine_fn qcow2_get_last_cluster(struct blk_node *bs,
                                            uint64_t size)
{
    struct qcow2_state *s = bs->opaque;

    for (int64_t i = (int64_t)qcow2_size_to_clusters(s, size) - 1; i >= 0;
         i--) {
        uint64_t rc;
        int ret = qcow2_get_refcount(bs, i, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc > 0) {
            return i;
        }
    }
    return qcow2_signal_corruption(bs, true, "There are no references in "
                                   "the refcount table.");
}
