/* qcow2 internal snapshots: creating, applying, deleting and listing them
 * with exact refcounts (the table itself is read and written in
 * qcow2-snapshot-table.c).
 *
 * Refcount rule (QEMU's): a data cluster counts one reference per L1
 * table that reaches it, an L2 table one per L1 table pointing at it.
 * Taking a snapshot adds one to everything the active L1 reaches and
 * clears QCOW2_OFLAG_COPIED where a count is now above one, so that the
 * write path copies those clusters and tables before changing them.
 * Every change is ordered data, then table, then header, each step on
 * disk before the next, so a crash leaks clusters at worst. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

/* ---- refcounts of everything an L1 table reaches ---- */

/* Is an L2 table or data cluster offset one that may be followed (inside
 * the file, past the header, aligned)? */
static bool host_offset_ok(struct blk_node *bs, uint64_t off)
{
    struct qcow2_state *s = bs->opaque;

    return !qcow2_offset_into_cluster(s, off) && off >= s->cluster_size &&
           off < bs->file->size;
}

/* Refuse an L1 table whose tables or clusters point where they must not
 * before any refcount changes; with `headroom` also one whose clusters
 * cannot take one more reference (refcount_bits=1, or saturated): then
 * -EINVAL without a message, which is what QEMU fails with (later, after
 * changing half of the refcounts). */
static int coroutine_fn validate_l1(struct blk_node *bs, const uint64_t *l1,
                                    uint32_t l1_size, bool headroom,
                                    struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t rc;
    void *l2;
    int ret;

    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2_offset = l1[i] & QCOW2_L1E_OFFSET_MASK;
        if (!l2_offset) {
            continue;
        }
        if (!host_offset_ok(bs, l2_offset)) {
            return error_setg(errp, -EINVAL, "L2 table offset %#llx invalid "
                              "(L1 index %#x)", (unsigned long long)l2_offset,
                              i);
        }
        if (headroom) {
            ret = qcow2_get_refcount(bs, l2_offset >> s->cluster_bits, &rc);
            if (ret < 0) {
                return error_setg_errno(errp, ret, "Could not read refcount");
            }
            if (rc >= s->refcount_max) {
                return -EINVAL; /* QEMU's error, without a message */
            }
        }
        ret = qcow2_cache_get(bs, s->l2_cache, l2_offset, &l2);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Could not read L2 table");
        }
        for (uint32_t j = 0; j < s->l2_size; j++) {
            uint64_t e = qcow2_l2_entry(s, l2, j), off, len;
            switch (qcow2_cluster_type(s, e)) {
            case QCOW2_CLUSTER_COMPRESSED:
                qcow2_compressed_range(s, e, &off, &len);
                ret = off >= s->cluster_size && off < bs->file->size ? 0 : -1;
                break;
            case QCOW2_CLUSTER_NORMAL:
            case QCOW2_CLUSTER_ZERO_ALLOC:
                off = e & QCOW2_L2E_OFFSET_MASK;
                ret = host_offset_ok(bs, off) && off != l2_offset ? 0 : -1;
                break;
            default:
                continue;
            }
            if (ret == 0 && headroom) {
                ret = qcow2_get_refcount(bs, off >> s->cluster_bits, &rc);
                if (ret < 0) {
                    qcow2_cache_put(s->l2_cache, &l2);
                    return error_setg_errno(errp, ret, "Could not read "
                                            "refcount");
                }
                if (rc >= s->refcount_max) {
                    qcow2_cache_put(s->l2_cache, &l2);
                    return -EINVAL;
                }
            }
            if (ret < 0) {
                qcow2_cache_put(s->l2_cache, &l2);
                return error_setg(errp, -EINVAL, "Cluster offset %#llx "
                                  "invalid (L2 offset %#llx, index %#x)",
                                  (unsigned long long)off,
                                  (unsigned long long)l2_offset, j);
            }
        }
        qcow2_cache_put(s->l2_cache, &l2);
    }
    return 0;
}

