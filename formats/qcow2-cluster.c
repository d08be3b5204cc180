/* qcow2 cluster mapping: L1 -> L2 -> host clusters, growing the L1 table,
 * allocating L2 tables (copying shared ones), choosing host clusters for
 * writes and entering them once the data is written, zeroing and
 * discarding clusters.  Everything here runs with s->lock held. */
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
    if (l2_entry & QCOW2_OFLAG_ZERO) {
        return (l2_entry & QCOW2_L2E_OFFSET_MASK) ? QCOW2_CLUSTER_ZERO_ALLOC
                                                  : QCOW2_CLUSTER_ZERO_PLAIN;
    }
    if (!(l2_entry & QCOW2_L2E_OFFSET_MASK)) {
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

static uint64_t l2_get(const void *l2, uint32_t i)
{
    return qcow2_ld64((const uint8_t *)l2 + 8 * (size_t)i);
}

static void l2_set(void *l2, uint32_t i, uint64_t v)
{
    qcow2_st64((uint8_t *)l2 + 8 * (size_t)i, v);
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
    avail = (uint64_t)count_run(s, l2, l2_index,
                                (uint32_t)qcow2_size_to_clusters(s, needed))
            << s->cluster_bits;
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
static int coroutine_fn get_l2_for_write(struct blk_node *bs, uint64_t offset,
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

/* ---- allocation for writes ---- */

/* Clusters without refcount 1 (or none at all) are written elsewhere. */
static bool needs_new_cluster(const struct qcow2_state *s, uint64_t e)
{
    switch (qcow2_cluster_type(s, e)) {
    case QCOW2_CLUSTER_NORMAL:
    case QCOW2_CLUSTER_ZERO_ALLOC:
        return !(e & QCOW2_OFLAG_COPIED);
    default:
        return true;
    }
}

/* Wait for an allocation overlapping [offset, offset + *bytes); one that
 * starts later only shortens *bytes.  Returns true after waiting (the
 * caller looks at the L2 table again). */
static bool coroutine_fn wait_dependency(struct blk_node *bs,
                                         uint64_t offset, uint64_t *bytes)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t end = offset + *bytes;

    for (struct qcow2_alloc *m = s->allocs; m; m = m->next) {
        uint64_t ms = m->guest_offset;
        uint64_t me = ms + (m->nb_clusters << s->cluster_bits);
        if (end <= ms || offset >= me) {
            continue;
        }
        if (offset < ms) {
            *bytes = ms - offset;
            end = ms;
            continue;
        }
        co_mutex_unlock(&s->lock);
        co_queue_wait(&m->waiters);
        co_mutex_lock(&s->lock);
        return true;
    }
    return false;
}

void coroutine_fn qcow2_wait_allocs(struct blk_node *bs, uint64_t offset,
                                    uint64_t bytes)
{
    struct qcow2_state *s = bs->opaque;
    bool waited;

    do {
        waited = false;
        for (struct qcow2_alloc *m = s->allocs; m; m = m->next) {
            uint64_t ms = m->guest_offset;
            uint64_t me = ms + (m->nb_clusters << s->cluster_bits);
            if (offset < me && ms < offset + bytes) {
                co_mutex_unlock(&s->lock);
                co_queue_wait(&m->waiters);
                co_mutex_lock(&s->lock);
                waited = true;
                break;
            }
        }
    } while (waited);
}

static void register_alloc(struct qcow2_state *s, struct qcow2_alloc *m)
{
    co_queue_init(&m->waiters);
    m->prev = NULL;
    m->next = s->allocs;
    if (s->allocs) {
        s->allocs->prev = m;
    }
    s->allocs = m;
}

static void unregister_alloc(struct qcow2_state *s, struct qcow2_alloc *m)
{
    if (m->prev) {
        m->prev->next = m->next;
    } else {
        s->allocs = m->next;
    }
    if (m->next) {
        m->next->prev = m->prev;
    }
    co_queue_wake_all(&m->waiters);
}

int coroutine_fn qcow2_alloc_host_offset(struct blk_node *bs,
                                         uint64_t offset, uint64_t *bytes,
                                         uint64_t hint, uint64_t *host,
                                         struct qcow2_alloc **alloc)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t in_cluster, cluster_start, e, hc;
    uint32_t l2_index, max, n, slice_left;
    struct qcow2_alloc *m;
    void *l2;
    int ret;

    *alloc = NULL;
again:
    if (s->dead) {
        return -EIO;
    }
    if (wait_dependency(bs, offset, bytes)) {
        goto again;
    }
    in_cluster = qcow2_offset_into_cluster(s, offset);
    cluster_start = offset - in_cluster;
    ret = get_l2_for_write(bs, offset, &l2, &l2_index);
    if (ret < 0) {
        return ret;
    }
    slice_left = s->l2_slice_size - (l2_index & (s->l2_slice_size - 1));
    max = (uint32_t)MIN((uint64_t)slice_left,
                        qcow2_size_to_clusters(s, in_cluster + *bytes));
    e = l2_get(l2, l2_index);

    if (!needs_new_cluster(s, e)) {
        /* clusters of our own: written in place; preallocated zero
         * clusters among them get their zero flag cleared afterwards */
        bool all_normal = true;
        hc = e & QCOW2_L2E_OFFSET_MASK;
        if (qcow2_offset_into_cluster(s, hc)) {
            qcow2_cache_put(s->l2_cache, &l2);
            return qcow2_signal_corruption(bs, true, "Preallocated zero/"
                                           "normal cluster offset %#llx "
                                           "unaligned (guest offset: %#llx)",
                                           (unsigned long long)hc,
                                           (unsigned long long)offset);
        }
        for (n = 0; n < max; n++) {
            uint64_t x = l2_get(l2, l2_index + n);
            if (needs_new_cluster(s, x) ||
                (x & QCOW2_L2E_OFFSET_MASK) !=
                    hc + ((uint64_t)n << s->cluster_bits)) {
                break;
            }
            all_normal &= qcow2_cluster_type(s, x) == QCOW2_CLUSTER_NORMAL;
        }
        *bytes = MIN(*bytes, ((uint64_t)n << s->cluster_bits) - in_cluster);
        *host = hc + in_cluster;
        if (all_normal) {
            qcow2_cache_put(s->l2_cache, &l2);
            return qcow2_pre_write_overlap_check(bs, 0, *host, *bytes);
        }
        m = xzalloc(sizeof(*m));
        m->keep_old = true;
        m->host_offset = hc;
    } else {
        for (n = 1; n < max; n++) {
            if (!needs_new_cluster(s, l2_get(l2, l2_index + n))) {
                break;
            }
        }
        int64_t off = 0, got = 0;
        if (hint) {
            /* continue where the request's previous part went (QEMU) */
            got = qcow2_alloc_clusters_at(bs, hint, n);
            if (got > 0) {
                off = (int64_t)hint;
                n = (uint32_t)got;
            }
        }
        if (got == 0) {
            off = qcow2_alloc_clusters(bs, (uint64_t)n << s->cluster_bits);
        } else if (got < 0) {
            off = got;
        }
        if (off < 0) {
            qcow2_cache_put(s->l2_cache, &l2);
            return (int)off;
        }
        *bytes = MIN(*bytes, ((uint64_t)n << s->cluster_bits) - in_cluster);
        *host = (uint64_t)off + in_cluster;
        m = xzalloc(sizeof(*m));
        m->host_offset = (uint64_t)off;
    }
    m->guest_offset = cluster_start;
    m->nb_clusters = qcow2_size_to_clusters(s, in_cluster + *bytes);
    m->old_first = l2_get(l2, l2_index);
    m->old_last = l2_get(l2, l2_index + (uint32_t)m->nb_clusters - 1);
    m->cow_head = in_cluster;
    m->cow_tail = (m->nb_clusters << s->cluster_bits) - in_cluster - *bytes;
    if (m->keep_old) {
        /* only preallocated zero clusters need their rest zeroed */
        if (qcow2_cluster_type(s, m->old_first) == QCOW2_CLUSTER_NORMAL) {
            m->cow_head = 0;
        }
        if (qcow2_cluster_type(s, m->old_last) == QCOW2_CLUSTER_NORMAL) {
            m->cow_tail = 0;
        }
    }
    qcow2_cache_put(s->l2_cache, &l2);

    ret = qcow2_pre_write_overlap_check(bs, 0, m->host_offset,
                                        m->nb_clusters << s->cluster_bits);
    if (ret < 0) {
        if (!m->keep_old) {
            qcow2_free_clusters(bs, m->host_offset,
                                m->nb_clusters << s->cluster_bits,
                                QCOW2_DISCARD_NEVER);
        }
        free(m);
        return ret;
    }
    register_alloc(s, m);
    *alloc = m;
    return 0;
}

int coroutine_fn qcow2_alloc_link_l2(struct blk_node *bs,
                                     struct qcow2_alloc *m)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t *old = xmalloc(sizeof(*old) * m->nb_clusters);
    uint32_t l2_index;
    void *l2;
    int ret;

    ret = get_l2_for_write(bs, m->guest_offset, &l2, &l2_index);
    if (ret < 0) {
        goto out;
    }
    /* the new clusters' refcounts are on disk before these entries */
    ret = qcow2_cache_set_dependency(bs, s->l2_cache, s->refblock_cache);
    if (ret < 0) {
        qcow2_cache_put(s->l2_cache, &l2);
        goto out;
    }
    for (uint64_t i = 0; i < m->nb_clusters; i++) {
        old[i] = l2_get(l2, l2_index + (uint32_t)i);
        l2_set(l2, l2_index + (uint32_t)i,
               (m->host_offset + (i << s->cluster_bits)) | QCOW2_OFLAG_COPIED);
    }
    qcow2_cache_mark_dirty(s->l2_cache, l2);
    qcow2_cache_put(s->l2_cache, &l2);
    if (!m->keep_old) {
        for (uint64_t i = 0; i < m->nb_clusters; i++) {
            qcow2_free_any_cluster(bs, old[i], QCOW2_DISCARD_NEVER);
        }
    }
out:
    free(old);
    if (ret < 0) {
        qcow2_alloc_abort(bs, m);
        return ret;
    }
    unregister_alloc(s, m);
    free(m);
    return 0;
}

