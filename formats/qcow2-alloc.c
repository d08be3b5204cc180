/* qcow2 allocation for writes: choosing host clusters for a write (with
 * copy-on-write of the partial clusters at its edges, per subcluster with
 * extended L2 entries), the in-flight allocations later writes to the
 * same clusters wait for, and entering the clusters into the L2 table once
 * the data is written (or giving them back when it failed).  Mapping
 * lookups, the L1 table and L2 allocation are in qcow2-cluster.c.
 * Everything here runs with s->lock held. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

#define l2_get(l2, i) qcow2_l2_entry(s, (l2), (i))
#define l2_set(l2, i, v) qcow2_set_l2_entry(s, (l2), (i), (v))

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

void qcow2_register_alloc(struct qcow2_state *s, struct qcow2_alloc *m)
{
    co_queue_init(&m->waiters);
    m->prev = NULL;
    m->next = s->allocs;
    if (s->allocs) {
        s->allocs->prev = m;
    }
    s->allocs = m;
}

void qcow2_unregister_alloc(struct qcow2_state *s, struct qcow2_alloc *m)
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

/* Extended L2: are all subclusters of the write [in_cluster, + bytes)
 * from entry l2_index on allocated (no COW needed in place)? */
static bool ext_all_normal(const struct qcow2_state *s, const void *l2,
                           uint32_t l2_index, uint64_t in_cluster,
                           uint64_t bytes)
{
    uint64_t first = in_cluster >> s->subcluster_bits;
    uint64_t last = (in_cluster + bytes - 1) >> s->subcluster_bits;

    for (uint64_t i = first; i <= last; i++) {
        uint32_t c = l2_index + (uint32_t)(i / QCOW2_EXTL2_SUBCLUSTERS);
        if (qcow2_subcluster_type(s, l2_get(l2, c), qcow2_l2_bitmap(s, l2, c),
                                  (unsigned)(i % QCOW2_EXTL2_SUBCLUSTERS)) !=
            QCOW2_CLUSTER_NORMAL) {
            return false;
        }
    }
    return true;
}

/* Extended L2: the copy-on-write parts of an allocation as QEMU chooses
 * them (calculate_l2_meta): only the subclusters the write touches, plus
 * the allocated subclusters of an old cluster that moves. */