/* Add one to, or take one from, the refcount of a range; a missing
 * refcount block is allocated (-EAGAIN from below means: try again). */
static int coroutine_fn change_ref(struct blk_node *bs, uint64_t offset,
                                   uint64_t bytes, int addend)
{
    int ret;

    do {
        ret = qcow2_update_refcount(bs, offset, bytes, 1, addend < 0,
                                    QCOW2_DISCARD_SNAPSHOT);
    } while (ret == -EAGAIN);
    return ret;
}

/* QEMU's qcow2_update_snapshot_refcount(): add `addend` (-1, 0, 1) to
 * every L2 table and cluster the L1 table reaches and set COPIED exactly
 * where the refcount is one.  The active table is taken from memory (goto
 * relies on that while the disk already holds the new one); a changed L1
 * table is written back unless addend is -1 (it is about to go). */
static int coroutine_fn update_snapshot_refcount(struct blk_node *bs,
                                                 uint64_t l1_offset,
                                                 uint32_t l1_size,
                                                 int addend)
{
    struct qcow2_state *s = bs->opaque;
    bool active = l1_offset == s->l1_table_offset;
    uint64_t *l1, rc;
    bool l1_modified = false;
    void *l2 = NULL;
    int ret = 0;

    if (active) {
        l1 = s->l1_table;
        l1_size = s->l1_size;
    } else {
        l1 = xzalloc((size_t)l1_size * 8 + 8);
        ret = blk_co_pread(bs->file, l1_offset, (uint64_t)l1_size * 8, l1, 0);
        if (ret < 0) {
            free(l1);
            return ret;
        }
        for (uint32_t i = 0; i < l1_size; i++) {
            l1[i] = qcow2_ld64(&l1[i]);
        }
    }
    s->cache_discards = true;

    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2_offset = l1[i] & QCOW2_L1E_OFFSET_MASK, new_l1e;
        if (!l2_offset) {
            continue;
        }
        if (qcow2_offset_into_cluster(s, l2_offset)) {
            ret = qcow2_signal_corruption(bs, true, "L2 table offset %#llx "
                                          "unaligned (L1 index: %#x)",
                                          (unsigned long long)l2_offset, i);
            goto out;
        }
        ret = qcow2_cache_get(bs, s->l2_cache, l2_offset, &l2);
        if (ret < 0) {
            goto out;
        }
        for (uint32_t j = 0; j < s->l2_size; j++) {
            /* with extended L2 only the descriptor changes */
            uint64_t old = qcow2_l2_entry(s, l2, j);
            uint64_t e = old & ~QCOW2_OFLAG_COPIED;
            uint64_t off, len;

            switch (qcow2_cluster_type(s, e)) {
            case QCOW2_CLUSTER_COMPRESSED:
                if (addend) {
                    qcow2_compressed_range(s, e, &off, &len);
                    ret = change_ref(bs, off, len, addend);
                    if (ret < 0) {
                        goto out;
                    }
                }
                rc = 2; /* compressed clusters are never changed in place */
                break;
            case QCOW2_CLUSTER_NORMAL:
            case QCOW2_CLUSTER_ZERO_ALLOC:
                off = e & QCOW2_L2E_OFFSET_MASK;
                if (qcow2_offset_into_cluster(s, off)) {
                    ret = qcow2_signal_corruption(bs, true, "Cluster "
                                                  "allocation offset %#llx "
                                                  "unaligned (L2 offset: "
                                                  "%#llx, L2 index: %#x)",
                                                  (unsigned long long)off,
                                                  (unsigned long long)
                                                      l2_offset, j);
                    goto out;
                }
                if (addend) {
                    ret = change_ref(bs, off, s->cluster_size, addend);
                    if (ret < 0) {
                        goto out;
                    }
                }
                ret = qcow2_get_refcount(bs, off >> s->cluster_bits, &rc);
                if (ret < 0) {
                    goto out;
                }
                break;
            default:
                rc = 0;
                break;
            }
            if (rc == 1) {
                e |= QCOW2_OFLAG_COPIED;
            }
            if (e != old) {
                if (addend > 0) {
                    /* the new counts reach the disk before the flags */
                    ret = qcow2_cache_set_dependency(bs, s->l2_cache,
                                                     s->refblock_cache);
                    if (ret < 0) {
                        goto out;
                    }
                }
                qcow2_set_l2_entry(s, l2, j, e);
                qcow2_cache_mark_dirty(s->l2_cache, l2);
            }
        }
        qcow2_cache_put(s->l2_cache, &l2);

        if (addend) {
            ret = change_ref(bs, l2_offset, s->cluster_size, addend);
            if (ret < 0) {
                goto out;
            }
        }
        ret = qcow2_get_refcount(bs, l2_offset >> s->cluster_bits, &rc);
        if (ret < 0) {
            goto out;
        }
        new_l1e = l2_offset | (rc == 1 ? QCOW2_OFLAG_COPIED : 0);
        if (new_l1e != l1[i]) {
            l1[i] = new_l1e;
            l1_modified = true;
        }
    }
    ret = qcow2_flush_caches(bs);

