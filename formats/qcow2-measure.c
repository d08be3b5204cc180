/* qcow2 measure: the file size a new qcow2 image needs, as QEMU's
 * qcow2_measure (the same option checks and messages, the same formula:
 * all metadata of a fully allocated image plus the clusters the input
 * has data in), and the room for the input's persistent bitmaps. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util.h"

#define BITMAP_DIR_ENTRY_SIZE 24    /* fixed part of a directory entry */
#define BITMAP_EXT_SIZE 24
#define BITMAP_DIR_MAX (64u << 20)  /* QEMU's limit on the directory */

/* QEMU's qcow2_calc_prealloc_size: header, L2 and L1 tables, refcount
 * structures and data of a fully allocated image. */
static uint64_t prealloc_size(uint64_t total_size, uint64_t cluster_size,
                              unsigned refcount_order, bool extended_l2)
{
    uint64_t aligned = ROUND_UP(total_size, cluster_size);
    uint64_t l2e_size = extended_l2 ? 16 : 8;
    uint64_t meta = cluster_size, nl1e, nl2e;

    nl2e = ROUND_UP(aligned / cluster_size, cluster_size / l2e_size);
    meta += nl2e * l2e_size;
    nl1e = ROUND_UP(nl2e * l2e_size / cluster_size, cluster_size / 8);
    meta += nl1e * 8;
    meta += qcow2_refcount_metadata_size((int64_t)((meta + aligned) /
                                                   cluster_size),
                                         (uint32_t)cluster_size,
                                         refcount_order, false, NULL);
    return meta + aligned;
}

/* Bytes of the allocated clusters of `in` (whole chain), QEMU's walk. */
static int data_bytes(struct blk_node *in, uint64_t cluster_size,
                      uint64_t *required, struct strata_error **errp)
{
    uint64_t ssize = in->size, offset, pnum = 0;

    *required = 0;
    for (offset = 0; offset < ssize; offset += pnum) {
        int ret = blk_block_status_above(in, NULL, offset, ssize - offset,
                                         &pnum, NULL, NULL, NULL);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Unable to get block status");
        }
        if (pnum == 0) {
            break;
        }
        if (ret & BLK_STATUS_ZERO) {
            continue; /* safe: the new image has no backing file */
        }
        if ((ret & (BLK_STATUS_DATA | BLK_STATUS_ALLOCATED)) ==
            (BLK_STATUS_DATA | BLK_STATUS_ALLOCATED)) {
            pnum = ROUND_UP(offset + pnum, cluster_size) - offset;
            *required += offset % cluster_size + pnum;
        }
    }
    return 0;
}

/* The input's persistent bitmaps as QEMU loads them (only when the
 * bitmaps autoclear bit says the extension is valid): their data and
 * bitmap tables, fully allocated, and the directory entries. */
