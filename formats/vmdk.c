/* The vmdk format (VMware virtual disks): probing, opening (embedded
 * descriptors, descriptor files with their extents, delta disks linked by
 * parentCID/parentFileNameHint), the data path dispatching to the extents,
 * block status and `info`.  Sparse extents are in vmdk-sparse.c,
 * compressed grains in vmdk-stream.c, descriptors in vmdk-desc.c and
 * creation in vmdk-create.c. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"
#include "util.h"
#include "vmdk.h"

/* As QEMU: the sparse magics, or a text whose first non-comment,
 * non-blank line is "version=1|2|3". */
static int vmdk_probe(const uint8_t *buf, size_t len, const char *filename)
{
    const char *p = (const char *)buf, *end = p + len;

    (void)filename;
    if (len < 4) {
        return 0;
    }
    if (memcmp(buf, "KDMV", 4) == 0 || memcmp(buf, "COWD", 4) == 0) {
        return 100;
    }
    while (p < end) {
        if (*p == '#') {
            while (p < end && *p != '\n') {
                p++;
            }
            p++;
            continue;
        }
        if (*p == ' ') {
            while (p < end && *p == ' ') {
                p++;
            }
            if (p < end && *p == '\r') {
                p++;
            }
            if (p == end || *p != '\n') {
                return 0;
            }
            p++;
            continue;
        }
        for (char v = '1'; v <= '3'; v++) {
            char want[12];
            snprintf(want, sizeof(want), "version=%c\n", v);
            if ((size_t)(end - p) >= 10 && memcmp(p, want, 10) == 0) {
                return 100;
            }
            snprintf(want, sizeof(want), "version=%c\r\n", v);
            if ((size_t)(end - p) >= 11 && memcmp(p, want, 11) == 0) {
                return 100;
            }
        }
        return 0;
    }
    return 0;
}

static const char *const desc_types[] = {
    "monolithicFlat", "vmfs", "vmfsThin", "vmfsPreallocated",
    "vmfsEagerZeroedThick", "vmfsSparse", "seSparse", "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat", "monolithicSparse", "streamOptimized", "custom",
    NULL,
};

/* A descriptor file (or one embedded in a zero-capacity sparse header). */
static int open_desc(struct blk_node *bs, const char *desc,
                     struct strata_error **errp)
{
    struct vmdk_state *s = bs->opaque;
    char *ct = vmdk_desc_get(desc, "createType");
    int i;

    if (!ct) {
        return error_setg(errp, -EINVAL, "invalid VMDK image descriptor");
    }
    for (i = 0; desc_types[i] && strcmp(desc_types[i], ct); i++) {
    }
    if (!desc_types[i]) {
        int ret = error_setg(errp, -ENOTSUP, "Unsupported image type '%s'",
                             ct);
        free(ct);
        return ret;
    }
    s->create_type = ct;
    return vmdk_parse_extents(bs, desc, errp);
}

/* Open the extents from bs->file: a sparse extent with its embedded
 * descriptor, or a descriptor file. */
static int open_extents(struct blk_node *bs, char **desc_out,
                        struct strata_error **errp)
{
    struct vmdk_state *s = bs->opaque;
    uint8_t hdr[512];
    char *desc = NULL;
    int ret;

