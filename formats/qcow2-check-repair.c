/* qcow2 check, the second half: persistent bitmaps' clusters, the
 * OFLAG_COPIED check and its repair, and rebuilding a refcount structure
 * that cannot be trusted from the in-memory refcount table (QEMU's
 * rebuild_refcount_structure, with the same allocation order so the
 * rebuilt image has QEMU's layout). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

#define BME_OFFSET_MASK 0x00fffffffffffe00ull
#define BME_RESERVED_MASK 0xff000000000001feull
#define BME_FLAG_ALL_ONES 1ull
#define BITMAP_DIR_ENTRY_SIZE 24 /* fixed part */

/* ---- persistent bitmaps ---- */

/* The bitmaps extension, when the autoclear bit says it is valid. */
static bool bitmaps_ext(const struct qcow2_state *s, uint32_t *nb,
                        uint64_t *dir_size, uint64_t *dir_offset)
{
    if (!(s->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
        return false;
    }
    for (const struct qcow2_unknown_ext *u = s->unknown_exts; u; u = u->next) {
        if (u->magic == QCOW2_EXT_BITMAPS && u->len >= 24) {
            *nb = qcow2_ld32(u->data);
            *dir_size = qcow2_ld64(u->data + 8);
            *dir_offset = qcow2_ld64(u->data + 16);
            return *nb != 0;
        }
    }
    return false;
}

/* Count the clusters of one bitmap's table. */
static int coroutine_fn bitmap_table(struct blk_node *bs,
                                     struct blk_check_result *res,
                                     struct qcow2_imrt *t, uint64_t offset,
                                     uint32_t size)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t bytes = (uint64_t)size * 8;
    uint8_t *tab;
    int ret;

    ret = qcow2_imrt_inc(bs, res, t, offset, bytes);
    if (ret < 0) {
        return ret;
    }
    if (!size) {
        return 0;
    }
    if (qcow2_offset_into_cluster(s, offset) || bytes > (64u << 20) ||
        offset + bytes > bs->file->size || !(tab = malloc(bytes))) {
        res->corruptions++;
        return -EINVAL;
    }
    ret = blk_co_pread(bs->file, offset, bytes, tab, 0);
    if (ret < 0) {
        free(tab);
        res->corruptions++;
        return ret;
    }
    for (uint32_t i = 0; i < size && ret >= 0; i++) {
        uint64_t e = qcow2_ld64(tab + 8 * (size_t)i);
        uint64_t off = e & BME_OFFSET_MASK;

        if ((e & BME_RESERVED_MASK) ||
            (off && ((e & BME_FLAG_ALL_ONES) ||
                     qcow2_offset_into_cluster(s, off)))) {
            res->corruptions++;
            continue;
        }
        if (off) {
            ret = qcow2_imrt_inc(bs, res, t, off, s->cluster_size);
        }
    }
    free(tab);
    return ret < 0 ? ret : 0;
}

/* Count the clusters of persistent bitmaps (directory, tables, data). */
int coroutine_fn qcow2_check_bitmaps(struct blk_node *bs,
                                     struct blk_check_result *res,
                                     struct qcow2_imrt *t)
{
    uint64_t dir_size, dir_offset, pos;
    uint32_t nb;
    uint8_t *dir;
    int ret;

    if (!bitmaps_ext(bs->opaque, &nb, &dir_size, &dir_offset)) {
        return 0;
    }
    ret = qcow2_imrt_inc(bs, res, t, dir_offset, dir_size);
    if (ret < 0) {
        return ret;
    }
    if (dir_size > (64u << 20) || dir_offset + dir_size > bs->file->size ||
        !(dir = malloc(dir_size ? dir_size : 1))) {
        res->corruptions++;
        return -EINVAL;
    }
    ret = blk_co_pread(bs->file, dir_offset, dir_size, dir, 0);
    pos = 0;
    for (uint32_t i = 0; ret >= 0 && i < nb; i++) {
        uint64_t len;

        if (pos + BITMAP_DIR_ENTRY_SIZE > dir_size) {
            ret = -EINVAL;
            break;
        }
        len = BITMAP_DIR_ENTRY_SIZE + qcow2_ld32(dir + pos + 20) +
              ((uint64_t)dir[pos + 18] << 8 | dir[pos + 19]);
        len = ROUND_UP(len, 8);
        if (pos + len > dir_size) {
            ret = -EINVAL;
            break;
        }
        ret = bitmap_table(bs, res, t, qcow2_ld64(dir + pos),
                           qcow2_ld32(dir + pos + 8));
        pos += len;
    }
    free(dir);
    if (ret == -EINVAL) {
        res->corruptions++;
    }
    return ret;
}