void coroutine_fn qcow2_alloc_abort(struct blk_node *bs,
                                    struct qcow2_alloc *m)
{
    struct qcow2_state *s = bs->opaque;

    if (!m->keep_old) {
        qcow2_free_clusters(bs, m->host_offset,
                            m->nb_clusters << s->cluster_bits,
                            QCOW2_DISCARD_ALWAYS);
    }
    unregister_alloc(s, m);
    free(m);
}

int coroutine_fn qcow2_link_prealloc(struct blk_node *bs, uint64_t guest,
                                     uint64_t host, uint64_t nb_clusters,
                                     uint64_t keep)
{
    struct qcow2_alloc *m = xzalloc(sizeof(*m));
    int ret;

    m->guest_offset = guest;
    m->host_offset = host;
    m->nb_clusters = nb_clusters;
    register_alloc(bs->opaque, m);
    if (keep) {
        /* the start of the first cluster is in use: copy it over */
        uint64_t bytes = keep, h;
        ret = qcow2_get_host_offset(bs, guest, &bytes, &h, &m->old_first);
        m->cow_head = keep;
        if (ret >= 0) {
            ret = qcow2_perform_cow(bs, m);
        }
        if (ret < 0) {
            qcow2_alloc_abort(bs, m);
            return ret;
        }
    }
    return qcow2_alloc_link_l2(bs, m);
}