    if (bs->file->size < 4) {
        return error_setg(errp, -EINVAL, "File is too small, not a valid "
                          "image");
    }
    memset(hdr, 0, sizeof(hdr));
    ret = blk_pread(bs->file, 0, MIN(bs->file->size, sizeof(hdr)), hdr, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not read from file");
    }
    if (memcmp(hdr, "KDMV", 4) == 0 || memcmp(hdr, "COWD", 4) == 0) {
        bool v4 = hdr[0] == 'K';
        uint64_t doff = v4 ? vmdk_ld64(hdr + 28) : 0;
        uint64_t dsize = v4 ? vmdk_ld64(hdr + 36) : 0;
        if (doff > bs->file->size / 512 || dsize > VMDK_MAX_DESC_FILE / 512) {
            doff = dsize = 0; /* no usable embedded descriptor */
        }
        s->desc_offset = doff * 512;
        s->desc_size = dsize * 512;
        if (doff && dsize) {
            ret = vmdk_read_desc(bs, &desc);
            if (ret < 0) {
                return error_setg_errno(errp, ret, "Could not read the "
                                        "embedded descriptor");
            }
        }
        if (v4 && vmdk_ld64(hdr + 12) == 0 && desc) {
            /* zero capacity: the extents are listed by the descriptor */
            ret = open_desc(bs, desc, errp);
        } else {
            ret = vmdk_open_sparse(bs, bs->file, false, NULL, dsize, errp);
            if (ret >= 0) {
                s->create_type = xstrdup(s->extents[0].compressed ?
                                         "streamOptimized" :
                                         "monolithicSparse");
            }
        }
    } else {
        s->desc_in_file = true;
        ret = vmdk_read_desc(bs, &desc);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Could not read from file");
        }
        /* QEMU pads descriptor files with NULs when it rewrites the
         * CID: the text ends at the first one */
        ret = open_desc(bs, desc, errp);
    }
    if (ret < 0) {
        free(desc);
        return ret;
    }
    *desc_out = desc ? desc : xstrdup("");
    return 0;
}

/* Read the CIDs and the parent link, and open the parent. */
static int open_parent(struct blk_node *bs, const char *desc,
                       struct strata_error **errp)
{
    struct vmdk_state *s = bs->opaque;
    char *hint;
    int ret;

    if (vmdk_desc_get_cid(desc, "CID", &s->cid) < 0) {
        if (desc[0]) {
            return error_setg(errp, -EINVAL, "Invalid or missing CID in the "
                              "descriptor of '%s'", bs->filename);
        }
        s->cid = 0; /* no descriptor at all (ESX sparse) */
    }
    if (vmdk_desc_get_cid(desc, "parentCID", &s->parent_cid) < 0) {
        if (desc[0]) {
            return error_setg(errp, -EINVAL, "Invalid or missing parentCID "
                              "in the descriptor of '%s'", bs->filename);
        }
        s->parent_cid = 0xffffffff;
    }
    hint = vmdk_desc_get(desc, "parentFileNameHint");
    if (hint && hint[0]) {
        if (strlen(hint) > 4095) {
            free(hint);
            return error_setg(errp, -EINVAL, "parentFileNameHint of '%s' is "
                              "too long", bs->filename);
        }
        bs->backing_file = hint;
        bs->backing_format = xstrdup("vmdk");
        hint = NULL;
    }
    free(hint);
    ret = blk_open_backing(bs, errp);
    if (ret < 0) {
        return ret;
    }
    if (bs->backing) {
        /* as QEMU: a parent whose CID changed since the delta was taken
         * (or that is no vmdk) cannot supply unallocated data */
        if (bs->backing->drv == &blk_drv_vmdk) {
            struct vmdk_state *ps = bs->backing->opaque;
            s->cid_valid = ps->cid == s->parent_cid;
        }
    }
    return 0;
}

static void vmdk_close(struct blk_node *bs)
{
    struct vmdk_state *s = bs->opaque;

    for (int i = 0; i < s->nb_extents; i++) {
        vmdk_free_extent(&s->extents[i]);
    }
    free(s->extents);
    free(s->create_type);
    s->extents = NULL;
    s->nb_extents = 0;
}

static int vmdk_open(struct blk_node *bs, struct blk_opts *opts,
                     struct strata_error **errp)
{
    struct vmdk_state *s = bs->opaque;
    char *desc = NULL;
    int ret;