/* ---- OFLAG_COPIED ---- */

/* Does the COPIED flag of a table entry agree with the refcount? */
static bool copied_ok(uint64_t entry, uint64_t refcount)
{
    return (refcount == 1) == ((entry & QCOW2_OFLAG_COPIED) != 0);
}

/* The entry with COPIED set as the refcount says. */
static uint64_t copied_fixed(uint64_t entry, uint64_t refcount)
{
    return refcount == 1 ? entry | QCOW2_OFLAG_COPIED
                         : entry & ~QCOW2_OFLAG_COPIED;
}

/* Write one active L1 entry through to the file. */
static int coroutine_fn write_l1_entry(struct blk_node *bs, uint32_t i)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t off = s->l1_table_offset + (uint64_t)i * 8;
    uint8_t be[8];
    int ret;

    ret = qcow2_check_overlap(bs, QCOW2_OL_ACTIVE_L1, off, 8);
    if (ret < 0) {
        return ret;
    }
    qcow2_st64(be, s->l1_table[i]);
    ret = blk_co_pwrite(bs->file, off, 8, be, 0);
    return ret < 0 ? ret : blk_co_flush(bs->file);
}

/* qcow2_rc_cursor_get(), with the common cases inline: 16-bit refcounts
 * from the refblock the first pass read ahead (read-only nodes: nothing
 * changed them since) or from the cursor's. */
static inline int rc_get(struct blk_node *bs, struct blk_check_result *res,
                         const struct qcow2_imrt *t,
                         struct qcow2_rc_cursor *cur, uint64_t cluster,
                         uint64_t *rc)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t k = cluster >> s->refblock_bits;
    const uint8_t *blk = NULL;

    if (s->refcount_order == 4) {
        if (k < t->rb_saved_n && t->rb_saved[k]) {
            blk = t->rb_saved[k];
        } else if (cur->blk && cur->index == (int64_t)k) {
            blk = cur->blk;
        }
    }
    if (blk) {
        const uint8_t *p = blk + 2 * (cluster & (s->refblock_size - 1));
        *rc = (uint64_t)p[0] << 8 | p[1];
        return 0;
    }
    return qcow2_rc_cursor_get(bs, res, cur, cluster, rc);
}

/* The entries from j on whose COPIED flag is right, in one tight loop:
 * unallocated and compressed ones, and data clusters whose 16-bit
 * refcount is at hand (read ahead, or the cursor's refblock) and agrees
 * with the flag.  Returns the first entry it leaves to the general code
 * (l2_size: none).  Images without a data file only. */
static uint32_t scan_copied(const struct qcow2_state *s,
                            const struct qcow2_imrt *t,
                            const struct qcow2_rc_cursor *cur,
                            const uint8_t *src, uint32_t j)
{
    for (; j < s->l2_size; j++) {
        uint64_t e, k, idx, v;
        const uint8_t *blk, *p;

        memcpy(&e, src + (size_t)s->l2e_size * j, 8);
        e = __builtin_bswap64(e);
        if ((e & QCOW2_OFLAG_COMPRESSED) || !(e & QCOW2_L2E_OFFSET_MASK)) {
            continue; /* compressed, or (no data file) unallocated */
        }
        if (e & QCOW2_OFLAG_ZERO) {
            break; /* ZERO_ALLOC: the general code */
        }
        k = (e & QCOW2_L2E_OFFSET_MASK) >> s->cluster_bits;
        idx = k >> s->refblock_bits;
        if (idx < t->rb_saved_n && t->rb_saved[idx]) {
            blk = t->rb_saved[idx];
        } else if (cur->blk && cur->index == (int64_t)idx) {
            blk = cur->blk;
        } else {
            break;
        }
        p = blk + 2 * (k & (s->refblock_size - 1));
        v = (uint64_t)p[0] << 8 | p[1];
        if ((v == 1) != ((e & QCOW2_OFLAG_COPIED) != 0)) {
            break;
        }
    }
    return j;
}

