/* The qcow2 snapshot table: reading it against hostile values (offsets
 * past the end of the file, overlaps, absurd counts and sizes), rewriting
 * it whole into new clusters as QEMU does, and what check reports of it.
 * The operations on snapshots are in qcow2-snapshot.c. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

/* QEMU's limits, so that images stay interchangeable. */
#define SN_EXTRA_KNOWN 24              /* vm_state_size, disk_size, icount */
#define SN_MAX_EXTRA 1024              /* extra data bytes per entry */
#define SN_MAX_TABLE_SIZE (1024ull * QCOW2_MAX_SNAPSHOTS)
#define SN_HDR QCOW2_SNAPSHOT_HEADER_SIZE
#define SN_HDR_NB_SNAPSHOTS 60         /* header: nb_snapshots, offset */

/* ---- the in-memory table ---- */

/* One allocation holding the array and everything it points to (see
 * struct qcow2_snapshot); NULL for none. */
static struct qcow2_snapshot *pack(const struct qcow2_snapshot *src,
                                   uint32_t n)
{
    size_t total = sizeof(*src) * (size_t)n;
    struct qcow2_snapshot *dst;
    char *p;

    if (!n) {
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        total += strlen(src[i].id_str) + 1 + strlen(src[i].name) + 1 +
                 src[i].unknown_extra_size;
    }
    dst = xmalloc(total);
    p = (char *)(dst + n);
    for (uint32_t i = 0; i < n; i++) {
        size_t l;
        dst[i] = src[i];
        l = strlen(src[i].id_str) + 1;
        dst[i].id_str = memcpy(p, src[i].id_str, l);
        p += l;
        l = strlen(src[i].name) + 1;
        dst[i].name = memcpy(p, src[i].name, l);
        p += l;
        dst[i].unknown_extra = NULL;
        if (src[i].unknown_extra_size) {
            dst[i].unknown_extra = memcpy(p, src[i].unknown_extra,
                                          src[i].unknown_extra_size);
            p += src[i].unknown_extra_size;
        }
    }
    return dst;
}

/* Bytes of the table as QEMU writes it (entries 8-byte aligned). */
static uint64_t table_size(const struct qcow2_snapshot *sn, uint32_t n)
{
    uint64_t size = 0;

    for (uint32_t i = 0; i < n; i++) {
        size = ROUND_UP(size, 8);
        size += SN_HDR + SN_EXTRA_KNOWN + sn[i].unknown_extra_size +
                strlen(sn[i].id_str) + strlen(sn[i].name);
    }
    return size;
}