out:
    if (l2) {
        qcow2_cache_put(s->l2_cache, &l2);
    }
    s->cache_discards = false;
    qcow2_process_discards(bs, ret);
    if (ret >= 0 && addend >= 0 && l1_modified) {
        uint64_t *be = xmalloc((size_t)l1_size * 8 + 8);
        for (uint32_t i = 0; i < l1_size; i++) {
            qcow2_st64(&be[i], l1[i]);
        }
        ret = qcow2_pre_write_overlap_check(bs, active ? QCOW2_OL_ACTIVE_L1
                                                       : QCOW2_OL_INACTIVE_L1,
                                            l1_offset, (uint64_t)l1_size * 8);
        if (ret >= 0) {
            ret = blk_co_pwrite(bs->file, l1_offset, (uint64_t)l1_size * 8,
                                be, 0);
        }
        if (ret >= 0) {
            ret = blk_co_flush(bs->file);
        }
        free(be);
    }
    if (!active) {
        free(l1);
    }
    return ret < 0 ? ret : 0;
}

/* ---- finding snapshots (QEMU's matching rules) ---- */

/* By id and name (both given: both must match), first match. */
static int find_by_id_and_name(struct qcow2_state *s, const char *id,
                               const char *name)
{
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if ((!id || strcmp(s->snapshots[i].id_str, id) == 0) &&
            (!name || strcmp(s->snapshots[i].name, name) == 0) &&
            (id || name)) {
            return (int)i;
        }
    }
    return -1;
}

/* An id first, then a name. */
static int find_by_id_or_name(struct qcow2_state *s, const char *id_or_name)
{
    int i = find_by_id_and_name(s, id_or_name, NULL);
    return i >= 0 ? i : find_by_id_and_name(s, NULL, id_or_name);
}

/* The next free id: one more than the largest number used. */
static void new_snapshot_id(struct qcow2_state *s, char *buf, size_t len)
{
    unsigned long max = 0;

    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        unsigned long id = strtoul(s->snapshots[i].id_str, NULL, 10);
        max = MAX(max, id);
    }
    snprintf(buf, len, "%lu", max + 1);
}

/* The active L1 table in big-endian, for copying. */
static uint64_t *active_l1_be(struct qcow2_state *s)
{
    uint64_t *be = xmalloc((size_t)s->l1_size * 8 + 8);

    for (uint32_t i = 0; i < s->l1_size; i++) {
        qcow2_st64(&be[i], s->l1_table[i]);
    }
    return be;
}

/* ---- the driver operations ---- */