static int bitmaps_size(struct blk_node *in, uint64_t cluster_size,
                        uint64_t *out, struct strata_error **errp)
{
    struct qcow2_state *s = in->opaque;
    const struct qcow2_unknown_ext *e;
    uint64_t dir_size, dir_offset, total = 0, dir_bytes = 0, pos;
    uint32_t nb;
    uint8_t *dir;
    int ret;

    *out = 0;
    if (!(s->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
        return 0;
    }
    for (e = s->unknown_exts; e && e->magic != QCOW2_EXT_BITMAPS;
         e = e->next) {
    }
    if (!e || e->len < BITMAP_EXT_SIZE) {
        return 0;
    }
    nb = qcow2_ld32(e->data);
    dir_size = qcow2_ld64(e->data + 8);
    dir_offset = qcow2_ld64(e->data + 16);
    if (nb == 0) {
        return 0;
    }
    if (dir_size > BITMAP_DIR_MAX || dir_size < BITMAP_DIR_ENTRY_SIZE) {
        return error_setg(errp, -EINVAL, "Bitmap directory is too large");
    }
    dir = xmalloc(dir_size);
    ret = blk_pread(in->file, dir_offset, dir_size, dir, 0);
    if (ret < 0) {
        free(dir);
        return error_setg_errno(errp, ret, "Failed to read bitmap "
                                "directory");
    }
    pos = 0;
    for (uint32_t i = 0; i < nb; i++) {
        uint32_t gbits, name_size, extra;
        uint64_t bits, bytes, clusters;

        if (dir_size - pos < BITMAP_DIR_ENTRY_SIZE) {
            goto broken;
        }
        gbits = dir[pos + 17];
        name_size = (uint32_t)dir[pos + 18] << 8 | dir[pos + 19];
        extra = qcow2_ld32(dir + pos + 20);
        if (gbits < 9 || gbits > 31 ||
            (uint64_t)BITMAP_DIR_ENTRY_SIZE + name_size + extra >
                dir_size - pos) {
            goto broken;
        }
        bits = DIV_ROUND_UP(in->size, 1ull << gbits);
        bytes = DIV_ROUND_UP(bits, 8);
        clusters = DIV_ROUND_UP(bytes, cluster_size);
        total += clusters * cluster_size;
        total += ROUND_UP(clusters * 8, cluster_size);
        dir_bytes += ROUND_UP(BITMAP_DIR_ENTRY_SIZE + name_size, 8);
        pos += ROUND_UP(BITMAP_DIR_ENTRY_SIZE + name_size + extra, 8);
    }
    free(dir);
    *out = total + ROUND_UP(dir_bytes, cluster_size);
    return 0;
broken:
    free(dir);
    return error_setg(errp, -EINVAL, "Bitmap directory is corrupt");
}

static bool is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

/* QEMU's option checks, then fully allocated size and required size. */
int qcow2_measure(struct blk_opts *opts, struct blk_node *in,
                  struct blk_measure *out, struct strata_error **errp)
{
    const char *compat, *pa, *efmt;
    uint64_t cs, rb, vsize, required = 0, l2_tables, full;
    enum blk_prealloc prealloc = BLK_PREALLOC_OFF;
    bool extl2, has_backing;
    unsigned order = 0;
    int version = 3, ret;

    /* QEMU's order of checks and its messages */
    ret = opts_get_bool(opts, "extended_l2", false, &extl2, errp);
    if (ret < 0) {
        return ret;
    }
    ret = opts_get_size(opts, "cluster_size", QCOW2_DEFAULT_CLUSTER_SIZE, &cs,
                        errp);
    if (ret < 0) {
        return ret;
    }
    if (cs < 512 || cs > 2 * 1024 * 1024 || !is_pow2(cs)) {
        return error_setg(errp, -EINVAL, "Cluster size must be a power of two "
                          "between 512 and 2048k");
    }
    if (extl2 && cs < 16384) {
        return error_setg(errp, -EINVAL, "Extended L2 entries are only "
                          "supported with cluster sizes of at least 16384 "
                          "bytes");
    }
    compat = opts_get(opts, "compat");
    if (compat && strcmp(compat, "0.10") == 0) {
        version = 2;
    } else if (compat && strcmp(compat, "1.1") != 0) {
        return error_setg(errp, -EINVAL, "Invalid compatibility level: '%s'",
                          compat);
    }
    ret = opts_get_uint(opts, "refcount_bits", 16, &rb, errp);
    if (ret < 0) {
        return ret;
    }
    if (rb > 64 || !is_pow2(rb)) {
        return error_setg(errp, -EINVAL, "Refcount width must be a power of "
                          "two and may not exceed 64 bits");
    }
    if (version < 3 && rb != 16) {
        return error_setg(errp, -EINVAL, "Different refcount widths than 16 "
                          "bits require compatibility level 1.1 or above "
                          "(use compat=1.1 or greater)");
    }
    while ((1ull << order) < rb) {
        order++;
    }
    pa = opts_get(opts, "preallocation");
    if (pa && blk_parse_prealloc(pa, &prealloc) < 0) {
        return error_setg(errp, -EINVAL, "invalid parameter value: %s", pa);
    }
    has_backing = opts_get(opts, "backing_file") != NULL;
    efmt = opts_get(opts, "encrypt.format");
    if (efmt && strcmp(efmt, "luks") == 0) {
        return error_setg(errp, -ENOTSUP, "Measuring LUKS-encrypted qcow2 "
                          "images is not supported yet");
    }
    ret = opts_get_size(opts, "size", 0, &vsize, errp);
    if (ret < 0) {
        return ret;
    }
    if (vsize > INT64_MAX - cs) {
        return error_setg(errp, -EINVAL, "The image size is too large (try "
                          "using a larger cluster size)");
    }
    vsize = ROUND_UP(vsize, cs);
    l2_tables = DIV_ROUND_UP(vsize / cs, cs / (extl2 ? 16 : 8));
    if (l2_tables * 8 > QCOW2_MAX_L1_SIZE) {
        return error_setg(errp, -EINVAL, "The image size is too large (try "
                          "using a larger cluster size)");
    }

    if (in) {
        vsize = ROUND_UP(in->size, cs);
        if (has_backing) {
            /* nothing is known to be shared with that backing file */
            required = vsize;
        } else {
            ret = data_bytes(in, cs, &required, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    if (prealloc == BLK_PREALLOC_FULL || prealloc == BLK_PREALLOC_FALLOC) {
        required = vsize;
    }
    full = prealloc_size(vsize, cs, order, extl2);
    out->fully_allocated = full;
    /* metadata of the fully allocated image stays counted, as QEMU */
    out->required = full - vsize + required;
    out->has_bitmaps = version >= 3 && in && in->drv->measure == qcow2_measure
                       && ((struct qcow2_state *)in->opaque)->version >= 3;
    if (out->has_bitmaps) {
        ret = bitmaps_size(in, cs, &out->bitmaps, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}
