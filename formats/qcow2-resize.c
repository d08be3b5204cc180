/* Resizing qcow2 images (truncate), as QEMU's qcow2_co_truncate: growing
 * with any preallocation mode, and shrinking, which drops the clusters
 * past the new end, the L2 tables no longer needed and refcount blocks
 * left empty, then cuts the file after its last used cluster. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

/* ---- growing ---- */

/* preallocation=metadata: L2 tables and data clusters are allocated and
 * entered (no data written); the file grows to cover the last one.  With
 * a data file every mode comes here (QEMU's preallocate_co): the data
 * file grows with `prealloc` (metadata: none). */
static int coroutine_fn preallocate_metadata(struct blk_node *bs,
                                             uint64_t offset, uint64_t end,
                                             enum blk_prealloc prealloc,
                                             struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t host = 0, cur = 0, hint = 0;
    int ret = 0;

    while (offset < end) {
        struct qcow2_alloc *m;
        cur = end - offset;
        ret = qcow2_alloc_host_offset(bs, offset, &cur, hint, &host, &m);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Allocating clusters failed");
        }
        if (m) {
            /* as QEMU: no data, but the rest of a partial cluster */
            ret = qcow2_perform_cow(bs, m);
            if (ret < 0) {
                qcow2_alloc_abort(bs, m);
                return error_setg_errno(errp, ret, "Mapping clusters failed");
            }
            ret = qcow2_alloc_link_l2(bs, m);
            if (ret < 0) {
                return error_setg_errno(errp, ret, "Mapping clusters failed");
            }
        }
        offset += cur;
        hint = qcow2_offset_into_cluster(s, host + cur) ? 0 : host + cur;
    }
    struct blk_node *data = qcow2_data_child(bs);
    if (host + cur > data->size) {
        ret = blk_co_truncate(data, host + cur, false,
                              prealloc == BLK_PREALLOC_METADATA
                                  ? BLK_PREALLOC_OFF
                                  : prealloc,
                              errp);
    }
    return ret;
}

/* preallocation=falloc/full: refcount structures covering the new data
 * first, then the data area at the end of the file (preallocated by the
 * file), then the L2 entries. */
static int coroutine_fn preallocate_data(struct blk_node *bs,
                                         uint64_t old_length, uint64_t size,
                                         enum blk_prealloc prealloc,
                                         struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cs = s->cluster_size, old_file_size = bs->file->size;
    uint64_t nb_data, nb_l2, guest, host;
    int64_t last, start, got;
    int ret;

    last = qcow2_get_last_cluster(bs, old_file_size);
    old_file_size = last >= 0 ? (uint64_t)(last + 1) * cs
                              : ROUND_UP(old_file_size, cs);
    nb_data = (ROUND_UP(size, cs) - qcow2_start_of_cluster(s, old_length)) >>
              s->cluster_bits;
    /* an overestimate, so entering the data needs no new refblocks */
    nb_l2 = DIV_ROUND_UP(nb_data, cs / 8) + 1;
    start = qcow2_refcount_area(bs, old_file_size, nb_data + nb_l2, true, 0,
                                0);
    if (start < 0) {
        return error_setg_errno(errp, (int)start, "Failed to resize refcount "
                                "structures");
    }
    got = qcow2_alloc_clusters_at(bs, start, nb_data);
    if (got < 0) {
        return error_setg_errno(errp, (int)got, "Failed to allocate data "
                                "clusters");
    }
    if ((uint64_t)got != nb_data) {
        return error_setg(errp, -EIO, "Failed to allocate data clusters");
    }
    ret = blk_co_truncate(bs->file, start + nb_data * cs, false, prealloc,
                          errp);
    if (ret < 0) {
        error_prepend(errp, "Failed to resize underlying file: ");
        qcow2_free_clusters(bs, start, nb_data * cs, QCOW2_DISCARD_OTHER);
        return ret;
    }
    host = start;
    guest = old_length;
    while (nb_data) {
        uint32_t slice_index = (uint32_t)(guest >> s->cluster_bits) &
                               (s->l2_slice_size - 1);
        uint64_t n = MIN(nb_data, (uint64_t)(s->l2_slice_size - slice_index));
        uint64_t keep = qcow2_offset_into_cluster(s, guest);
        guest = qcow2_start_of_cluster(s, guest);
        ret = qcow2_link_prealloc(bs, guest, host, n, keep);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Failed to update L2 tables");
        }
        guest += n * cs;
        host += n * cs;
        nb_data -= n;
    }
    return 0;
}

/* The grown area must read as zeroes even where a longer backing file
 * has data (QEMU's BDRV_REQ_ZERO_WRITE on truncate): zero clusters for
 * whole clusters, explicit zeroes for the partial head. */
