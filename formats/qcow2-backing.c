/* qcow2 backing file changes (rebase, amend) and emptying the active layer
 * (commit), as QEMU's qcow2_change_backing_file() and qcow2_make_empty().
 *
 * The backing name and format live in the header cluster (the format as
 * a header extension), which qcow2_update_header() rebuilds from the
 * state, so a change is: new strings in the state, header rewritten, old
 * strings put back if that fails. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

/* Replace *p by a copy of v (NULL stays NULL). */
static void set_str(char **p, const char *v)
{
    free(*p);
    *p = v ? xstrdup(v) : NULL;
}

int coroutine_fn qcow2_change_backing_file(struct blk_node *bs,
                                           const char *backing_file,
                                           const char *backing_fmt,
                                           struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    char *old_file, *old_fmt;
    int ret;

    if (backing_file && !backing_file[0]) {
        backing_file = NULL;
    }
    if (backing_fmt && !backing_fmt[0]) {
        backing_fmt = NULL;
    }
    /* QEMU's limits, with its errno (rebase prints strerror of it) */
    if (backing_fmt && !backing_file) {
        return error_setg(errp, -EINVAL, "A backing format needs a backing "
                          "file");
    }
    if (backing_file && strlen(backing_file) > QCOW2_MAX_BACKING_NAME) {
        return error_setg(errp, -EINVAL, "Backing file name too long");
    }
    if (backing_fmt && strlen(backing_fmt) > QCOW2_MAX_FORMAT_NAME) {
        return error_setg(errp, -EINVAL, "Backing format name too long");
    }

    co_mutex_lock(&s->lock);
    if (s->dead) {
        co_mutex_unlock(&s->lock);
        return error_setg(errp, -EIO, "Image is corrupt");
    }
    /* whatever was written so far (rebase's copies) must be on the disk
     * before the header makes the image depend on another backing file */
    ret = qcow2_flush_caches(bs);
    if (ret < 0) {
        co_mutex_unlock(&s->lock);
        return error_setg_errno(errp, ret, "Could not write the metadata");
    }
    old_file = s->image_backing_file;
    old_fmt = s->image_backing_format;
    s->image_backing_file = backing_file ? xstrdup(backing_file) : NULL;
    s->image_backing_format = backing_fmt ? xstrdup(backing_fmt) : NULL;
    ret = qcow2_update_header(bs);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        free(s->image_backing_file);
        free(s->image_backing_format);
        s->image_backing_file = old_file;
        s->image_backing_format = old_fmt;
        co_mutex_unlock(&s->lock);
        if (ret == -ENOSPC) {
            return error_setg(errp, ret, "No space left in the file header");
        }
        return error_setg_errno(errp, ret, "Could not update the header");
    }
    free(old_file);
    free(old_fmt);
    co_mutex_unlock(&s->lock);
    set_str(&bs->backing_file, backing_file);
    set_str(&bs->backing_format, backing_fmt);
    return 0;
}

/* Point the unshared L2 tables' L1 entries nowhere (one write of the
 * table, flushed), then free those tables: the L1 table must be on the disk
 * before a refcount block says the clusters are free. */
static int coroutine_fn drop_l2_tables(struct blk_node *bs, uint64_t nb_l1)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t *freed = xmalloc(sizeof(*freed) * (nb_l1 ? nb_l1 : 1));
    uint64_t bytes = (uint64_t)s->l1_size * 8, n = 0;
    uint8_t *be;
    int ret;

    for (uint64_t i = 0; i < nb_l1; i++) {
        uint64_t e = s->l1_table[i];
        uint64_t off = e & QCOW2_L1E_OFFSET_MASK;
        if (off && (e & QCOW2_OFLAG_COPIED)) {
            freed[n++] = off;
            s->l1_table[i] = 0;
        }
    }
    if (!n) {
        free(freed);
        return 0;
    }
    be = xmalloc(bytes);
    for (uint32_t i = 0; i < s->l1_size; i++) {
        qcow2_st64(be + (uint64_t)i * 8, s->l1_table[i]);
    }
    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ACTIVE_L1,
                                        s->l1_table_offset, bytes);
    if (ret >= 0) {
        ret = blk_co_pwrite(bs->file, s->l1_table_offset, bytes, be, 0);
    }
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    free(be);
    if (ret < 0) {
        /* the tables stay referenced by what the disk may hold: leak them
         * rather than free clusters still in use */
        free(freed);
        return ret;
    }
    for (uint64_t i = 0; i < n; i++) {
        qcow2_cache_discard(s->l2_cache, freed[i]);
        qcow2_free_clusters(bs, freed[i], s->cluster_size,
                            QCOW2_DISCARD_SNAPSHOT);
    }
    free(freed);
    return 0;
}