int coroutine_fn qcow2_snapshot_create(struct blk_node *bs,
                                       struct blk_snapshot *info,
                                       struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct qcow2_snapshot *list = NULL, *sn;
    uint64_t l1_bytes = (uint64_t)s->l1_size * 8;
    int64_t l1_offset = -1;
    uint64_t *be;
    char id[32];
    int ret;

    co_mutex_lock(&s->lock);
    qcow2_wait_allocs(bs, 0, INT64_MAX);
    if (s->dead) {
        ret = error_setg(errp, -EIO, "Image is corrupt: %s",
                         s->corrupt_msg ? s->corrupt_msg : "?");
        goto out;
    }
    if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS) {
        ret = error_setg(errp, -EFBIG, "Too many snapshots");
        goto out;
    }
    if (info->id) {
        snprintf(id, sizeof(id), "%s", info->id);
        if (strlen(info->id) >= sizeof(id) ||
            find_by_id_and_name(s, info->id, NULL) >= 0) {
            ret = error_setg(errp, -EEXIST, "Snapshot ID '%s' already exists",
                             info->id);
            goto out;
        }
    } else {
        new_snapshot_id(s, id, sizeof(id));
    }
    if (strlen(info->name) > UINT16_MAX) {
        ret = error_setg(errp, -EINVAL, "Snapshot name too long");
        goto out;
    }
    /* nothing changes before we know every reference can take one more */
    ret = validate_l1(bs, s->l1_table, s->l1_size, true, errp);
    if (ret < 0) {
        goto out;
    }

    l1_offset = qcow2_alloc_clusters(bs, l1_bytes);
    if (l1_offset < 0) {
        ret = error_setg_errno(errp, (int)l1_offset, "Could not allocate "
                               "the snapshot's L1 table");
        goto out;
    }
    ret = qcow2_pre_write_overlap_check(bs, 0, l1_offset, l1_bytes);
    if (ret >= 0 && l1_bytes) {
        be = active_l1_be(s);
        ret = blk_co_pwrite(bs->file, l1_offset, l1_bytes, be, 0);
        free(be);
    }
    if (ret < 0) {
        error_setg_errno(errp, ret, "Could not write the snapshot's L1 "
                         "table");
        goto free_l1;
    }
    /* the copy and every new reference on disk before the table names it */
    ret = update_snapshot_refcount(bs, s->l1_table_offset, s->l1_size, 1);
    if (ret < 0) {
        error_setg_errno(errp, ret, "Could not update refcounts");
        goto free_l1;
    }

    list = xzalloc(sizeof(*list) * (s->nb_snapshots + 1));
    if (s->nb_snapshots) {
        memcpy(list, s->snapshots, sizeof(*list) * s->nb_snapshots);
    }
    sn = &list[s->nb_snapshots];
    sn->l1_offset = (uint64_t)l1_offset;
    sn->l1_size = s->l1_size;
    sn->id_str = id;
    sn->name = info->name;
    sn->vm_state_size = info->vm_state_size;
    sn->date_sec = info->date_sec;
    sn->date_nsec = info->date_nsec;
    sn->vm_clock_nsec = info->vm_clock_nsec;
    sn->icount = info->icount;
    sn->disk_size = bs->size;
    ret = qcow2_write_snapshots(bs, list, s->nb_snapshots + 1);
    free(list);
    if (ret < 0) {
        error_setg_errno(errp, ret, "Could not write the snapshot table");
        /* give the references back and the flags with them */
        if (update_snapshot_refcount(bs, s->l1_table_offset, s->l1_size,
                                     -1) >= 0) {
            update_snapshot_refcount(bs, s->l1_table_offset, s->l1_size, 0);
        }
        goto free_l1;
    }
    if (!info->id) {
        info->id = xstrdup(id);
    }
    goto out;

free_l1:
    qcow2_free_clusters(bs, (uint64_t)l1_offset, l1_bytes,
                        QCOW2_DISCARD_ALWAYS);