static int coroutine_fn zero_grown_area(struct blk_node *bs,
                                        uint64_t old_length, uint64_t size,
                                        struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t zero_start = ROUND_UP(old_length, (uint64_t)s->cluster_size);
    int ret;

    if (size > zero_start) {
        ret = qcow2_cluster_zeroize(bs, zero_start, size - zero_start, 0);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Failed to zero out new "
                                    "clusters");
        }
    }
    if (zero_start > old_length) {
        uint64_t len = MIN(zero_start, size) - old_length;
        struct blk_iov qiov;
        void *buf = xzalloc(len);

        blk_iov_init(&qiov, 1);
        blk_iov_add(&qiov, buf, len);
        co_mutex_unlock(&s->lock);
        ret = qcow2_co_pwritev(bs, old_length, len, &qiov, 0);
        co_mutex_lock(&s->lock);
        blk_iov_destroy(&qiov);
        free(buf);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Failed to zero out the new "
                                    "area");
        }
    }
    return 0;
}

/* ---- shrinking ---- */

/* Drop the clusters of guest [start, end): only where an L2 table exists,
 * so no table is allocated just to be emptied. */
static int coroutine_fn discard_tail(struct blk_node *bs, uint64_t start,
                                     uint64_t end)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t l2_span = (uint64_t)s->l2_size << s->cluster_bits;

    while (start < end) {
        uint64_t l1_index = qcow2_l1_index(s, start);
        uint64_t next = MIN(end, (l1_index + 1) * l2_span);
        int ret;

        if (l1_index >= s->l1_size) {
            break;
        }
        if (s->l1_table[l1_index] & QCOW2_L1E_OFFSET_MASK) {
            ret = qcow2_cluster_discard(bs, start, next - start,
                                        QCOW2_DISCARD_ALWAYS, true);
            if (ret < 0) {
                return ret;
            }
        }
        start = next;
    }
    return 0;
}

/* QEMU's qcow2_shrink_l1_table: the L1 table keeps its size, but entries
 * past new_l1_size are zeroed on disk first and their tables freed. */
static int coroutine_fn shrink_l1_table(struct blk_node *bs,
                                        uint64_t new_l1_size)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    if (new_l1_size >= s->l1_size) {
        return 0;
    }
    ret = qcow2_cache_flush(bs, s->l2_cache);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ACTIVE_L1,
                                        s->l1_table_offset + new_l1_size * 8,
                                        (s->l1_size - new_l1_size) * 8);
    if (ret < 0) {
        return ret;
    }
    ret = blk_co_pwrite_zeroes(bs->file, s->l1_table_offset + new_l1_size * 8,
                               (s->l1_size - new_l1_size) * 8, 0);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        return ret;
    }
    for (uint64_t i = s->l1_size; i-- > new_l1_size;) {
        uint64_t l2 = s->l1_table[i] & QCOW2_L1E_OFFSET_MASK;
        if (l2) {
            qcow2_free_clusters(bs, l2, s->cluster_size,
                                QCOW2_DISCARD_ALWAYS);
        }
        s->l1_table[i] = 0;
    }
    return 0;
}

/* Is a refcount block empty, apart from the count of its own cluster? */
static int coroutine_fn refblock_unused(struct blk_node *bs, uint32_t index,
                                        uint64_t offset, bool *unused)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t own = offset >> s->cluster_bits, first, rc;
    int ret;

    first = (uint64_t)index << s->refblock_bits;
    *unused = false;
    for (uint64_t i = 0; i < s->refblock_size; i++) {
        ret = qcow2_get_refcount(bs, first + i, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc && !(first + i == own && rc == 1)) {
            return 0;
        }
    }
    *unused = true;
    return 0;
}

/* QEMU's qcow2_shrink_reftable: refcount blocks that count nothing but
 * themselves leave the table (self-describing ones vanish with it; the
 * others are freed where they are counted). */
static int coroutine_fn shrink_reftable(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    uint32_t n = s->refcount_table_size;
    uint64_t *be = xmalloc((size_t)n * 8 + 8);
    bool *drop = xzalloc(n + 1);
    int ret = 0;

    for (uint32_t i = 0; i < n; i++) {
        uint64_t off = s->refcount_table[i] & QCOW2_REFT_OFFSET_MASK;
        if (off) {
            ret = refblock_unused(bs, i, off, &drop[i]);
            if (ret < 0) {
                goto out;
            }
        }
        qcow2_st64(&be[i], drop[i] ? 0 : s->refcount_table[i]);
    }
    ret = qcow2_cache_flush(bs, s->refblock_cache);
    if (ret >= 0) {
        ret = blk_co_pwrite(bs->file, s->refcount_table_offset,
                            (uint64_t)n * 8, be, 0);
    }
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t off = s->refcount_table[i] & QCOW2_REFT_OFFSET_MASK;
        if (!drop[i]) {
            continue;
        }
        qcow2_cache_discard(s->refblock_cache, off);
        s->refcount_table[i] = 0;
        if ((off >> (s->cluster_bits + s->refblock_bits)) != i) {
            qcow2_free_clusters(bs, off, s->cluster_size,
                                QCOW2_DISCARD_ALWAYS);
        }
        if ((off >> s->cluster_bits) < s->free_cluster_index) {
            s->free_cluster_index = off >> s->cluster_bits;
        }
    }
    while (s->max_refcount_table_index > 0 &&
           !s->refcount_table[s->max_refcount_table_index]) {
        s->max_refcount_table_index--;
    }
