/* qcow2 zeroing and discarding of guest clusters: rewriting their L2
 * entries (the zero flag, or nothing) slice by slice and freeing what the
 * old entries held.  Runs with s->lock held. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

#define l2_get(l2, i) qcow2_l2_entry(s, (l2), (i))
#define l2_set(l2, i, v) qcow2_set_l2_entry(s, (l2), (i), (v))

/* ---- zeroing and discarding ---- */

/* Apply fn to every L2 entry of the clusters of [offset, offset + bytes),
 * one slice at a time, freeing what the new entries drop. */
static int coroutine_fn rewrite_entries(struct blk_node *bs, uint64_t offset,
                                        uint64_t bytes,
                                        uint64_t (*fn)(struct blk_node *bs,
                                                       uint64_t old,
                                                       uint64_t *bitmap,
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

        ret = qcow2_get_l2_for_write(bs, offset, &l2, &l2_index);
        if (ret < 0) {
            break;
        }
        n = s->l2_slice_size - (l2_index & (s->l2_slice_size - 1));
        n = (uint32_t)MIN((uint64_t)n, nb);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t old = l2_get(l2, l2_index + i);
            uint64_t old_bitmap = qcow2_l2_bitmap(s, l2, l2_index + i);
            uint64_t bitmap = old_bitmap;
            bool free_old = false;
            uint64_t new = fn(bs, old, &bitmap, arg, &free_old);
            if (new == old && bitmap == old_bitmap) {
                continue;
            }
            qcow2_cache_mark_dirty(s->l2_cache, l2);
            l2_set(l2, l2_index + i, new);
            qcow2_set_l2_bitmap(s, l2, l2_index + i, bitmap);
            if (free_old) {
                qcow2_free_data_cluster(bs, old, type);
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
static uint64_t zero_entry(struct blk_node *bs, uint64_t old,
                           uint64_t *bitmap, unsigned flags, bool *free_old)
{
    struct qcow2_state *s = bs->opaque;
    enum qcow2_cluster_type t = qcow2_cluster_type(s, old);
    bool unmap = t == QCOW2_CLUSTER_COMPRESSED ||
                 ((flags & BLK_REQ_MAY_UNMAP) && qcow2_cluster_is_allocated(t));

    *free_old = unmap;
    if (s->extended_l2) {
        *bitmap = QCOW2_L2_BITMAP_ALL_ZEROES;
        return unmap ? 0 : old;
    }
    return (unmap ? 0 : old) | QCOW2_OFLAG_ZERO;
}

int coroutine_fn qcow2_cluster_zeroize(struct blk_node *bs, uint64_t offset,
                                       uint64_t bytes, unsigned flags)
{
    struct qcow2_state *s = bs->opaque;

    if (s->data_file_raw && s->data_file && offset < bs->size) {
        /* as QEMU: the raw data file reads as zeroes there first */
        int ret = blk_co_pwrite_zeroes(s->data_file, offset,
                                       MIN(bytes, bs->size - offset),
                                       flags & BLK_REQ_MAY_UNMAP);
        if (ret < 0) {
            return ret;
        }
    }
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
                              uint64_t *bitmap, unsigned full, bool *free_old)
{
    struct qcow2_state *s = bs->opaque;
    enum qcow2_cluster_type t = qcow2_cluster_type(s, old);
    uint64_t new = old;

    if (s->extended_l2) {
        /* as QEMU: zero bits keep it reading zeroes where needed */
        if (!full && !bs->backing && !bs->backing_file &&
            !qcow2_cluster_is_allocated(t)) {
            return old; /* reads as zeroes already */
        }
        *bitmap = full ? 0 : QCOW2_L2_BITMAP_ALL_ZEROES;
        *free_old = old != 0;
        return 0;
    }
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

/* ---- extended L2: zeroing subclusters ---- */

/* Zero bits for nb subclusters from offset, all in one cluster (QEMU's
 * zero_l2_subclusters); -ENOTSUP for a compressed cluster. */
static int coroutine_fn zero_subclusters(struct blk_node *bs, uint64_t offset,
                                         unsigned nb)
{
    struct qcow2_state *s = bs->opaque;
    unsigned sc = (unsigned)(qcow2_offset_into_cluster(s, offset) >>
                             s->subcluster_bits);
    uint64_t range = qcow2_sc_alloc_range(sc, sc + nb), e, old, bitmap;
    uint32_t l2_index;
    void *l2;
    int ret;

    ret = qcow2_get_l2_for_write(bs, offset, &l2, &l2_index);
    if (ret < 0) {
        return ret;
    }
    e = l2_get(l2, l2_index);
    old = qcow2_l2_bitmap(s, l2, l2_index);
    if (qcow2_cluster_type(s, e) == QCOW2_CLUSTER_COMPRESSED) {
        qcow2_cache_put(s->l2_cache, &l2);
        return -ENOTSUP;
    }
    bitmap = (old | (range << 32)) & ~range;
    if (bitmap != old) {
        qcow2_cache_mark_dirty(s->l2_cache, l2);
        qcow2_set_l2_bitmap(s, l2, l2_index, bitmap);
    }
    qcow2_cache_put(s->l2_cache, &l2);
    return 0;
}

/* Subcluster-aligned [offset, offset + bytes): partial clusters get zero
 * bits, whole ones zero entries (QEMU's qcow2_subcluster_zeroize). */
static int coroutine_fn ext_zeroize(struct blk_node *bs, uint64_t offset,
                                    uint64_t bytes, unsigned flags)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t end = offset + bytes, head, tail;
    int ret = 0;

    head = MIN(end, ROUND_UP(offset, (uint64_t)s->cluster_size)) - offset;
    offset += head;
    tail = end >= bs->size ? 0
                           : end - MAX(offset, qcow2_start_of_cluster(s, end));
    end -= tail;
    if (head) {
        ret = zero_subclusters(bs, offset - head,
                               (unsigned)DIV_ROUND_UP(head,
                                                      s->subcluster_size));
    }
    if (ret >= 0 && offset < end) {
        ret = rewrite_entries(bs, offset, end - offset, zero_entry, flags,
                              QCOW2_DISCARD_REQUEST);
    }
    if (ret >= 0 && tail) {
        ret = zero_subclusters(bs, end,
                               (unsigned)DIV_ROUND_UP(tail,
                                                      s->subcluster_size));
    }
    return ret;
}

/* Does the guest range read as zeroes in one status run (QEMU is_zero)? */
static bool coroutine_fn range_is_zero(struct blk_node *bs, uint64_t offset,
                                       uint64_t bytes)
{
    uint64_t pnum = 0;
    int ret;

    if (offset + bytes > bs->size) {
        bytes = offset < bs->size ? bs->size - offset : 0;
    }
    if (!bytes) {
        return true;
    }
    ret = blk_co_block_status_above(bs, NULL, offset, bytes, &pnum, NULL,
                                    NULL, NULL);
    return ret >= 0 && (ret & BLK_STATUS_ZERO) && pnum == bytes;
}

/* One request as QEMU's block layer hands it to the driver: inside one
 * subcluster, or subcluster aligned.  -ENOTSUP: zeroes must be written. */
static int coroutine_fn ext_zero_piece(struct blk_node *bs, uint64_t offset,
                                       uint64_t bytes, unsigned flags)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t sc = s->subcluster_size;
    uint64_t head = offset & (sc - 1);
    uint64_t tail = ROUND_UP(offset + bytes, sc) - (offset + bytes);
    int ret;

    if (head || tail) {
        if (!range_is_zero(bs, offset - head, head) ||
            !range_is_zero(bs, offset + bytes, tail)) {
            return -ENOTSUP;
        }
        offset -= head;
        bytes = sc;
    }
    co_mutex_lock(&s->lock);
    if (s->dead) {
        co_mutex_unlock(&s->lock);
        return -EIO;
    }
    qcow2_wait_allocs(bs, offset, bytes);
    if (head || tail) {
        uint64_t n = sc, host;
        ret = qcow2_get_host_offset(bs, offset, &n, &host, NULL);
        if (ret >= 0 && ret != QCOW2_CLUSTER_UNALLOCATED &&
            ret != QCOW2_CLUSTER_UNALLOCATED_ALLOC &&
            ret != QCOW2_CLUSTER_ZERO_PLAIN &&
            ret != QCOW2_CLUSTER_ZERO_ALLOC) {
            ret = -ENOTSUP;
        }
        if (ret < 0) {
            co_mutex_unlock(&s->lock);
            return ret;
        }
    }
    ret = ext_zeroize(bs, offset, bytes, flags);
    co_mutex_unlock(&s->lock);
    return ret;
}

/* Real zeroes through the write path (QEMU's fallback). */
static int coroutine_fn write_zero_buffer(struct blk_node *bs,
                                          uint64_t offset, uint64_t bytes)
{
    void *buf = xzalloc(bytes);
    struct blk_iov q;
    int ret;

    blk_iov_init_buf(&q, buf, bytes);
    ret = qcow2_co_pwritev(bs, offset, bytes, &q, 0);
    free(buf);
    return ret;
}

int coroutine_fn qcow2_ext_pwrite_zeroes(struct blk_node *bs,
                                         uint64_t offset, uint64_t bytes,
                                         unsigned flags)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t sc = s->subcluster_size;
    uint64_t head = offset & (sc - 1), tail = (offset + bytes) & (sc - 1);
    int ret = 0;

    /* split as QEMU's block layer does with the subcluster alignment */
    while (bytes > 0 && ret >= 0) {
        uint64_t num = bytes;
        if (head) {
            num = MIN(bytes, sc - head);
            head = (head + num) & (sc - 1);
        } else if (tail && num > sc) {
            num -= tail;
        }
        ret = ext_zero_piece(bs, offset, num, flags);
        if (ret == -ENOTSUP && !(flags & BLK_REQ_NO_FALLBACK)) {
            ret = write_zero_buffer(bs, offset, num);
        }
        offset += num;
        bytes -= num;
    }
    return ret < 0 ? ret : 0;
}