/* Check the COPIED flags of one active L2 table (and repair them). */
static int coroutine_fn copied_l2(struct blk_node *bs,
                                  struct blk_check_result *res,
                                  uint64_t l2_offset, bool repair,
                                  uint8_t *buf, const uint8_t *saved,
                                  const struct qcow2_imrt *t,
                                  struct qcow2_rc_cursor *cur)
{
    struct qcow2_state *s = bs->opaque;
    bool fast = !qcow2_has_data_file(s) && s->refcount_order == 4;
    const uint8_t *src = saved ? saved : buf; /* buf once it is changed */
    int dirty = 0, ret;

    if (!saved) {
        ret = blk_co_pread(bs->file, l2_offset,
                           (uint64_t)s->l2_size * s->l2e_size, buf, 0);
        if (ret < 0) {
            qcow2_check_report(res, "ERROR: Could not read L2 table: %s",
                               strerror(-ret));
            res->check_errors++;
            return ret;
        }
    }
    for (uint32_t j = 0; j < s->l2_size; j++) {
        if (fast) {
            j = scan_copied(s, t, cur, src, j);
            if (j >= s->l2_size) {
                break;
            }
        }
        uint64_t e = qcow2_l2_entry(s, src, j), rc;
        enum qcow2_cluster_type type;

        if (!e) {
            continue; /* unallocated */
        }
        /* no compressed or zero flag and an offset: a data cluster */
        type = !(e & (QCOW2_OFLAG_COMPRESSED | QCOW2_OFLAG_ZERO)) &&
                       (e & QCOW2_L2E_OFFSET_MASK)
                   ? QCOW2_CLUSTER_NORMAL
                   : qcow2_cluster_type(s, e);
        if (type != QCOW2_CLUSTER_NORMAL && type != QCOW2_CLUSTER_ZERO_ALLOC) {
            continue;
        }
        if (qcow2_has_data_file(s)) {
            rc = 1; /* QEMU: a data file cluster counts as referenced once */
        } else if (rc_get(bs, res, t, cur, (e & QCOW2_L2E_OFFSET_MASK) >>
                                               s->cluster_bits, &rc) < 0) {
            continue; /* already reported by the comparison */
        }
        if (copied_ok(e, rc)) {
            continue;
        }
        res->corruptions++;
        qcow2_check_report(res, "%s OFLAG_COPIED data cluster: l2_entry=%"
                           PRIx64 " refcount=%" PRIu64,
                           repair ? "Repairing" : "ERROR", e, rc);
        if (repair) {
            if (src != buf) {
                memcpy(buf, src, (size_t)s->l2_size * s->l2e_size);
                src = buf;
            }
            qcow2_set_l2_entry(s, buf, j, copied_fixed(e, rc));
            dirty++;
        }
    }
    if (!dirty) {
        return 0;
    }
    ret = qcow2_check_overlap(bs, QCOW2_OL_ACTIVE_L2, l2_offset,
                                        s->cluster_size);
    if (ret < 0) {
        qcow2_check_report(res, "ERROR: Could not write L2 table; metadata "
                           "overlap check failed: %s", strerror(-ret));
        res->check_errors++;
        return ret;
    }
    qcow2_cache_discard(s->l2_cache, l2_offset);
    ret = blk_co_pwrite(bs->file, l2_offset, s->cluster_size, buf, 0);
    if (ret < 0) {
        qcow2_check_report(res, "ERROR: Could not write L2 table: %s",
                           strerror(-ret));
        res->check_errors++;
        return ret;
    }
    res->corruptions -= dirty;
    res->corruptions_fixed += dirty;
    return 0;
}