out:
    free(be);
    free(drop);
    return ret;
}

/* Drop everything past the new end and give the file's tail back. */
static int coroutine_fn shrink(struct blk_node *bs, uint64_t size,
                               struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t start = ROUND_UP(size, (uint64_t)s->cluster_size);
    uint64_t file_size;
    int64_t last;
    int ret;

    ret = discard_tail(bs, start, bs->size);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to discard cropped "
                                "clusters");
    }
    ret = shrink_l1_table(bs, qcow2_size_to_l1(s, size));
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to reduce the number of "
                                "L2 tables");
    }
    ret = shrink_reftable(bs);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to discard unused "
                                "refblocks");
    }
    file_size = bs->file->size;
    last = qcow2_get_last_cluster(bs, file_size);
    if (last < 0) {
        return error_setg_errno(errp, (int)last, "Failed to find the last "
                                "cluster");
    }
    if ((uint64_t)(last + 1) * s->cluster_size < file_size) {
        /* not fatal (QEMU only warns); the refcounts are right anyway */
        blk_co_truncate(bs->file, (uint64_t)(last + 1) * s->cluster_size,
                        false, BLK_PREALLOC_OFF, NULL);
    }
    return 0;
}

/* ---- the driver callback ---- */

/* QEMU's order: refusals, shrink or grow the tables, preallocate, zero
 * what a longer backing file would show, then the size in the header. */
int coroutine_fn qcow2_co_truncate(struct blk_node *bs, uint64_t size,
                                   bool exact, enum blk_prealloc prealloc,
                                   struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t old_length = bs->size;
    bool zero_new;
    uint8_t be[8];
    int ret = 0;

    /* a qcow2 image always gets exactly the size asked; `exact` only
     * goes to a data file */
    if (size % BLK_SECTOR_SIZE) {
        return error_setg(errp, -EINVAL, "The new size must be a multiple of "
                          "512");
    }
    if (qcow2_data_missing(s)) {
        return error_setg(errp, -ENOMEDIUM, "Cannot resize an image opened "
                          "without its data file");
    }
    /* as QEMU's bdrv_co_truncate: new space must not show backing data */
    zero_new = size > old_length && bs->backing &&
               bs->backing->size > old_length;
    co_mutex_lock(&s->lock);
    if (s->dead) {
        ret = error_setg(errp, -EIO, "Image is corrupt: %s",
                         s->corrupt_msg ? s->corrupt_msg : "?");
        goto out;
    }
    /* v2 does not record a snapshot's size: resizing would lose it */
    if (s->nb_snapshots && s->version < 3) {
        ret = error_setg(errp, -ENOTSUP, "Can't resize a v2 image which has "
                         "snapshots");
        goto out;
    }
    if (size < old_length) {
        if (prealloc != BLK_PREALLOC_OFF) {
            ret = error_setg(errp, -EINVAL, "Preallocation can't be used for "
                             "shrinking an image");
            goto out;
        }
        ret = shrink(bs, size, errp);
    } else {
        ret = qcow2_grow_l1_table(bs, qcow2_size_to_l1(s, size), true);
        if (ret < 0) {
            error_setg_errno(errp, ret, "Failed to grow the L1 table");
        }
    }
    if (ret < 0) {
        goto out;
    }
    switch (prealloc) {
    case BLK_PREALLOC_OFF:
        if (s->data_file) {
            /* as QEMU: the data file follows the virtual size */
            ret = blk_co_truncate(s->data_file, size, exact,
                                  BLK_PREALLOC_OFF, errp);
        }
        break;
    case BLK_PREALLOC_METADATA:
        ret = preallocate_metadata(bs, old_length, size, prealloc, errp);
        break;
    case BLK_PREALLOC_FALLOC:
    case BLK_PREALLOC_FULL:
        if (qcow2_has_data_file(s)) {
            ret = preallocate_metadata(bs, old_length, size, prealloc, errp);
            break;
        }
        ret = preallocate_data(bs, old_length, size, prealloc, errp);
        /* preallocated clusters are zeroed by the file */
        zero_new = zero_new && prealloc != BLK_PREALLOC_FULL;
        break;
    }
    if (ret >= 0 && zero_new) {
        ret = zero_grown_area(bs, old_length, size, errp);
    }
    if (ret >= 0 && prealloc != BLK_PREALLOC_OFF) {
        ret = qcow2_write_caches(bs);
        if (ret < 0) {
            error_setg_errno(errp, ret, "Failed to flush the preallocated "
                             "area to disk");
        }
    }
    if (ret < 0) {
        goto out;
    }
    /* metadata first: the size only grows over what is ready for it */
    ret = qcow2_write_caches(bs);
    if (ret >= 0) {
        qcow2_st64(be, size);
        ret = blk_co_pwrite(bs->file, 24, 8, be, 0);
    }
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        error_setg_errno(errp, ret, "Failed to update the image size");
        goto out;
    }
    bs->size = size;
    s->l1_vm_state_index = qcow2_size_to_l1(s, size);
out:
    co_mutex_unlock(&s->lock);
    return ret;
}