    (void)opts;
    co_mutex_init(&s->lock);
    co_queue_init(&s->stream_waiters);
    ret = open_extents(bs, &desc, errp);
    if (ret >= 0) {
        ret = open_parent(bs, desc, errp);
    }
    free(desc);
    if (ret < 0) {
        vmdk_close(bs);
        return ret;
    }
    bs->size = s->extents[s->nb_extents - 1].end;
    bs->limits.request_alignment = BLK_SECTOR_SIZE;
    for (int i = 0; i < s->nb_extents; i++) {
        struct vmdk_extent *e = &s->extents[i];
        uint64_t grain = e->grain_sectors * BLK_SECTOR_SIZE;
        /* compressed grains are written whole: let the core merge
         * partial writes into grains */
        if (!bs->read_only && e->compressed && grain <= (1u << 24) &&
            !(grain & (grain - 1)) && grain > bs->limits.request_alignment) {
            bs->limits.request_alignment = (uint32_t)grain;
        }
        if (e->kind != VMDK_EXT_FLAT &&
            grain > bs->limits.pwrite_zeroes_alignment) {
            bs->limits.pwrite_zeroes_alignment = (uint32_t)grain;
        }
    }
    return 0;
}

/* The extent covering virtual byte off (off < bs->size). */
static struct vmdk_extent *find_extent(struct vmdk_state *s, uint64_t off)
{
    int lo = 0, hi = s->nb_extents - 1;

    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (off < s->extents[mid].end) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return &s->extents[lo];
}

/* Read from a flat extent; past the end of its file reads zeroes. */
static int coroutine_fn flat_read(struct vmdk_extent *e, uint64_t pos,
                                  uint64_t n, struct blk_iov *q)
{
    uint64_t have = e->file->size > pos ? MIN(n, e->file->size - pos) : 0;

    if (have < n) {
        blk_iov_memset(q, have, 0, n - have);
    }
    if (have == 0) {
        return 0;
    }
    if (have < n) {
        struct blk_iov part;
        blk_iov_init(&part, q->niov);
        blk_iov_concat(&part, q, 0, have);
        int ret = blk_co_preadv(e->file, pos, have, &part, 0);
        blk_iov_destroy(&part);
        return ret;
    }
    return blk_co_preadv(e->file, pos, n, q, 0);
}

static int coroutine_fn vmdk_co_preadv(struct blk_node *bs, uint64_t offset,
                                       uint64_t bytes, struct blk_iov *qiov,
                                       unsigned flags)
{
    struct vmdk_state *s = bs->opaque;
    uint64_t total = s->extents[s->nb_extents - 1].end;
    struct blk_iov part;
    size_t done = 0;
    int ret = 0;

    (void)flags;
    blk_iov_init(&part, qiov->niov);
    while (bytes > 0 && ret >= 0) {
        uint64_t n, host = 0;
        if (offset >= total) {
            blk_iov_memset(qiov, done, 0, bytes);
            break;
        }
        struct vmdk_extent *e = find_extent(s, offset);
        uint64_t rel = offset - e->start;
        n = MIN(bytes, e->end - offset);
        blk_iov_reset(&part);
        if (e->kind == VMDK_EXT_FLAT) {
            blk_iov_concat(&part, qiov, done, n);
            ret = flat_read(e, e->flat_offset + rel, n, &part);
        } else {
            uint64_t avail = n;
            co_mutex_lock(&s->lock);
            ret = vmdk_lookup(e, rel, n, &host, &n);
            co_mutex_unlock(&s->lock);
            if (ret == VMDK_GRAIN_DATA && e->compressed) {
                /* the grains that follow, in as few reads as possible */
                ret = vmdk_stream_readv(bs, e, rel, avail, qiov, done, &n);
            } else if (ret == VMDK_GRAIN_DATA &&
                       host + n > ROUND_UP(e->file->size, 512)) {
                ret = -EIO; /* a grain past the end: corrupt or cut short */
            } else if (ret == VMDK_GRAIN_DATA) {
                blk_iov_concat(&part, qiov, done, n);
                ret = blk_co_preadv(e->file, host, n, &part, 0);
            } else if (ret == VMDK_GRAIN_UNALLOC && bs->backing) {
                if (!s->cid_valid) {
                    ret = -EINVAL; /* parent changed under this delta */
                } else {
                    blk_iov_concat(&part, qiov, done, n);
                    ret = blk_co_read_backing(bs, offset, n, &part);
                }
            } else if (ret >= 0) {
                blk_iov_memset(qiov, done, 0, n);
            }
        }
        offset += n;
        done += n;
        bytes -= n;
    }
    blk_iov_destroy(&part);
    return ret < 0 ? ret : 0;
}