/* QEMU's check_oflag_copied: the COPIED flags of the active tables. */
int coroutine_fn qcow2_check_oflag_copied(struct blk_node *bs,
                                          struct blk_check_result *res,
                                          unsigned fix, struct qcow2_imrt *t)
{
    struct qcow2_state *s = bs->opaque;
    uint8_t *buf = xmalloc(s->cluster_size);
    struct qcow2_rc_cursor cur = {0};
    bool repair;
    int ret = 0;

    /* with leaks only, repair when the refcounts are known good now */
    if (fix & BLK_FIX_ERRORS) {
        repair = true;
    } else if (fix & BLK_FIX_LEAKS) {
        repair = !res->check_errors && !res->corruptions && !res->leaks;
    } else {
        repair = false;
    }
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t e = s->l1_table[i], rc;
        uint64_t l2_offset = e & QCOW2_L1E_OFFSET_MASK;

        if (!l2_offset) {
            continue;
        }
        if (rc_get(bs, res, t, &cur, l2_offset >> s->cluster_bits, &rc) < 0) {
            continue;
        }
        if (!copied_ok(e, rc)) {
            res->corruptions++;
            qcow2_check_report(res, "%s OFLAG_COPIED L2 cluster: l1_index=%"
                               PRIu32 " l1_entry=%" PRIx64 " refcount=%"
                               PRIu64, repair ? "Repairing" : "ERROR", i, e,
                               rc);
            if (repair) {
                s->l1_table[i] = copied_fixed(e, rc);
                ret = write_l1_entry(bs, i);
                if (ret < 0) {
                    res->check_errors++;
                    break;
                }
                res->corruptions--;
                res->corruptions_fixed++;
            }
        }
        /* the copy the first pass kept is what the file has, as long as
         * the L1 entry the pass read is still this one */
        const uint8_t *saved = NULL;
        if (i < t->l2_saved_n && t->l2_saved[i] &&
            (t->l2_saved_l1[i] & QCOW2_L1E_OFFSET_MASK) == l2_offset) {
            saved = t->l2_saved[i];
        }
        if (saved && t->l2_copied_ok && t->l2_copied_ok[i]) {
            continue; /* the first pass found its flags right */
        }
        ret = copied_l2(bs, res, l2_offset, repair, buf, saved, t, &cur);
        if (ret < 0) {
            break;
        }
    }
    qcow2_rc_cursor_release(s, &cur);
    free(buf);
    return ret < 0 ? ret : 0;
}

/* ---- rebuilding the refcount structure ---- */

/* Allocate `count` contiguous clusters in the IMRT from *first_free on
 * (growing it past the end when needed); returns the byte offset. */
static int64_t alloc_clusters_imrt(struct qcow2_state *s, int64_t count,
                                   struct qcow2_imrt *t, int64_t *first_free)
{
    int64_t cluster = *first_free, contiguous = 0;
    bool first_gap = true;
    int ret;

    for (; cluster < t->size && contiguous < count; cluster++) {
        if (!qcow2_imrt_get(s, t->table, cluster)) {
            contiguous++;
            if (first_gap) {
                *first_free = cluster;
                first_gap = false;
            }
        } else {
            contiguous = 0;
        }
    }
    if (contiguous < count) {
        ret = qcow2_imrt_resize(s, t, cluster + count - contiguous);
        if (ret < 0) {
            return ret;
        }
    }
    cluster -= contiguous;
    for (int64_t i = 0; i < count; i++) {
        qcow2_imrt_set(s, t->table, cluster + i, 1);
    }
    return cluster << s->cluster_bits;
}

/* Write the refblocks covering allocated clusters of [first, end), taking
 * clusters for new refblocks from the IMRT.  Returns 1 when the new
 * reftable (*rt, *rt_entries) had to grow, 0, or -errno. */