out:
    co_mutex_unlock(&s->lock);
    return ret < 0 ? ret : 0;
}

/* Read a snapshot's L1 table (host order) into a zeroed array of `size`
 * entries (at least its own). */
static int coroutine_fn read_sn_l1(struct blk_node *bs, uint64_t offset,
                                   uint32_t l1_size, uint32_t size,
                                   uint64_t **out)
{
    uint64_t *l1 = xzalloc((size_t)MAX(size, l1_size) * 8 + 8);
    int ret = 0;

    if (l1_size) {
        ret = blk_co_pread(bs->file, offset, (uint64_t)l1_size * 8, l1, 0);
    }
    if (ret < 0) {
        free(l1);
        return ret;
    }
    for (uint32_t i = 0; i < l1_size; i++) {
        l1[i] = qcow2_ld64(&l1[i]);
    }
    *out = l1;
    return 0;
}

/* The virtual size the snapshot had: the L1 table grows to hold it and
 * the header records it (QEMU resizes the same way before applying). */
static int coroutine_fn set_disk_size(struct blk_node *bs, uint64_t size,
                                      uint32_t sn_l1_size,
                                      struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t l1_need = MAX(qcow2_size_to_l1(s, size), (uint64_t)sn_l1_size);
    uint8_t be[8];
    int ret;

    if (s->version < 3) {
        return error_setg(errp, -ENOTSUP, "Can't resize a v2 image which "
                          "has snapshots");
    }
    if (size % BLK_SECTOR_SIZE || size > INT64_MAX / 2 ||
        l1_need > QCOW2_MAX_L1_SIZE / 8) {
        return error_setg(errp, -EINVAL, "Snapshot disk size %llu invalid",
                          (unsigned long long)size);
    }
    ret = qcow2_grow_l1_table(bs, l1_need, true);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to grow the L1 table");
    }
    qcow2_st64(be, size);
    ret = blk_co_pwrite(bs->file, 24, 8, be, 0);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to update the image size");
    }
    bs->size = size;
    s->l1_vm_state_index = qcow2_size_to_l1(s, size);
    return 0;
}

/* Make the snapshot's L1 table the active one: its references counted
 * first, the active table overwritten in place, then the old one's
 * references dropped and the COPIED flags set right (QEMU's order). */
static int coroutine_fn do_goto(struct blk_node *bs, int index,
                                struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct qcow2_snapshot sn = s->snapshots[index];
    uint64_t *l1 = NULL, cur_bytes;
    int ret;

    if (sn.l1_bad) {
        return error_setg(errp, -EINVAL, "Snapshot L1 table offset invalid");
    }

    ret = read_sn_l1(bs, sn.l1_offset, sn.l1_size, sn.l1_size, &l1);
    if (ret < 0) {
        return ret;
    }
    ret = validate_l1(bs, l1, sn.l1_size, true, errp);
    if (ret < 0) {
        goto out;
    }
    free(l1);
    l1 = NULL;
    if (sn.disk_size != bs->size) {
        ret = set_disk_size(bs, sn.disk_size, sn.l1_size, errp);
        if (ret < 0) {
            goto out;
        }
    }
    ret = qcow2_grow_l1_table(bs, sn.l1_size, true);
    if (ret < 0) {
        goto out;
    }
    cur_bytes = (uint64_t)s->l1_size * 8;
    ret = read_sn_l1(bs, sn.l1_offset, sn.l1_size, s->l1_size, &l1);
    if (ret < 0) {
        goto out;
    }
    ret = update_snapshot_refcount(bs, sn.l1_offset, sn.l1_size, 1);
    if (ret < 0) {
        goto out;
    }
    for (uint32_t i = 0; i < s->l1_size; i++) {
        qcow2_st64(&l1[i], l1[i]);
    }
    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ACTIVE_L1,
                                        s->l1_table_offset, cur_bytes);
    if (ret >= 0 && cur_bytes) {
        ret = blk_co_pwrite(bs->file, s->l1_table_offset, cur_bytes, l1, 0);
    }
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        goto out;
    }
    /* the in-memory table is still the old one: its references go now */
    ret = update_snapshot_refcount(bs, s->l1_table_offset, s->l1_size, -1);
    for (uint32_t i = 0; i < s->l1_size; i++) {
        s->l1_table[i] = qcow2_ld64(&l1[i]);
    }
    if (ret < 0) {
        goto out;
    }
    ret = update_snapshot_refcount(bs, s->l1_table_offset, s->l1_size, 0);