/* ---- zeroing and discarding ---- */

/* Apply fn to every L2 entry of the clusters of [offset, offset + bytes),
 * one slice at a time, freeing what the new entries drop. */
static int coroutine_fn rewrite_entries(struct blk_node *bs, uint64_t offset,
                                        uint64_t bytes,
                                        uint64_t (*fn)(struct blk_node *bs,
                                                       uint64_t old,
                                                       unsigned arg,
                                                       bool *free_old),
                                        unsigned arg,
                                        enum qcow2_discard_type type)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t nb = qcow2_size_to_clusters(s, bytes);
    int ret = 0;

    s->cache_discards = true;
    while (nb > 0) {
        uint32_t l2_index, n;
        void *l2;

        ret = get_l2_for_write(bs, offset, &l2, &l2_index);
        if (ret < 0) {
            break;
        }
        n = s->l2_slice_size - (l2_index & (s->l2_slice_size - 1));
        n = (uint32_t)MIN((uint64_t)n, nb);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t old = l2_get(l2, l2_index + i);
            bool free_old = false;
            uint64_t new = fn(bs, old, arg, &free_old);
            if (new == old) {
                continue;
            }
            qcow2_cache_mark_dirty(s->l2_cache, l2);
            l2_set(l2, l2_index + i, new);
            if (free_old) {
                qcow2_free_any_cluster(bs, old, type);
            }
        }
        qcow2_cache_put(s->l2_cache, &l2);
        offset += (uint64_t)n << s->cluster_bits;
        nb -= n;
    }
    s->cache_discards = false;
    qcow2_process_discards(bs, ret);
    return ret;
}