static int coroutine_fn vmdk_co_pwritev(struct blk_node *bs, uint64_t offset,
                                        uint64_t bytes, struct blk_iov *qiov,
                                        unsigned flags)
{
    struct vmdk_state *s = bs->opaque;
    uint64_t total = s->extents[s->nb_extents - 1].end;
    struct blk_iov part;
    size_t done = 0;
    int ret = 0;

    (void)flags;
    if (!s->cid_updated) {
        co_mutex_lock(&s->lock);
        ret = vmdk_update_cid(bs);
        co_mutex_unlock(&s->lock);
        if (ret < 0) {
            return ret;
        }
    }
    blk_iov_init(&part, qiov->niov);
    /* past the end: alignment padding of the core, dropped */
    while (bytes > 0 && offset < total && ret >= 0) {
        struct vmdk_extent *e = find_extent(s, offset);
        uint64_t n = MIN(bytes, e->end - offset);
        switch (e->kind) {
        case VMDK_EXT_FLAT:
            blk_iov_reset(&part);
            blk_iov_concat(&part, qiov, done, n);
            ret = blk_co_pwritev(e->file, e->flat_offset + offset - e->start,
                                 n, &part, 0);
            break;
        case VMDK_EXT_SPARSE:
            ret = e->compressed ?
                  vmdk_stream_write(bs, e, offset, n, qiov, done) :
                  vmdk_sparse_write(bs, e, offset, n, qiov, done);
            break;
        default:
            ret = -ENOTSUP; /* ESX sparse and seSparse are read only */
        }
        offset += n;
        done += n;
        bytes -= n;
    }
    blk_iov_destroy(&part);
    return ret < 0 ? ret : 0;
}

/* convert -c: as QEMU, compressed where the extent compresses (stream-
 * Optimized) and a plain write elsewhere. */
static int coroutine_fn vmdk_co_pwritev_compressed(struct blk_node *bs,
                                                   uint64_t offset,
                                                   uint64_t bytes,
                                                   struct blk_iov *qiov)
{
    return vmdk_co_pwritev(bs, offset, bytes, qiov, 0);
}

/* Zeroes: flat extents pass them on; sparse ones need whole grains and
 * the zeroed-grain feature (checked for the whole range first, so a
 * refused request changes nothing), else the core writes zero buffers. */
static int coroutine_fn vmdk_co_pwrite_zeroes(struct blk_node *bs,
                                              uint64_t offset, uint64_t bytes,
                                              unsigned flags)
{
    struct vmdk_state *s = bs->opaque;
    uint64_t total = s->extents[s->nb_extents - 1].end;
    int ret = 0;

    co_mutex_lock(&s->lock);
    for (int pass = 0; pass < 2 && ret >= 0; pass++) {
        uint64_t off = offset, left = MIN(bytes, total - offset);
        while (left > 0 && ret >= 0) {
            struct vmdk_extent *e = find_extent(s, off);
            uint64_t n = MIN(left, e->end - off);
            if (e->kind == VMDK_EXT_FLAT) {
                if (pass) {
                    ret = blk_co_pwrite_zeroes(e->file, e->flat_offset + off -
                                               e->start, n,
                                               flags & BLK_REQ_MAY_UNMAP);
                }
            } else if (e->kind != VMDK_EXT_SPARSE) {
                ret = -ENOTSUP;
            } else {
                ret = vmdk_sparse_zero(bs, e, off, n, pass == 0);
            }
            off += n;
            left -= n;
        }
        if (pass == 0 && ret >= 0) {
            ret = vmdk_update_cid(bs);
        }
    }
    co_mutex_unlock(&s->lock);
    return ret;
}

/* Finish streamOptimized files and flush the extents the core does not
 * know about (it flushes bs->file itself). */