out:
    free(l1);
    return ret;
}

int coroutine_fn qcow2_snapshot_goto(struct blk_node *bs,
                                     const char *id_or_name,
                                     struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct strata_error *local = NULL;
    int index, ret;

    co_mutex_lock(&s->lock);
    qcow2_wait_allocs(bs, 0, INT64_MAX);
    if (s->dead) {
        ret = -EIO;
    } else if ((index = find_by_id_or_name(s, id_or_name)) < 0) {
        ret = -ENOENT;
    } else {
        ret = do_goto(bs, index, &local);
    }
    co_mutex_unlock(&s->lock);
    if (ret < 0) {
        if (local) {
            error_prepend(&local, "Failed to load snapshot: ");
            error_propagate(errp, local);
        } else {
            error_setg_errno(errp, ret, "Failed to load snapshot");
        }
    }
    return ret < 0 ? ret : 0;
}

/* Take snapshot `index` out of the table, then drop its references and
 * its L1 table, then set the active table's COPIED flags where the
 * counts fell back to one (QEMU's order). */
static int coroutine_fn do_delete(struct blk_node *bs, uint32_t index,
                                  struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct qcow2_snapshot sn = s->snapshots[index], *list;
    uint64_t bytes = (uint64_t)sn.l1_size * 8, *l1;
    uint32_t n = s->nb_snapshots;
    int ret;

    if (sn.l1_bad) {
        return error_setg(errp, -EINVAL, "Snapshot L1 table offset invalid");
    }
    /* an L1 table shared with another snapshot is not freed as ours */
    for (uint32_t i = 0; i < n; i++) {
        if (i != index &&
            qcow2_ranges_overlap(sn.l1_offset, bytes, s->snapshots[i].l1_offset,
                           (uint64_t)s->snapshots[i].l1_size * 8)) {
            return error_setg(errp, -EINVAL, "Snapshot L1 table overlaps "
                              "the one of snapshot %s",
                              s->snapshots[i].id_str);
        }
    }
    ret = read_sn_l1(bs, sn.l1_offset, sn.l1_size, sn.l1_size, &l1);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not read the snapshot's "
                                "L1 table");
    }
    ret = validate_l1(bs, l1, sn.l1_size, false, errp);
    free(l1);
    if (ret < 0) {
        return ret;
    }

    list = xmalloc(sizeof(*list) * n);
    memcpy(list, s->snapshots, sizeof(*list) * n);
    memmove(&list[index], &list[index + 1],
            sizeof(*list) * (n - index - 1));
    ret = qcow2_write_snapshots(bs, list, n - 1);
    free(list);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to remove snapshot from "
                                "snapshot list");
    }
    /* from here a failure leaks clusters (check -r leaks reclaims them) */
    ret = update_snapshot_refcount(bs, sn.l1_offset, sn.l1_size, -1);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to free the cluster and "
                                "L1 table");
    }
    qcow2_free_clusters(bs, sn.l1_offset, bytes, QCOW2_DISCARD_SNAPSHOT);
    ret = update_snapshot_refcount(bs, s->l1_table_offset, s->l1_size, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to update snapshot status "
                                "in disk");
    }
    return qcow2_flush_caches(bs);
}