bool qcow2_ranges_overlap(uint64_t a, uint64_t alen, uint64_t b,
                           uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

/* A snapshot's L1 table must be a sane size, aligned, inside the file and
 * clear of the header and the other fixed metadata. */
static int check_sn_l1(struct blk_node *bs, const struct qcow2_snapshot *sn,
                       uint32_t i, struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t bytes = (uint64_t)sn->l1_size * 8;

    if (sn->l1_size > QCOW2_MAX_L1_SIZE / 8) {
        return error_setg(errp, -EFBIG, "Snapshot L1 table of snapshot %u "
                          "(id %s) too large", i, sn->id_str);
    }
    if (qcow2_offset_into_cluster(s, sn->l1_offset) ||
        sn->l1_offset > (uint64_t)INT64_MAX - bytes) {
        return error_setg(errp, -EINVAL, "Snapshot L1 table offset of "
                          "snapshot %u (id %s) invalid", i, sn->id_str);
    }
    if (!bytes) {
        return 0;
    }
    if (sn->l1_offset + bytes > bs->file->size) {
        return error_setg(errp, -EINVAL, "Snapshot L1 table of snapshot %u "
                          "(id %s) lies past the end of the image file", i,
                          sn->id_str);
    }
    if (sn->l1_offset < s->cluster_size ||
        qcow2_ranges_overlap(sn->l1_offset, bytes, s->l1_table_offset,
                       (uint64_t)s->l1_size * 8) ||
        qcow2_ranges_overlap(sn->l1_offset, bytes, s->refcount_table_offset,
                       (uint64_t)s->refcount_table_size * 8) ||
        qcow2_ranges_overlap(sn->l1_offset, bytes, s->snapshots_offset,
                       s->snapshots_size)) {
        return error_setg(errp, -EINVAL, "Snapshot L1 table of snapshot %u "
                          "(id %s) overlaps other metadata", i, sn->id_str);
    }
    return 0;
}

/* Parse entry i at *offset (already 8-byte aligned) into sn; its strings
 * and extra data are malloc'd (packed by the caller). */
static int coroutine_fn read_entry(struct blk_node *bs, uint32_t i,
                                   uint64_t *offset,
                                   struct qcow2_snapshot *sn,
                                   struct strata_error **errp)
{
    uint8_t h[SN_HDR], *rest;
    uint32_t extra_size, id_size, name_size, known;
    uint64_t need;
    int ret;

    if (*offset > bs->file->size || bs->file->size - *offset < SN_HDR) {
        return error_setg(errp, -EINVAL, "Snapshot table entry %u lies past "
                          "the end of the image file", i);
    }
    ret = blk_co_pread(bs->file, *offset, SN_HDR, h, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to read snapshot table");
    }
    *offset += SN_HDR;
    sn->l1_offset = qcow2_ld64(h);
    sn->l1_size = qcow2_ld32(h + 8);
    id_size = (uint32_t)h[12] << 8 | h[13];
    name_size = (uint32_t)h[14] << 8 | h[15];
    sn->date_sec = qcow2_ld32(h + 16);
    sn->date_nsec = qcow2_ld32(h + 20);
    sn->vm_clock_nsec = qcow2_ld64(h + 24);
    sn->vm_state_size = qcow2_ld32(h + 32);
    extra_size = qcow2_ld32(h + 36);
    if (extra_size > SN_MAX_EXTRA) {
        if (bs->flags & BLK_O_CHECK) {
            struct qcow2_state *s = bs->opaque;
            s->sn_check_hint = xstrdup("You can force-remove this extra "
                                       "metadata with qemu-img check -r all");
        }
        return error_setg(errp, -EFBIG, "Too much extra metadata in snapshot "
                          "table entry %u", i);
    }
    need = (uint64_t)extra_size + id_size + name_size;
    if (bs->file->size - *offset < need) {
        return error_setg(errp, -EINVAL, "Snapshot table entry %u lies past "
                          "the end of the image file", i);
    }
    rest = xzalloc(need + 1);
    ret = need ? blk_co_pread(bs->file, *offset, need, rest, 0) : 0;
    if (ret < 0) {
        free(rest);
        return error_setg_errno(errp, ret, "Failed to read snapshot table");
    }
    *offset += need;

    sn->disk_size = bs->size; /* QEMU's default for old entries */
    sn->icount = UINT64_MAX;
    if (extra_size >= 8) {
        sn->vm_state_size = qcow2_ld64(rest);
    }
    if (extra_size >= 16) {
        sn->disk_size = qcow2_ld64(rest + 8);
    }
    if (extra_size >= 24) {
        sn->icount = qcow2_ld64(rest + 16);
    }
    sn->extra_size = extra_size;
    known = MIN(extra_size, (uint32_t)SN_EXTRA_KNOWN);
    sn->unknown_extra_size = extra_size - known;
    sn->unknown_extra = NULL;
    if (sn->unknown_extra_size) {
        sn->unknown_extra = xmalloc(sn->unknown_extra_size);
        memcpy(sn->unknown_extra, rest + known, sn->unknown_extra_size);
    }
    sn->id_str = xzalloc(id_size + 1);
    memcpy(sn->id_str, rest + extra_size, id_size);
    sn->name = xzalloc(name_size + 1);
    memcpy(sn->name, rest + extra_size + id_size, name_size);
    free(rest);
    return 0;
}

static void free_unpacked(struct qcow2_snapshot *sn, uint32_t n)
{
    for (uint32_t i = 0; sn && i < n; i++) {
        free(sn[i].id_str);
        free(sn[i].name);
        free(sn[i].unknown_extra);
    }
    free(sn);
}

int coroutine_fn qcow2_read_snapshots(struct blk_node *bs,
                                      struct strata_error **errp)
{
    struct qcow2_state *s = bs->opaque;
    struct qcow2_snapshot *tmp;
    uint64_t offset = s->snapshots_offset, length = 0;
    int ret = 0;

    free(s->snapshots);
    s->snapshots = NULL;
    s->snapshots_size = 0;
    if (!s->nb_snapshots) {
        return 0;
    }
    if (s->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        return error_setg(errp, -EFBIG, "Too many snapshots");
    }
    if (s->snapshots_offset < s->cluster_size) {
        return error_setg(errp, -EINVAL, "Snapshot table offset invalid "
                          "(it points into the image header)");
    }
    tmp = xzalloc(sizeof(*tmp) * s->nb_snapshots);
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        offset = ROUND_UP(offset, 8);
        ret = read_entry(bs, i, &offset, &tmp[i], errp);
        if (ret < 0) {
            goto out;
        }
        length = offset - s->snapshots_offset;
        if (length > SN_MAX_TABLE_SIZE) {
            if (bs->flags & BLK_O_CHECK) {
                s->sn_check_hint = xasprintf("You can force-remove all %u "
                                             "overhanging snapshots with "
                                             "qemu-img check -r all",
                                             s->nb_snapshots - i);
            }
            ret = error_setg(errp, -EFBIG, "Snapshot table is too big");
            goto out;
        }
    }
    s->snapshots_size = length;
    if (qcow2_ranges_overlap(s->snapshots_offset, length, s->l1_table_offset,
                       (uint64_t)s->l1_size * 8) ||
        qcow2_ranges_overlap(s->snapshots_offset, length, s->refcount_table_offset,
                       (uint64_t)s->refcount_table_size * 8)) {
        ret = error_setg(errp, -EINVAL, "Snapshot table overlaps other "
                         "metadata");
        goto out;
    }
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        /* QEMU opens such images and its check reports these two */
        if (bs->flags & BLK_O_CHECK) {
            if (qcow2_offset_into_cluster(s, tmp[i].l1_offset)) {
                tmp[i].l1_bad = QCOW2_SN_L1_MISALIGNED;
                continue;
            }
            if (tmp[i].l1_size > QCOW2_MAX_L1_SIZE / 8) {
                tmp[i].l1_bad = QCOW2_SN_L1_TOO_LARGE;
                continue;
            }
        }
        ret = check_sn_l1(bs, &tmp[i], i, errp);
        if (ret < 0) {
            goto out;
        }
    }
    s->snapshots = pack(tmp, s->nb_snapshots);