/* Can the image be rebuilt from nothing (QEMU's conditions for
 * make_completely_empty)?  Only v3 (it relies on the dirty bit), with no
 * snapshots or bitmaps keeping clusters, and room for the header, the
 * refcount table, one refcount block and the L1 table in one block. */
static bool can_rebuild(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t l1_clusters = DIV_ROUND_UP((uint64_t)s->l1_size,
                                        s->cluster_size / 8);

    if (s->version < 3 || s->nb_snapshots || s->crypt_method ||
        (s->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS) ||
        (s->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) ||
        3 + l1_clusters > s->refblock_size) {
        return false;
    }
    for (struct qcow2_unknown_ext *u = s->unknown_exts; u; u = u->next) {
        if (u->magic == QCOW2_EXT_BITMAPS ||
            u->magic == QCOW2_EXT_CRYPTO_HEADER) {
            return false;
        }
    }
    return true;
}

/* Set or clear the dirty bit in the header, durably. */
static int coroutine_fn set_dirty(struct blk_node *bs, bool dirty)
{
    struct qcow2_state *s = bs->opaque;
    int ret;

    if (dirty) {
        s->incompatible_features |= QCOW2_INCOMPAT_DIRTY;
    } else {
        s->incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
    }
    ret = qcow2_update_header(bs);
    return ret < 0 ? ret : blk_co_flush(bs->file);
}

/* QEMU's make_completely_empty(): throw away every table and rebuild the
 * image as a new one of the same size (header, refcount table in cluster
 * 1, its one refcount block in cluster 2, the zeroed L1 table from cluster
 * 3), then cut the file there.  The dirty bit covers the time the refcounts
 * are wrong, as in QEMU: a crash in between leaves an image that
 * `check -r all` repairs.  Writes here go to the file directly, without
 * overlap checks, since the in-memory layout is the one being replaced. */
static int coroutine_fn rebuild_empty(struct blk_node *bs)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t l1_clusters = DIV_ROUND_UP((uint64_t)s->l1_size, cs / 8);
    uint64_t l1_bytes = (uint64_t)s->l1_size * 8;
    uint8_t entry[8];
    int64_t offset;
    int ret;

    ret = qcow2_write_caches(bs);
    if (ret < 0) {
        return ret;
    }
    qcow2_cache_clear(s->l2_cache);
    qcow2_cache_clear(s->refblock_cache);
    ret = set_dirty(bs, true);
    if (ret < 0) {
        return ret;
    }
    /* from here on the refcounts on the disk describe nothing */
    if (l1_clusters) {
        ret = blk_co_pwrite_zeroes(bs->file, s->l1_table_offset,
                                   l1_clusters * cs, 0);
        if (ret < 0) {
            return ret;
        }
    }
    memset(s->l1_table, 0, l1_bytes);
    ret = blk_co_pwrite_zeroes(bs->file, cs, (2 + l1_clusters) * cs, 0);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        return ret;
    }

    free(s->refcount_table);
    s->refcount_table = xzalloc(cs);
    s->refcount_table_size = (uint32_t)(cs / 8);
    s->refcount_table_offset = cs;
    s->refcount_table[0] = 2 * cs;
    s->max_refcount_table_index = 0;
    s->l1_table_offset = 3 * cs;
    qcow2_st64(entry, 2 * cs);
    ret = blk_co_pwrite(bs->file, cs, sizeof(entry), entry, 0);
    if (ret >= 0) {
        ret = set_dirty(bs, true); /* the new table places */
    }
    if (ret < 0) {
        return ret;
    }

    /* the in-memory state is right again; header, refcount table, the
     * refcount block and the L1 table get their references */
    s->free_cluster_index = 0;
    s->free_byte_offset = 0;
    offset = qcow2_alloc_clusters(bs, 3 * cs + l1_bytes);
    if (offset < 0) {
        return (int)offset;
    }
    if (offset != 0) {
        return qcow2_signal_corruption(bs, true, "First cluster in emptied "
                                       "image is in use");
    }
    ret = qcow2_flush_caches(bs);
    if (ret >= 0) {
        ret = set_dirty(bs, false);
    }
    if (ret >= 0) {
        ret = blk_co_truncate(bs->file, (3 + l1_clusters) * cs, false,
                              BLK_PREALLOC_OFF, NULL);
    }
    return ret;
}