static int coroutine_fn vmdk_co_flush(struct blk_node *bs)
{
    struct vmdk_state *s = bs->opaque;
    int ret = 0;

    co_mutex_lock(&s->lock);
    for (int i = 0; i < s->nb_extents && ret >= 0; i++) {
        struct vmdk_extent *e = &s->extents[i];
        if (!bs->read_only) {
            ret = vmdk_stream_finish(e);
        }
        if (ret >= 0 && e->owned && !bs->read_only) {
            ret = blk_co_flush(e->file);
        }
    }
    co_mutex_unlock(&s->lock);
    return ret;
}

/* Per grain, as QEMU reports it: unallocated, zeroed, data at an offset
 * of the extent file, or compressed data (no offset). */
static int coroutine_fn vmdk_co_block_status(struct blk_node *bs,
                                             uint64_t offset, uint64_t bytes,
                                             uint64_t *pnum, uint64_t *map,
                                             struct blk_node **file)
{
    struct vmdk_state *s = bs->opaque;
    struct vmdk_extent *e = find_extent(s, offset);
    uint64_t rel = offset - e->start, n = MIN(bytes, e->end - offset), host;
    int ret;

    if (e->kind == VMDK_EXT_FLAT) {
        uint64_t pos = e->flat_offset + rel, n2 = 0;
        ret = BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID;
        if (pos >= e->file->size) {
            ret |= BLK_STATUS_ZERO; /* past the end of the file */
        } else {
            n = MIN(n, e->file->size - pos);
            int r2 = blk_co_block_status(e->file, pos, n, &n2, NULL, NULL);
            if (r2 >= 0 && n2 > 0) {
                n = n2;
                ret |= r2 & BLK_STATUS_ZERO;
            }
        }
        *pnum = n;
        *map = pos;
        *file = e->file;
        return ret;
    }
    co_mutex_lock(&s->lock);
    ret = vmdk_lookup(e, rel, n, &host, pnum);
    /* compressed grains come one per lookup: report the whole run, so
     * callers (convert) see large extents as for other formats; up to
     * the end of this grain table, which keeps the tables the reads
     * need in the cache (walking far ahead would evict them) */
    uint64_t cover = e->grain_sectors * BLK_SECTOR_SIZE * e->gt_entries;
    n = MIN(n, cover - rel % cover);
    while (ret == VMDK_GRAIN_DATA && e->compressed && *pnum < n) {
        uint64_t more, h2;
        int r2 = vmdk_lookup(e, rel + *pnum, n - *pnum, &h2, &more);
        if (r2 != VMDK_GRAIN_DATA) {
            break;
        }
        *pnum += more;
    }
    co_mutex_unlock(&s->lock);
    switch (ret) {
    case VMDK_GRAIN_UNALLOC:
        return 0;
    case VMDK_GRAIN_ZERO:
        return BLK_STATUS_ZERO;
    case VMDK_GRAIN_DATA:
        *file = e->file;
        if (e->compressed) {
            return BLK_STATUS_DATA | BLK_STATUS_COMPRESSED;
        }
        *map = host;
        return BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID;
    default:
        return ret < 0 ? ret : -EIO;
    }
}

static bool same_kind(const struct vmdk_extent *a, const struct vmdk_extent *b)
{
    bool fa = a->kind == VMDK_EXT_FLAT, fb = b->kind == VMDK_EXT_FLAT;
    return fa == fb && a->compressed == b->compressed &&
           (fa || a->grain_sectors == b->grain_sectors);
}