out:
    if (ret < 0) {
        s->snapshots_size = 0;
    }
    free_unpacked(tmp, s->nb_snapshots);
    return ret;
}

/* Write the table for `sn` (n entries) into new clusters, point the header
 * at it and free the old one; on success s->snapshots is the packed `sn`
 * (the caller's array is left to the caller). */
int coroutine_fn qcow2_write_snapshots(struct blk_node *bs,
                                       const struct qcow2_snapshot *sn,
                                       uint32_t n)
{
    struct qcow2_state *s = bs->opaque;
    uint64_t size = table_size(sn, n), pos = 0;
    uint8_t *buf = xzalloc(size ? size : 1), hdr[12];
    int64_t offset;
    int ret;

    for (uint32_t i = 0; i < n; i++) {
        size_t id_len = strlen(sn[i].id_str), name_len = strlen(sn[i].name);
        uint8_t *e;

        pos = ROUND_UP(pos, 8);
        e = buf + pos;
        qcow2_st64(e, sn[i].l1_offset);
        qcow2_st32(e + 8, sn[i].l1_size);
        e[12] = id_len >> 8;
        e[13] = id_len;
        e[14] = name_len >> 8;
        e[15] = name_len;
        qcow2_st32(e + 16, sn[i].date_sec);
        qcow2_st32(e + 20, sn[i].date_nsec);
        qcow2_st64(e + 24, sn[i].vm_clock_nsec);
        /* too big for 32 bits: older readers see a disk-only snapshot */
        qcow2_st32(e + 32, sn[i].vm_state_size <= UINT32_MAX
                               ? (uint32_t)sn[i].vm_state_size : 0);
        qcow2_st32(e + 36, SN_EXTRA_KNOWN + sn[i].unknown_extra_size);
        e += SN_HDR;
        qcow2_st64(e, sn[i].vm_state_size);
        qcow2_st64(e + 8, sn[i].disk_size);
        qcow2_st64(e + 16, sn[i].icount);
        e += SN_EXTRA_KNOWN;
        if (sn[i].unknown_extra_size) {
            memcpy(e, sn[i].unknown_extra, sn[i].unknown_extra_size);
            e += sn[i].unknown_extra_size;
        }
        memcpy(e, sn[i].id_str, id_len);
        memcpy(e + id_len, sn[i].name, name_len);
        pos += SN_HDR + SN_EXTRA_KNOWN + sn[i].unknown_extra_size + id_len +
               name_len;
    }

    offset = qcow2_alloc_clusters(bs, size);
    if (offset < 0) {
        free(buf);
        return (int)offset;
    }
    /* the new clusters' refcounts first; they must be free metadata-wise */
    ret = qcow2_flush_caches(bs);
    if (ret >= 0) {
        ret = qcow2_pre_write_overlap_check(bs, 0, offset, size);
    }
    if (ret >= 0 && size) {
        ret = blk_co_pwrite(bs->file, offset, size, buf, 0);
    }
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    free(buf);
    if (ret < 0) {
        goto fail;
    }
    qcow2_st32(hdr, n);
    qcow2_st64(hdr + 4, offset);
    ret = blk_co_pwrite(bs->file, SN_HDR_NB_SNAPSHOTS, sizeof(hdr), hdr, 0);
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret < 0) {
        goto fail;
    }

    uint64_t old_offset = s->snapshots_offset, old_size = s->snapshots_size;
    /* pack before freeing: `sn` may point into the old array's strings */
    struct qcow2_snapshot *packed = pack(sn, n);
    for (uint32_t i = 0; i < n; i++) {
        packed[i].extra_size = SN_EXTRA_KNOWN + packed[i].unknown_extra_size;
    }
    free(s->snapshots);
    s->snapshots = packed;
    s->nb_snapshots = n;
    s->snapshots_offset = offset;
    s->snapshots_size = size;
    if (old_size) {
        qcow2_free_clusters(bs, old_offset, old_size, QCOW2_DISCARD_SNAPSHOT);
    }
    return 0;