/* New L2 entry for write_zeroes (QEMU: compressed clusters always go). */
static uint64_t zero_entry(struct blk_node *bs, uint64_t old, unsigned flags,
                           bool *free_old)
{
    struct qcow2_state *s = bs->opaque;
    enum qcow2_cluster_type t = qcow2_cluster_type(s, old);
    bool unmap = t == QCOW2_CLUSTER_COMPRESSED ||
                 ((flags & BLK_REQ_MAY_UNMAP) && qcow2_cluster_is_allocated(t));

    *free_old = unmap;
    return (unmap ? 0 : old) | QCOW2_OFLAG_ZERO;
}

int coroutine_fn qcow2_cluster_zeroize(struct blk_node *bs, uint64_t offset,
                                       uint64_t bytes, unsigned flags)
{
    struct qcow2_state *s = bs->opaque;

    if (s->version < 3) {
        /* no zero flag before v3, but without a backing file unallocated
         * clusters read as zeroes */
        if (bs->backing || bs->backing_file) {
            return -ENOTSUP;
        }
        return qcow2_cluster_discard(bs, offset, bytes, QCOW2_DISCARD_REQUEST,
                                     false);
    }
    return rewrite_entries(bs, offset, bytes, zero_entry, flags,
                           QCOW2_DISCARD_REQUEST);
}

/* New L2 entry for discard; *free_old when the old one is dropped. */
static uint64_t discard_entry(struct blk_node *bs, uint64_t old,
                              unsigned full, bool *free_old)
{
    struct qcow2_state *s = bs->opaque;
    enum qcow2_cluster_type t = qcow2_cluster_type(s, old);
    uint64_t new = old;

    if (full) {
        new = 0;
    } else if (bs->backing || bs->backing_file ||
               qcow2_cluster_is_allocated(t)) {
        /* must keep reading zeroes: v2 can only fall back to the backing */
        new = s->version >= 3 ? QCOW2_OFLAG_ZERO : 0;
    }
    *free_old = new != old;
    return new;
}

int coroutine_fn qcow2_cluster_discard(struct blk_node *bs, uint64_t offset,
                                       uint64_t bytes,
                                       enum qcow2_discard_type type,
                                       bool full_discard)
{
    return rewrite_entries(bs, offset, bytes, discard_entry, full_discard,
                           type);
}