/* As QEMU: rebuilt from nothing where it can be (fast, and the file
 * shrinks to four clusters), else its fallback, which works with snapshots
 * too: every cluster of the active layer is discarded (QCOW2_DISCARD_SNAPSHOT: the file gets the
 * holes punched by default) and left unallocated, so the backing file shows
 * through.  Unlike QEMU, L1 entries that were never allocated are skipped
 * instead of getting empty L2 tables, and the emptied L2 tables are freed,
 * so the result is as small as QEMU's rebuilt image without rewriting the
 * refcount structures. */
int coroutine_fn qcow2_make_empty(struct blk_node *bs,
                                  struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    unsigned shift = s->cluster_bits + s->l2_bits;
    uint64_t nb_l1;
    int ret = 0;

    co_mutex_lock(&s->lock);
    if (s->dead) {
        co_mutex_unlock(&s->lock);
        return error_setg(errp, -EIO, "Image is corrupt");
    }
    if (can_rebuild(bs)) {
        ret = rebuild_empty(bs);
        co_mutex_unlock(&s->lock);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Could not empty the image");
        }
        return 0;
    }
    nb_l1 = MIN((uint64_t)s->l1_size, qcow2_size_to_l1(s, bs->size));
    for (uint64_t i = 0; i < nb_l1 && ret >= 0; i++) {
        uint64_t start = i << shift;
        uint64_t end = MIN(start + (1ull << shift), bs->size);
        if (!(s->l1_table[i] & QCOW2_L1E_OFFSET_MASK)) {
            continue;
        }
        qcow2_wait_allocs(bs, start, end - start);
        ret = qcow2_cluster_discard(bs, start, end - start,
                                    QCOW2_DISCARD_SNAPSHOT, true);
    }
    if (ret >= 0) {
        /* entries first, so no refcount block can name a table free while
         * an L2 entry of it still points at freed data on the disk */
        ret = qcow2_write_caches(bs);
    }
    if (ret >= 0) {
        ret = drop_l2_tables(bs, nb_l1);
    }
    if (ret >= 0) {
        ret = qcow2_flush_caches(bs);
    }
    co_mutex_unlock(&s->lock);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not empty the image");
    }
    return 0;
}

/* The reopen op (for the driver table): a node opened read-only skipped
 * the checks that keep corrupt and dirty images from being written, so
 * going read-write makes them now, with open's messages.  Going back to
 * read-only needs nothing: the core flushed the caches before. */
int qcow2_reopen(struct blk_node *bs, bool read_write,
                 struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;

    if (!read_write) {
        /* the core knows only bs->file: the data file follows here */
        return s->data_file ? blk_reopen(s->data_file, false, errp) : 0;
    }
    if (s->dead || (s->incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
        return error_setg(errp, -EACCES, "qcow2: Image is corrupt; cannot "
                          "be opened read/write");
    }
    if (s->incompatible_features & QCOW2_INCOMPAT_DIRTY) {
        return error_setg(errp, -ENOTSUP, "Image is dirty (it was in use "
                          "with lazy refcounts and not closed cleanly): its "
                          "refcounts must be repaired first; repair it with "
                          "'qemu-img check -r all'");
    }
    return s->data_file ? blk_reopen(s->data_file, true, errp) : 0;
}