fail:
    qcow2_free_clusters(bs, offset, size, QCOW2_DISCARD_ALWAYS);
    return ret;
}

/* ---- check ---- */

/* Snapshot table entries whose L1 table cannot be used (only kept by an
 * open for check), reported first with QEMU's messages; like QEMU 7.2's
 * check, their references are not counted and the entries stay. */
static void report_bad_snapshots(struct blk_node *bs,
                                 struct blk_check_result *res)
{
    struct qcow2_state *s = bs->opaque;

    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        const struct qcow2_snapshot *sn = &s->snapshots[i];

        if (sn->l1_bad == QCOW2_SN_L1_MISALIGNED) {
            qcow2_check_report(res, "ERROR snapshot %s (%s) l1_offset=%#"
                               PRIx64 ": L1 table is not cluster aligned; "
                               "snapshot table entry corrupted", sn->id_str,
                               sn->name, sn->l1_offset);
            res->corruptions++;
        } else if (sn->l1_bad == QCOW2_SN_L1_TOO_LARGE) {
            qcow2_check_report(res, "ERROR snapshot %s (%s) l1_size=%#"
                               PRIx32 ": L1 table is too large; snapshot "
                               "table entry corrupted", sn->id_str, sn->name,
                               sn->l1_size);
            res->corruptions++;
        }
    }
}

int qcow2_check_snapshot_table(struct blk_node *bs,
                               struct blk_check_result *res, unsigned fix,
                               int *table_errors)
{
    struct qcow2_state *s = bs->opaque;

    *table_errors = 0;

    if (s->sn_check_ret) {
        /* the table could not be read (qcow2-header.c read_snapshots) */
        qcow2_check_report(res, "%s", s->sn_check_msg);
        if (s->sn_check_hint) {
            qcow2_check_report(res, "%s", s->sn_check_hint);
        }
        res->check_errors++;
        return s->sn_check_ret;
    }
    report_bad_snapshots(bs, res);
    /* a version 3 entry must hold the 16 bytes of extra data that QEMU 3+
     * always writes; the repair rewrites the table (as QEMU's check) */
    for (uint32_t i = 0; s->version >= 3 && i < s->nb_snapshots; i++) {
        if (s->snapshots[i].extra_size < 16) {
            qcow2_check_report(res, "%s snapshot table entry %u is "
                               "incomplete",
                               fix & BLK_FIX_ERRORS ? "Repairing" : "ERROR",
                               i);
            res->corruptions++;
            (*table_errors)++;
        }
    }
    return 0;
}

int coroutine_fn qcow2_check_fix_snapshot_table(struct blk_node *bs,
                                                struct blk_check_result *res,
                                                int table_errors)
{
    struct qcow2_state *s = bs->opaque;
    int ret = qcow2_write_snapshots(bs, s->snapshots, s->nb_snapshots);

    if (ret < 0) {
        res->check_errors++;
        qcow2_check_report(res, "ERROR failed to update snapshot table: %s",
                           strerror(-ret));
        return ret;
    }
    res->corruptions -= table_errors;
    res->corruptions_fixed += table_errors;
    return 0;
}