int coroutine_fn qcow2_snapshot_delete(struct blk_node *bs, const char *id,
                                       const char *name,
                                       struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    int index, ret;

    if (!id && !name) {
        return error_setg(errp, -EINVAL, "snapshot_id and name are both "
                          "NULL");
    }
    co_mutex_lock(&s->lock);
    qcow2_wait_allocs(bs, 0, INT64_MAX);
    if (s->dead) {
        ret = error_setg(errp, -EIO, "Image is corrupt: %s",
                         s->corrupt_msg ? s->corrupt_msg : "?");
    } else if ((index = find_by_id_and_name(s, id, name)) < 0) {
        ret = error_setg(errp, -ENOENT, "Can't find the snapshot");
    } else {
        ret = do_delete(bs, (uint32_t)index, errp);
    }
    co_mutex_unlock(&s->lock);
    return ret < 0 ? ret : 0;
}

int coroutine_fn qcow2_snapshot_list(struct blk_node *bs,
                                     struct blk_snapshot **list)
{
    struct qcow2_state *s = bs->opaque;
    struct blk_snapshot *out;
    uint32_t n;

    co_mutex_lock(&s->lock);
    n = s->nb_snapshots;
    out = n ? xzalloc(sizeof(*out) * n) : NULL;
    for (uint32_t i = 0; i < n; i++) {
        const struct qcow2_snapshot *sn = &s->snapshots[i];
        out[i].id = xstrdup(sn->id_str);
        out[i].name = xstrdup(sn->name);
        out[i].vm_state_size = sn->vm_state_size;
        out[i].date_sec = sn->date_sec;
        out[i].date_nsec = sn->date_nsec;
        out[i].vm_clock_nsec = sn->vm_clock_nsec;
        out[i].icount = sn->icount;
        out[i].disk_size = sn->disk_size;
    }
    co_mutex_unlock(&s->lock);
    *list = out;
    return (int)n;
}

/* QEMU's qcow2_snapshot_load_tmp: a read-only node switches its active L1
 * table (in memory only) to the snapshot's; the virtual size stays. */
int coroutine_fn qcow2_snapshot_load_tmp(struct blk_node *bs, const char *id,
                                         const char *name,
                                         struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    const struct qcow2_snapshot *sn;
    uint64_t *l1 = NULL;
    int index, ret;

    if (!id && !name) {
        return error_setg(errp, -EINVAL, "snapshot_id and name are both "
                          "NULL");
    }
    if (!bs->read_only) {
        return error_setg(errp, -EINVAL, "Loading a snapshot temporarily "
                          "needs a read-only image");
    }
    co_mutex_lock(&s->lock);
    index = find_by_id_and_name(s, id, name);
    if (index < 0) {
        ret = error_setg(errp, -ENOENT, "Can't find snapshot");
        goto out;
    }
    sn = &s->snapshots[index];
    if ((uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_SIZE ||
        sn->l1_bad == QCOW2_SN_L1_TOO_LARGE) {
        ret = error_setg(errp, -EFBIG, "Snapshot L1 table too large");
        goto out;
    }
    if (qcow2_offset_into_cluster(s, sn->l1_offset) ||
        sn->l1_offset + (uint64_t)sn->l1_size * 8 > bs->file->size) {
        ret = error_setg(errp, -EINVAL, "Snapshot L1 table offset invalid");
        goto out;
    }
    ret = read_sn_l1(bs, sn->l1_offset, sn->l1_size, sn->l1_size, &l1);
    if (ret < 0) {
        error_setg_errno(errp, ret, "Failed to read l1 table for snapshot");
        goto out;
    }
    free(s->l1_table);
    s->l1_table = l1;
    s->l1_size = sn->l1_size;
    s->l1_table_offset = sn->l1_offset;
out:
    co_mutex_unlock(&s->lock);
    return ret < 0 ? ret : 0;
}