static void ext_cow(const struct qcow2_state *s, struct qcow2_alloc *m,
                    uint64_t in_cluster, uint64_t bytes)
{
    uint64_t end = in_cluster + bytes; /* from guest_offset */
    uint64_t last_start = (m->nb_clusters - 1) << s->cluster_bits;
    uint64_t end_in_last = end - last_start;
    unsigned sc = (unsigned)(in_cluster >> s->subcluster_bits);
    unsigned lsc = (unsigned)((end_in_last - 1) >> s->subcluster_bits);
    uint64_t from, to;
    uint32_t alloc;
    int t;

    t = qcow2_subcluster_type(s, m->old_first, m->old_first_bitmap, sc);
    alloc = (uint32_t)(m->old_first_bitmap & QCOW2_L2_BITMAP_ALL_ALLOC);
    if (m->keep_old) {
        from = t == QCOW2_CLUSTER_NORMAL
                   ? in_cluster
                   : (uint64_t)sc << s->subcluster_bits;
    } else if (t == QCOW2_CLUSTER_COMPRESSED) {
        from = 0;
    } else if (m->old_first & QCOW2_L2E_OFFSET_MASK) {
        unsigned first_alloc = alloc ? (unsigned)__builtin_ctz(alloc) : 32;
        from = (uint64_t)MIN(sc, first_alloc) << s->subcluster_bits;
    } else {
        from = (uint64_t)sc << s->subcluster_bits;
    }

    t = qcow2_subcluster_type(s, m->old_last, m->old_last_bitmap, lsc);
    alloc = (uint32_t)(m->old_last_bitmap & QCOW2_L2_BITMAP_ALL_ALLOC);
    if (m->keep_old) {
        to = t == QCOW2_CLUSTER_NORMAL
                 ? end_in_last
                 : ROUND_UP(end_in_last, (uint64_t)s->subcluster_size);
    } else if (t == QCOW2_CLUSTER_COMPRESSED) {
        to = s->cluster_size;
    } else if (m->old_last & QCOW2_L2E_OFFSET_MASK) {
        unsigned last_alloc = alloc ? (unsigned)__builtin_clz(alloc) : 32;
        to = s->cluster_size -
             ((uint64_t)MIN(QCOW2_EXTL2_SUBCLUSTERS - lsc - 1, last_alloc)
              << s->subcluster_bits);
    } else {
        to = ROUND_UP(end_in_last, (uint64_t)s->subcluster_size);
    }
    m->cow_head = in_cluster - from;
    m->cow_tail = to - end_in_last;
    m->written_from = from;
    m->written_to = last_start + to;
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
    ret = qcow2_get_l2_for_write(bs, offset, &l2, &l2_index);
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
        if (s->extended_l2) {
            all_normal = ext_all_normal(s, l2, l2_index, in_cluster, *bytes);
        }
        if (all_normal) {
            qcow2_cache_put(s->l2_cache, &l2);
            if (qcow2_has_data_file(s)) {
                return 0; /* nothing but data in the data file */
            }
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
        if (qcow2_has_data_file(s)) {
            /* QEMU: data file clusters at their guest offsets, with no
             * refcounts; the raw layout of data_file_raw comes free */
            got = n;
            off = (int64_t)cluster_start;
        } else if (hint) {
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
    if (s->extended_l2) {
        m->old_first_bitmap = qcow2_l2_bitmap(s, l2, l2_index);
        m->old_last_bitmap = qcow2_l2_bitmap(s, l2, l2_index +
                                             (uint32_t)m->nb_clusters - 1);
        ext_cow(s, m, in_cluster, *bytes);
    } else if (m->keep_old) {
        /* only preallocated zero clusters need their rest zeroed */
        if (qcow2_cluster_type(s, m->old_first) == QCOW2_CLUSTER_NORMAL) {
            m->cow_head = 0;
        }
        if (qcow2_cluster_type(s, m->old_last) == QCOW2_CLUSTER_NORMAL) {
            m->cow_tail = 0;
        }
    }
    qcow2_cache_put(s->l2_cache, &l2);

    ret = qcow2_has_data_file(s)
              ? 0
              : qcow2_pre_write_overlap_check(bs, 0, m->host_offset,
                                              m->nb_clusters
                                                  << s->cluster_bits);
    if (ret < 0) {
        if (!m->keep_old) {
            qcow2_free_clusters(bs, m->host_offset,
                                m->nb_clusters << s->cluster_bits,
                                QCOW2_DISCARD_NEVER);
        }
        free(m);
        return ret;
    }
    qcow2_register_alloc(s, m);
    *alloc = m;
    return 0;
}

/* Extended L2: the subclusters an allocation wrote into its cluster i
 * become allocated (and lose their zero bits). */
static void ext_mark_written(const struct qcow2_state *s,
                             const struct qcow2_alloc *m, void *l2,
                             uint32_t index, uint64_t i)
{
    uint64_t start = i << s->cluster_bits, bitmap;
    uint64_t from = MAX(m->written_from, start);
    uint64_t to = MIN(m->written_to, start + s->cluster_size);
    unsigned first = (unsigned)((from - start) >> s->subcluster_bits);
    unsigned last = (unsigned)((to - 1 - start) >> s->subcluster_bits);
    uint64_t range = qcow2_sc_alloc_range(first, last + 1);

    bitmap = qcow2_l2_bitmap(s, l2, index);
    bitmap = (bitmap | range) & ~(range << 32);
    qcow2_set_l2_bitmap(s, l2, index, bitmap);
}

int coroutine_fn qcow2_alloc_link_l2(struct blk_node *bs,
                                     struct qcow2_alloc *m)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t *old = xmalloc(sizeof(*old) * m->nb_clusters);
    uint32_t l2_index;
    void *l2;
    int ret;

    if (s->use_lazy_refcounts) {
        /* from now on refcounts may lag: a crash leaves the image dirty */
        ret = qcow2_mark_dirty(bs);
        if (ret < 0) {
            goto out;
        }
    }
    ret = qcow2_get_l2_for_write(bs, m->guest_offset, &l2, &l2_index);
    if (ret < 0) {
        goto out;
    }
    /* the new clusters' refcounts are on disk before these entries,
     * unless the dirty bit says they need not be */
    if (!(s->incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
        ret = qcow2_cache_set_dependency(bs, s->l2_cache,
                                         s->refblock_cache);
    }
    if (ret < 0) {
        qcow2_cache_put(s->l2_cache, &l2);
        goto out;
    }
    for (uint64_t i = 0; i < m->nb_clusters; i++) {
        old[i] = l2_get(l2, l2_index + (uint32_t)i);
        l2_set(l2, l2_index + (uint32_t)i,
               (m->host_offset + (i << s->cluster_bits)) | QCOW2_OFLAG_COPIED);
        if (s->extended_l2 && !m->prealloc) {
            ext_mark_written(s, m, l2, l2_index + (uint32_t)i, i);
        }
    }
    qcow2_cache_mark_dirty(s->l2_cache, l2);
    qcow2_cache_put(s->l2_cache, &l2);
    /* data file clusters stay where they are: nothing to release */
    if (!m->keep_old && !qcow2_has_data_file(s)) {
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
    qcow2_unregister_alloc(s, m);
    free(m);
    return 0;
}

void coroutine_fn qcow2_alloc_abort(struct blk_node *bs,
                                    struct qcow2_alloc *m)
{
    struct qcow2_state *s = bs->opaque;

    if (!m->keep_old && !qcow2_has_data_file(s)) {
        qcow2_free_clusters(bs, m->host_offset,
                            m->nb_clusters << s->cluster_bits,
                            QCOW2_DISCARD_ALWAYS);
    }
    qcow2_unregister_alloc(s, m);
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
    m->prealloc = true;
    qcow2_register_alloc(bs->opaque, m);
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