static int coroutine_fn write_refblocks(struct blk_node *bs,
                                        struct blk_check_result *res,
                                        struct qcow2_imrt *t, int64_t first,
                                        int64_t end, uint64_t **rt,
                                        uint32_t *rt_entries)
{
    struct qcow2_state *s = bs->opaque;
    int64_t first_free = 0;
    bool grown = false;
    int ret;

    for (int64_t cluster = first; cluster < end; cluster++) {
        int64_t index, start, rb_offset;

        if (!(cluster & (s->refblock_size - 1)) &&
            cluster + s->refblock_size <= t->size &&
            buffer_is_zero(t->table + (uint64_t)(cluster >>
                                                 s->refblock_bits) *
                                      s->cluster_size, s->cluster_size)) {
            /* nothing allocated in this refblock's range */
            cluster += s->refblock_size - 1;
            continue;
        }
        if (!qcow2_imrt_get(s, t->table, cluster)) {
            continue;
        }
        index = cluster >> s->refblock_bits;
        start = index << s->refblock_bits;
        if (*rt_entries > index && (*rt)[index]) {
            rb_offset = (*rt)[index];
        } else {
            /* never inside a refblock already written */
            if (first_free < start) {
                first_free = start;
            }
            rb_offset = alloc_clusters_imrt(s, 1, t, &first_free);
            if (rb_offset < 0) {
                qcow2_check_error(res, "ERROR allocating refblock: %s",
                                   strerror((int)-rb_offset));
                return (int)rb_offset;
            }
            if ((rb_offset >> s->cluster_bits) >= end) {
                /* the refblock counting this refblock is written too */
                end = (rb_offset >> s->cluster_bits) + 1;
            }
            if (*rt_entries <= index) {
                uint32_t n = ROUND_UP((uint64_t)(index + 1) * 8,
                                      (uint64_t)s->cluster_size) / 8;
                *rt = xrealloc(*rt, (size_t)n * 8);
                memset(*rt + *rt_entries, 0, (size_t)(n - *rt_entries) * 8);
                *rt_entries = n;
                grown = true;
            }
            (*rt)[index] = rb_offset;
        }
        ret = qcow2_check_overlap(bs, 0, rb_offset,
                                            s->cluster_size);
        if (ret >= 0) {
            /* the refblock is a slice of the IMRT, which is sized in
             * whole clusters */
            ret = blk_co_pwrite(bs->file, rb_offset, s->cluster_size,
                                t->table + (uint64_t)index * s->cluster_size,
                                0);
        }
        if (ret < 0) {
            qcow2_check_error(res, "ERROR writing refblock: %s",
                               strerror(-ret));
            return ret;
        }
        cluster = start + s->refblock_size - 1;
    }
    return grown;
}

/* A new reftable and refblocks holding exactly the IMRT; the old ones
 * are left behind as leaks for the caller to free. */