/* cluster-size (when the extents agree) and the extents for `info`. */
static int vmdk_get_info(struct blk_node *bs, struct blk_info *info)
{
    struct vmdk_state *s = bs->opaque;
    struct json *data = json_new_object(), *list = json_new_array();
    bool uniform = true;

    for (int i = 1; i < s->nb_extents; i++) {
        uniform = uniform && same_kind(&s->extents[0], &s->extents[i]);
    }
    if (uniform && s->extents[0].kind != VMDK_EXT_FLAT) {
        info->cluster_size = (uint32_t)(s->extents[0].grain_sectors *
                                        BLK_SECTOR_SIZE);
    }
    /* keys in QAPI order (ImageInfoSpecificVmdk, VmdkExtentInfo) */
    json_set_str(data, "create-type", s->create_type);
    json_set_int(data, "cid", s->cid);
    json_set_int(data, "parent-cid", s->parent_cid);
    for (int i = 0; i < s->nb_extents; i++) {
        struct vmdk_extent *e = &s->extents[i];
        struct json *x = json_new_object();
        json_set_str(x, "filename", e->file->filename);
        json_set_str(x, "format", e->type ? e->type : "");
        json_set_int(x, "virtual-size", (int64_t)(e->end - e->start));
        if (e->kind != VMDK_EXT_FLAT) {
            json_set_int(x, "cluster-size",
                         (int64_t)(e->grain_sectors * BLK_SECTOR_SIZE));
        }
        if (e->compressed) {
            json_set_bool(x, "compressed", true);
        }
        json_append(list, x);
    }
    json_set(data, "extents", list);
    info->format_specific = json_new_object();
    json_set_str(info->format_specific, "type", "vmdk");
    json_set(info->format_specific, "data", data);
    return 0;
}

static int64_t vmdk_allocated_size(struct blk_node *bs)
{
    struct vmdk_state *s = bs->opaque;
    int64_t sum = blk_allocated_size(bs->file);

    for (int i = 0; i < s->nb_extents && sum >= 0; i++) {
        if (s->extents[i].owned) {
            int64_t r = blk_allocated_size(s->extents[i].file);
            sum = r < 0 ? r : sum + r;
        }
    }
    return sum;
}

static bool vmdk_has_zero_init(struct blk_node *bs)
{
    struct vmdk_state *s = bs->opaque;

    for (int i = 0; i < s->nb_extents; i++) {
        if (s->extents[i].kind == VMDK_EXT_FLAT &&
            !blk_has_zero_init(s->extents[i].file)) {
            return false;
        }
    }
    return true;
}

/* As QEMU's check: every allocated grain must lie inside its file. */
static int coroutine_fn vmdk_co_check(struct blk_node *bs,
                                      struct blk_check_result *res,
                                      unsigned fix)
{
    struct vmdk_state *s = bs->opaque;
    int ret = 0;

    if (fix) {
        return -ENOTSUP;
    }
    co_mutex_lock(&s->lock);
    for (int i = 0; i < s->nb_extents && ret >= 0; i++) {
        struct vmdk_extent *e = &s->extents[i];
        uint64_t off = 0, n, host;
        if (e->kind == VMDK_EXT_FLAT) {
            continue;
        }
        while (off < e->end - e->start) {
            ret = vmdk_lookup(e, off, e->end - e->start - off, &host, &n);
            if (ret < 0) {
                res->corruptions++;
                ret = 0;
                n = e->grain_sectors * BLK_SECTOR_SIZE -
                    off % (e->grain_sectors * BLK_SECTOR_SIZE);
            } else if (ret == VMDK_GRAIN_DATA && host >= e->file->size) {
                res->corruptions++;
            }
            off += n;
        }
    }
    co_mutex_unlock(&s->lock);
    return ret;
}

const struct blk_driver blk_drv_vmdk = {
    .name = "vmdk",
    .kind = BLK_KIND_FORMAT,
    .state_size = sizeof(struct vmdk_state),
    .probe = vmdk_probe,
    .open = vmdk_open,
    .close = vmdk_close,
    .create = vmdk_create,
    .create_opts = vmdk_create_opts,
    .preadv = vmdk_co_preadv,
    .pwritev = vmdk_co_pwritev,
    .pwrite_zeroes = vmdk_co_pwrite_zeroes,
    .flush = vmdk_co_flush,
    .block_status = vmdk_co_block_status,
    .allocated_size = vmdk_allocated_size,
    .has_zero_init = vmdk_has_zero_init,
    .get_info = vmdk_get_info,
    .check = vmdk_co_check,
    .pwritev_compressed = vmdk_co_pwritev_compressed,
    .supported_zero_flags = BLK_REQ_MAY_UNMAP,
};