static int coroutine_fn rebuild_structure(struct blk_node *bs,
                                          struct blk_check_result *res,
                                          struct qcow2_imrt *t)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t *rt = NULL;
    uint32_t rt_entries = 0;
    int64_t rt_offset = -1, rt_clusters = 0;
    uint8_t hdr[12];
    int ret, changed;

    ret = qcow2_cache_write(bs, s->refblock_cache);
    if (ret < 0) {
        res->check_errors++;
        return ret;
    }
    qcow2_cache_clear(s->refblock_cache);

    changed = write_refblocks(bs, res, t, 0, t->size, &rt, &rt_entries);
    if (changed < 0) {
        res->check_errors++;
        ret = changed;
        goto fail;
    }
    /* placing the reftable changes refcounts, which may need another
     * refblock and so a bigger reftable: repeat until it fits */
    do {
        int64_t first_free = 0, start;

        rt_clusters = qcow2_size_to_clusters(s, (uint64_t)rt_entries * 8);
        rt_offset = alloc_clusters_imrt(s, rt_clusters, t, &first_free);
        if (rt_offset < 0) {
            qcow2_check_error(res, "ERROR allocating reftable: %s",
                               strerror((int)-rt_offset));
            res->check_errors++;
            ret = (int)rt_offset;
            goto fail;
        }
        start = rt_offset >> s->cluster_bits;
        changed = write_refblocks(bs, res, t, start, start + rt_clusters, &rt,
                                  &rt_entries);
        if (changed < 0) {
            res->check_errors++;
            ret = changed;
            goto fail;
        }
    } while (changed);

    {
        size_t bytes = (size_t)rt_entries * 8;
        uint8_t *be = xzalloc(ROUND_UP(bytes, (size_t)s->cluster_size));

        for (uint32_t i = 0; i < rt_entries; i++) {
            qcow2_st64(be + 8 * (size_t)i, rt[i]);
        }
        ret = qcow2_check_overlap(bs, 0, rt_offset, bytes);
        if (ret >= 0) {
            ret = blk_co_pwrite(bs->file, rt_offset, bytes, be, 0);
        }
        free(be);
        if (ret < 0) {
            qcow2_check_error(res, "ERROR writing reftable: %s",
                               strerror(-ret));
            goto fail;
        }
    }
    qcow2_st64(hdr, rt_offset);
    qcow2_st32(hdr + 8, rt_clusters);
    ret = blk_co_pwrite(bs->file, QCOW2_HDR_REFTABLE_OFFSET, sizeof(hdr), hdr,
                        0);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        qcow2_check_error(res, "ERROR setting reftable: %s", strerror(-ret));
        goto fail;
    }
    free(s->refcount_table);
    s->refcount_table = rt;
    s->refcount_table_offset = rt_offset;
    s->refcount_table_size = rt_entries;
    s->max_refcount_table_index = rt_entries ? rt_entries - 1 : 0;
    while (s->max_refcount_table_index > 0 &&
           !s->refcount_table[s->max_refcount_table_index]) {
        s->max_refcount_table_index--;
    }
    s->free_cluster_index = 0;
    return 0;
fail:
    free(rt);
    return ret;
}

/* Rebuild the refcount structure, then count and free what is left. */
int coroutine_fn qcow2_check_rebuild(struct blk_node *bs,
                                     struct blk_check_result *res,
                                     unsigned fix, struct qcow2_imrt *t,
                                     int64_t *highest_cluster)
{
    struct qcow2_state *s = bs->opaque;
    struct blk_check_result old = *res;
    int fresh_leaks = 0;
    bool rebuild = false;
    int ret;

    qcow2_check_report(res, "Rebuilding refcount structure");
    ret = rebuild_structure(bs, res, t);
    if (ret < 0) {
        return ret;
    }
    res->corruptions = 0;
    res->leaks = 0;

    /* the references change with the new reftable: count them again */
    memset(t->table, 0, ROUND_UP(DIV_ROUND_UP((uint64_t)t->size <<
                                              s->refcount_order, 8),
                                 (uint64_t)s->cluster_size));
    ret = qcow2_check_calculate(bs, res, 0, &rebuild, t);
    if (ret < 0) {
        return ret;
    }
    if (fix & BLK_FIX_LEAKS) {
        /* the old structure is leaked now; what is left after freeing it
         * was leaked by the rebuild itself */
        struct blk_check_result saved = *res;

        *res = (struct blk_check_result){.messages = saved.messages};
        qcow2_check_compare(bs, res, BLK_FIX_LEAKS, &rebuild,
                            highest_cluster, t);
        if (rebuild) {
            qcow2_check_report(res, "ERROR rebuilt refcount structure is "
                               "still broken");
        }
        fresh_leaks = res->leaks;
        saved.messages = res->messages;
        *res = saved;
    }
    if (res->corruptions < old.corruptions) {
        res->corruptions_fixed += old.corruptions - res->corruptions;
    }
    if (res->leaks < old.leaks) {
        res->leaks_fixed += old.leaks - res->leaks;
    }
    res->leaks += fresh_leaks;
    return 0;
}
