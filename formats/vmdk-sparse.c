/* vmdk sparse extents: opening VMDK4 (hosted sparse, streamOptimized),
 * VMDK3/COWD and seSparse headers, looking grains up through the grain
 * directory and a small grain-table cache, and allocating grains with both
 * grain-table copies (primary and redundant) kept consistent. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmdk.h"
#include "util.h"

#define SE_CONST_MAGIC 0xcafebabeull
#define SE_VOLATILE_MAGIC 0xcafecafeull

struct vmdk_extent *vmdk_add_extent(struct blk_node *bs)
{
    struct vmdk_state *s = bs->opaque;
    struct vmdk_extent *e;

    s->extents = xrealloc(s->extents,
                          sizeof(*s->extents) * (size_t)(s->nb_extents + 1));
    e = &s->extents[s->nb_extents++];
    memset(e, 0, sizeof(*e));
    e->start = s->nb_extents > 1 ? e[-1].end : 0;
    e->entry_size = 4;
    return e;
}

void vmdk_free_extent(struct vmdk_extent *e)
{
    free(e->gd);
    free(e->rgd);
    free(e->gt_cache);
    free(e->type);
    if (e->owned) {
        blk_close(e->file);
    }
}

/* Drop the extent just added (its file stays with the caller). */
static void drop_last(struct blk_node *bs)
{
    struct vmdk_state *s = bs->opaque;
    struct vmdk_extent *e = &s->extents[s->nb_extents - 1];

    e->owned = false;
    vmdk_free_extent(e);
    s->nb_extents--;
}

/* Common checks and table loading once the geometry is known. */
static int init_tables(struct vmdk_extent *e, uint64_t capacity,
                       struct strata_error **errp)
{
    const char *name = e->file->filename;
    size_t len;
    int ret;

    if (e->grain_sectors == 0 || e->gt_entries == 0) {
        return error_setg(errp, -EINVAL, "L1 entry size is invalid");
    }
    if (e->grain_sectors > VMDK_MAX_GRAIN_SECTORS) {
        return error_setg(errp, -EFBIG,
                          "Invalid granularity, image may be corrupt");
    }
    if (capacity > (UINT64_MAX >> 10)) {
        return error_setg(errp, -EFBIG, "Extent '%s' is too large "
                          "(%llu sectors)", name,
                          (unsigned long long)capacity);
    }
    uint64_t per_gt = e->grain_sectors * e->gt_entries;
    uint64_t gd = DIV_ROUND_UP(capacity, per_gt);
    if (gd > VMDK_MAX_GD_ENTRIES) {
        return error_setg(errp, -EFBIG, "L1 size too big");
    }
    e->gd_entries = (uint32_t)gd;
    e->end = e->start + capacity * BLK_SECTOR_SIZE;
    e->next_sector = ROUND_UP(DIV_ROUND_UP(e->file->size, BLK_SECTOR_SIZE),
                              e->grain_sectors);

    len = (size_t)e->gd_entries * e->entry_size;
    if (e->gd_offset + len > ROUND_UP(e->file->size, 512) ||
        (e->rgd_offset && e->rgd_offset + len > ROUND_UP(e->file->size,
                                                          512))) {
        return error_setg(errp, -EINVAL, "The grain directory of '%s' lies "
                          "beyond the end of the file (truncated image?)",
                          name);
    }
    e->gd = xzalloc(len);
    if (len) {
        ret = blk_pread(e->file, e->gd_offset, len, e->gd, 0);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Could not read l1 table "
                                    "from extent '%s'", name);
        }
    }
    for (uint32_t i = 0; i < e->gd_entries; i++) {
        if (e->entry_size == 8) {
            uint64_t *t = e->gd;
            t[i] = vmdk_ld64(&t[i]);
        } else {
            uint32_t *t = e->gd;
            t[i] = vmdk_ld32(&t[i]);
        }
    }
    if (e->entry_size == 4) {
        /* a table beyond the end: the file was cut short */
        uint64_t gt_bytes = (uint64_t)e->gt_entries * 4;
        for (uint32_t i = 0; i < e->gd_entries; i++) {
            uint64_t gt = (uint64_t)((uint32_t *)e->gd)[i] * 512;
            if (gt && gt + gt_bytes > ROUND_UP(e->file->size, 512)) {
                return error_setg(errp, -EINVAL, "Grain table %u of '%s' "
                                  "lies beyond the end of the file "
                                  "(truncated image?)", i, name);
            }
        }
    }
    if (e->rgd_offset) {
        e->rgd = xzalloc(len);
        if (len) {
            ret = blk_pread(e->file, e->rgd_offset, len, e->rgd, 0);
            if (ret < 0) {
                return error_setg_errno(errp, ret, "Could not read l1 backup "
                                        "table from extent '%s'", name);
            }
        }
        for (uint32_t i = 0; i < e->gd_entries; i++) {
            e->rgd[i] = vmdk_ld32(&e->rgd[i]);
        }
    }
    e->gt_cache = xmalloc((size_t)e->gt_entries * e->entry_size *
                          VMDK_L2_CACHE_SIZE);
    return 0;
}

/* The streamOptimized footer: marker, header copy, end-of-stream. */
static int read_footer(struct blk_node *file, uint8_t *hdr,
                       struct strata_error **errp)
{
    uint8_t buf[1536];
    int ret;

    if (file->size < 1536 + 512) {
        return error_setg(errp, -EINVAL, "Invalid footer");
    }
    ret = blk_pread(file, ROUND_DOWN(file->size, 512) - 1536, sizeof(buf),
                    buf, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Failed to read footer");
    }
    if (memcmp(buf + 512, "KDMV", 4) != 0 || vmdk_ld32(buf + 8) != 0 ||
        vmdk_ld32(buf + 12) != VMDK_MARKER_FOOTER ||
        vmdk_ld64(buf + 1024) != 0 || vmdk_ld32(buf + 1032) != 0 ||
        vmdk_ld32(buf + 1036) != VMDK_MARKER_EOS) {
        return error_setg(errp, -EINVAL, "Invalid footer");
    }
    memcpy(hdr, buf + 512, 512);
    return 0;
}

static int open_vmdk4(struct blk_node *bs, struct blk_node *file,
                      uint8_t *hdr, struct vmdk_extent *e,
                      struct strata_error **errp)
{
    uint32_t version, flags, gtes;
    uint64_t capacity, grain_offset;
    int ret;

    if (vmdk_ld64(hdr + 56) == VMDK4_GD_AT_END) {
        ret = read_footer(file, hdr, errp);
        if (ret < 0) {
            return ret;
        }
        if (!bs->read_only) {
            return error_setg(errp, -ENOTSUP, "streamOptimized images with "
                              "a footer can only be opened read-only");
        }
    }
    version = vmdk_ld32(hdr + 4);
    flags = vmdk_ld32(hdr + 8);
    capacity = vmdk_ld64(hdr + 12);
    gtes = vmdk_ld32(hdr + 44);
    grain_offset = vmdk_ld64(hdr + 64);
    e->compressed = vmdk_ld16(hdr + 77) == VMDK4_COMPRESSION_DEFLATE;
    if (version > 3) {
        return error_setg(errp, -ENOTSUP, "Unsupported VMDK version %u",
                          version);
    }
    if (version == 3 && !bs->read_only && !e->compressed) {
        return error_setg(errp, -EINVAL, "VMDK version 3 must be read only");
    }
    if (gtes > 512) {
        return error_setg(errp, -EINVAL, "L2 table size too big");
    }
    if (grain_offset > UINT64_MAX / 512 ||
        DIV_ROUND_UP(file->size, 512) < grain_offset) {
        return error_setg(errp, -EINVAL, "File truncated, expecting at "
                          "least %llu bytes",
                          (unsigned long long)grain_offset * 512);
    }
    e->kind = VMDK_EXT_SPARSE;
    e->version = (int)version;
    e->grain_sectors = vmdk_ld64(hdr + 20);
    e->gt_entries = gtes;
    if (vmdk_ld64(hdr + 56) > UINT64_MAX / 512 ||
        vmdk_ld64(hdr + 48) > UINT64_MAX / 512) {
        return error_setg(errp, -EINVAL, "Invalid grain directory offset");
    }
    e->gd_offset = vmdk_ld64(hdr + 56) * 512;
    if (flags & VMDK4_FLAG_RGD) {
        e->rgd_offset = vmdk_ld64(hdr + 48) * 512;
    }
    e->has_marker = flags & VMDK4_FLAG_MARKER;
    e->has_zero_grain = flags & VMDK4_FLAG_ZERO_GRAIN;
    return init_tables(e, capacity, errp);
}

static int open_cowd(struct blk_node *file, uint8_t *hdr,
                     struct vmdk_extent *e, struct strata_error **errp)
{
    uint32_t sectors = vmdk_ld32(hdr + 12);
    uint32_t gd_size = vmdk_ld32(hdr + 24);

    (void)file;
    e->kind = VMDK_EXT_COWD;
    e->grain_sectors = vmdk_ld32(hdr + 16);
    e->gt_entries = 4096;
    e->gd_offset = (uint64_t)vmdk_ld32(hdr + 20) * 512;
    int ret = init_tables(e, sectors, errp);
    if (ret >= 0 && gd_size < e->gd_entries) {
        ret = error_setg(errp, -EINVAL, "Grain directory of '%s' is too "
                         "small for its capacity", file->filename);
    }
    return ret;
}

static int open_sesparse(struct blk_node *bs, struct blk_node *file,
                         struct vmdk_extent *e, struct strata_error **errp)
{
    uint8_t c[512], v[512];
    int ret;

    if (!bs->read_only) {
        return error_setg(errp, -EPERM, "No write support for seSparse "
                          "images available");
    }
    ret = blk_pread(file, 0, 512, c, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not read const header "
                                "from file '%s'", file->filename);
    }
    if (vmdk_ld64(c) != SE_CONST_MAGIC) {
        return error_setg(errp, -EINVAL, "Bad const header magic: 0x%016llx",
                          (unsigned long long)vmdk_ld64(c));
    }
    if (vmdk_ld64(c + 8) != 0x0000000200000001ull) {
        return error_setg(errp, -ENOTSUP, "Unsupported version: 0x%016llx",
                          (unsigned long long)vmdk_ld64(c + 8));
    }
    if (vmdk_ld64(c + 24) != 8 || vmdk_ld64(c + 32) != 64) {
        return error_setg(errp, -ENOTSUP, "Unsupported grain size or grain "
                          "table size");
    }
    if (vmdk_ld64(c + 40) || vmdk_ld64(c + 48) || vmdk_ld64(c + 56) ||
        vmdk_ld64(c + 64) || vmdk_ld64(c + 72) ||
        !buffer_is_zero(c + 208, 304)) {
        return error_setg(errp, -ENOTSUP, "Unsupported flags, reserved bits "
                          "or padding in the seSparse header");
    }
    uint64_t voff = vmdk_ld64(c + 80);
    if (voff > UINT64_MAX / 512 || voff * 512 + 512 > file->size) {
        return error_setg(errp, -EINVAL, "Bad volatile header offset");
    }
    ret = blk_pread(file, voff * 512, 512, v, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not read volatile header "
                                "from file '%s'", file->filename);
    }
    if (vmdk_ld64(v) != SE_VOLATILE_MAGIC) {
        return error_setg(errp, -EINVAL, "Bad volatile header magic");
    }
    if (vmdk_ld64(v + 24)) {
        return error_setg(errp, -ENOTSUP, "Image is dirty, Replaying "
                          "journal not supported");
    }
    uint64_t gd = vmdk_ld64(c + 128), gdsize = vmdk_ld64(c + 136);
    if (gd > UINT64_MAX / 512 || gdsize > UINT64_MAX / 512) {
        return error_setg(errp, -EINVAL, "Bad grain directory");
    }
    e->kind = VMDK_EXT_SESPARSE;
    e->entry_size = 8;
    e->grain_sectors = 8;
    e->gt_entries = 64 * 512 / 8;
    e->gd_offset = gd * 512;
    e->se_gt_offset = vmdk_ld64(c + 144);
    e->se_grains_offset = vmdk_ld64(c + 192);
    ret = init_tables(e, vmdk_ld64(c + 16), errp);
    if (ret >= 0 && gdsize * 512 / 8 < e->gd_entries) {
        ret = error_setg(errp, -EINVAL, "Grain directory too small");
    }
    return ret;
}

int vmdk_open_sparse(struct blk_node *bs, struct blk_node *file, bool owned,
                     const char *type, uint64_t desc_sectors,
                     struct strata_error **errp)
{
    uint8_t hdr[512];
    struct vmdk_extent *e;
    int ret;

    (void)desc_sectors;
    memset(hdr, 0, sizeof(hdr));
    ret = blk_pread(file, 0, MIN(file->size, sizeof(hdr)), hdr, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Could not read header from file "
                                "'%s'", file->filename);
    }
    e = vmdk_add_extent(bs);
    e->file = file;
    e->owned = owned;
    e->type = type ? xstrdup(type) : NULL;
    if (type && strcmp(type, "SESPARSE") == 0) {
        ret = open_sesparse(bs, file, e, errp);
    } else if (memcmp(hdr, "KDMV", 4) == 0) {
        ret = open_vmdk4(bs, file, hdr, e, errp);
    } else if (memcmp(hdr, "COWD", 4) == 0) {
        ret = open_cowd(file, hdr, e, errp);
    } else {
        ret = error_setg(errp, -EINVAL, "Image not in VMDK format");
    }
    if (ret < 0) {
        drop_last(bs);
    }
    return ret;
}

/* ---- grain lookup ---- */

/* The grain table of GD entry gi (byte offset), 0 when not allocated. */
static int gt_offset(struct vmdk_extent *e, uint32_t gi, uint64_t *out)
{
    if (e->entry_size == 8) {
        uint64_t v = ((uint64_t *)e->gd)[gi];
        if (v == 0) {
            *out = 0;
            return 0;
        }
        if ((v & 0xffffffff00000000ull) != 0x1000000000000000ull) {
            return -EIO;
        }
        *out = (e->se_gt_offset + (v & 0xffffffffu) * (e->gt_entries * 8 /
                                                       512)) * 512;
        return 0;
    }
    *out = (uint64_t)((uint32_t *)e->gd)[gi] * 512;
    return 0;
}

/* Bring a grain table into the cache (least recently used slot). */
static int coroutine_fn load_gt(struct vmdk_extent *e, uint64_t off,
                                uint8_t **table)
{
    size_t len = (size_t)e->gt_entries * e->entry_size;
    int slot = 0;

    for (int i = 0; i < VMDK_L2_CACHE_SIZE; i++) {
        if (e->gt_cache_off[i] == off) {
            e->gt_cache_used[i] = ++e->gt_clock;
            *table = e->gt_cache + i * len;
            return 0;
        }
        if (e->gt_cache_used[i] < e->gt_cache_used[slot]) {
            slot = i;
        }
    }
    e->gt_cache_off[slot] = 0;
    e->gt_cache_used[slot] = 0;
    int ret = blk_co_pread(e->file, off, len, e->gt_cache + slot * len, 0);
    if (ret < 0) {
        return ret;
    }
    e->gt_cache_off[slot] = off;
    e->gt_cache_used[slot] = ++e->gt_clock;
    *table = e->gt_cache + slot * len;
    return 0;
}

/* Decode entry i: kind and host sector (0 when none). */
static int decode(struct vmdk_extent *e, const uint8_t *t, uint32_t i,
                  uint64_t *sector)
{
    if (e->entry_size == 8) {
        uint64_t v = vmdk_ld64(t + 8 * i);
        *sector = 0;
        switch (v >> 60) {
        case 0:
            return v ? -EIO : VMDK_GRAIN_UNALLOC;
        case 1: /* unmapped */
        case 2:
            return VMDK_GRAIN_ZERO;
        case 3:
            v = ((v & 0x0fff000000000000ull) >> 48) |
                ((v & 0x0000ffffffffffffull) << 12);
            *sector = e->se_grains_offset + v * e->grain_sectors;
            return VMDK_GRAIN_DATA;
        default:
            return -EIO;
        }
    }
    *sector = vmdk_ld32(t + 4 * i);
    if (*sector == 0) {
        return VMDK_GRAIN_UNALLOC;
    }
    if (e->has_zero_grain && *sector == VMDK_GTE_ZEROED) {
        *sector = 0;
        return VMDK_GRAIN_ZERO;
    }
    return VMDK_GRAIN_DATA;
}

int coroutine_fn vmdk_lookup(struct vmdk_extent *e, uint64_t off,
                             uint64_t bytes, uint64_t *host, uint64_t *pnum)
{
    uint64_t grain = e->grain_sectors * BLK_SECTOR_SIZE;
    uint64_t cover = grain * e->gt_entries;
    uint64_t gi = off / cover, gto, sector, s2;
    uint32_t idx = (uint32_t)(off % cover / grain);
    uint8_t *t;
    int ret, kind;

    *host = 0;
    if (gi >= e->gd_entries) {
        return -EIO;
    }
    /* at most to the end of this grain table */
    bytes = MIN(bytes, cover - off % cover);
    ret = gt_offset(e, (uint32_t)gi, &gto);
    if (ret < 0) {
        return ret;
    }
    if (gto == 0) {
        *pnum = bytes;
        return VMDK_GRAIN_UNALLOC;
    }
    ret = load_gt(e, gto, &t);
    if (ret < 0) {
        return ret;
    }
    kind = decode(e, t, idx, &sector);
    if (kind < 0) {
        return kind;
    }
    uint64_t done = grain - off % grain;
    *host = sector * BLK_SECTOR_SIZE + off % grain;
    /* compressed grains are one at a time; others merge while contiguous */
    while (done < bytes && !(kind == VMDK_GRAIN_DATA && e->compressed)) {
        idx++;
        int k2 = decode(e, t, idx, &s2);
        if (k2 != kind ||
            (kind == VMDK_GRAIN_DATA &&
             s2 != sector + (uint64_t)(done + off % grain) / 512)) {
            break;
        }
        done += grain;
    }
    if (kind == VMDK_GRAIN_DATA && e->compressed) {
        *host = sector * BLK_SECTOR_SIZE;
    }
    *pnum = MIN(done, bytes);
    return kind;
}

/* ---- allocation ---- */

/* Give GD entry gi a new zeroed grain table (and its redundant copy). */
static int coroutine_fn alloc_gt(struct vmdk_extent *e, uint32_t gi)
{
    uint64_t gt_sectors = DIV_ROUND_UP(e->gt_entries * 4, 512);
    uint64_t need = e->rgd ? 2 * gt_sectors : gt_sectors;
    uint8_t *zero = xzalloc(gt_sectors * 512), le[4];
    uint64_t at = e->next_sector;
    int ret;

    if (at + need >= VMDK_MAX_EXTENT_SECTORS) {
        free(zero);
        return -ENOSPC;
    }
    e->next_sector += ROUND_UP(need, e->grain_sectors);
    ret = blk_co_pwrite(e->file, at * 512, gt_sectors * 512, zero, 0);
    if (ret >= 0 && e->rgd) {
        ret = blk_co_pwrite(e->file, (at + gt_sectors) * 512,
                            gt_sectors * 512, zero, 0);
    }
    free(zero);
    if (ret < 0) {
        return ret;
    }
    if (e->rgd) {
        vmdk_st32(le, (uint32_t)(at + gt_sectors));
        ret = blk_co_pwrite(e->file, e->rgd_offset + 4ull * gi, 4, le, 0);
        if (ret < 0) {
            return ret;
        }
        e->rgd[gi] = (uint32_t)(at + gt_sectors);
    }
    vmdk_st32(le, (uint32_t)at);
    ret = blk_co_pwrite(e->file, e->gd_offset + 4ull * gi, 4, le, 0);
    if (ret < 0) {
        return ret;
    }
    ((uint32_t *)e->gd)[gi] = (uint32_t)at;
    return 0;
}

int coroutine_fn vmdk_set_gte(struct vmdk_extent *e, uint64_t off,
                              uint32_t sector)
{
    uint64_t grain = e->grain_sectors * BLK_SECTOR_SIZE;
    uint64_t cover = grain * e->gt_entries;
    uint32_t gi = (uint32_t)(off / cover);
    uint32_t idx = (uint32_t)(off % cover / grain);
    uint32_t gt = ((uint32_t *)e->gd)[gi];
    uint8_t le[4];
    int ret;

    if (gt == 0) {
        ret = alloc_gt(e, gi);
        if (ret < 0) {
            return ret;
        }
        gt = ((uint32_t *)e->gd)[gi];
    }
    vmdk_st32(le, sector);
    ret = blk_co_pwrite(e->file, (uint64_t)gt * 512 + 4ull * idx, 4, le, 0);
    if (ret < 0) {
        return ret;
    }
    if (e->rgd && e->rgd[gi]) {
        ret = blk_co_pwrite(e->file, (uint64_t)e->rgd[gi] * 512 + 4ull * idx,
                            4, le, 0);
        if (ret < 0) {
            return ret;
        }
    }
    for (int i = 0; i < VMDK_L2_CACHE_SIZE; i++) {
        if (e->gt_cache_off[i] == (uint64_t)gt * 512) {
            size_t len = (size_t)e->gt_entries * 4;
            memcpy(e->gt_cache + i * len + 4 * idx, le, 4);
        }
    }
    /* data before metadata: the grain is on disk before it is linked */
    return blk_co_flush(e->file);
}

int coroutine_fn vmdk_set_gtes(struct vmdk_extent *e, uint64_t off,
                               const uint32_t *sectors, int n)
{
    uint64_t grain = e->grain_sectors * BLK_SECTOR_SIZE;
    uint64_t cover = grain * e->gt_entries;
    int done = 0, ret = 0;

    while (done < n && ret >= 0) {
        uint64_t o = off + (uint64_t)done * grain;
        uint32_t gi = (uint32_t)(o / cover);
        uint32_t idx = (uint32_t)(o % cover / grain);
        uint32_t gt = ((uint32_t *)e->gd)[gi];
        int k = (int)MIN((uint64_t)(n - done), e->gt_entries - idx);
        if (gt == 0) {
            /* no table yet: the single-entry path allocates one */
            ret = vmdk_set_gte(e, o, sectors[done]);
            done++;
            continue;
        }
        uint8_t *le = xmalloc(4 * (size_t)k);
        for (int i = 0; i < k; i++) {
            vmdk_st32(le + 4 * i, sectors[done + i]);
        }
        ret = blk_co_pwrite(e->file, (uint64_t)gt * 512 + 4ull * idx,
                            4 * (uint64_t)k, le, 0);
        if (ret >= 0 && e->rgd && e->rgd[gi]) {
            ret = blk_co_pwrite(e->file, (uint64_t)e->rgd[gi] * 512 +
                                4ull * idx, 4 * (uint64_t)k, le, 0);
        }
        for (int i = 0; ret >= 0 && i < VMDK_L2_CACHE_SIZE; i++) {
            if (e->gt_cache_off[i] == (uint64_t)gt * 512) {
                size_t len = (size_t)e->gt_entries * 4;
                memcpy(e->gt_cache + i * len + 4 * idx, le, 4 * (size_t)k);
            }
        }
        free(le);
        done += k;
    }
    return ret < 0 ? ret : blk_co_flush(e->file);
}

/* Fill buf (one grain at voff) with what it reads as before a write. */
static int coroutine_fn grain_base(struct blk_node *bs, uint64_t voff,
                                   uint64_t len, bool zeroed, uint8_t *buf)
{
    struct vmdk_state *s = bs->opaque;

    if (!bs->backing || zeroed) {
        memset(buf, 0, len);
        return 0;
    }
    if (!s->cid_valid) {
        return -EINVAL;
    }
    struct blk_iov q;
    blk_iov_init_buf(&q, buf, len);
    return blk_co_read_backing(bs, voff, len, &q);
}

int coroutine_fn vmdk_sparse_write(struct blk_node *bs, struct vmdk_extent *e,
                                   uint64_t voff, uint64_t bytes,
                                   struct blk_iov *qiov, size_t qoff)
{
    struct vmdk_state *s = bs->opaque;
    uint64_t grain = e->grain_sectors * BLK_SECTOR_SIZE;
    uint64_t host, n;
    struct blk_iov part;
    int ret = 0;

    blk_iov_init(&part, qiov->niov);
    while (bytes > 0 && ret >= 0) {
        uint64_t off = voff - e->start, in = off % grain;
        co_mutex_lock(&s->lock);
        ret = vmdk_lookup(e, off, MIN(bytes, grain - in), &host, &n);
        if (ret == VMDK_GRAIN_DATA) {
            co_mutex_unlock(&s->lock);
            blk_iov_reset(&part);
            blk_iov_concat(&part, qiov, qoff, n);
            ret = blk_co_pwritev(e->file, host, n, &part, 0);
        } else if (ret >= 0) {
            n = MIN(bytes, grain - in);
            uint64_t sector = e->next_sector;
            uint8_t *buf = blk_alloc_buf(e->file, grain);
            if (sector + e->grain_sectors > VMDK_MAX_EXTENT_SECTORS) {
                ret = -ENOSPC;
            } else {
                ret = grain_base(bs, voff - in, grain,
                                 ret == VMDK_GRAIN_ZERO, buf);
            }
            if (ret >= 0) {
                e->next_sector += e->grain_sectors;
                blk_iov_to_buf(qiov, qoff, buf + in, n);
                ret = blk_co_pwrite(e->file, sector * 512, grain, buf, 0);
            }
            if (ret >= 0) {
                ret = vmdk_set_gte(e, off, (uint32_t)sector);
            }
            free(buf);
            co_mutex_unlock(&s->lock);
        } else {
            co_mutex_unlock(&s->lock);
        }
        voff += n;
        qoff += n;
        bytes -= n;
    }
    blk_iov_destroy(&part);
    return ret < 0 ? ret : 0;
}

int coroutine_fn vmdk_sparse_zero(struct blk_node *bs, struct vmdk_extent *e,
                                  uint64_t voff, uint64_t bytes, bool dry_run)
{
    uint64_t grain = e->grain_sectors * BLK_SECTOR_SIZE;
    uint64_t host, n;
    int ret = 0;

    (void)bs;
    while (bytes > 0) {
        uint64_t off = voff - e->start;
        if (!e->has_zero_grain || off % grain ||
            (bytes < grain && voff + bytes != e->end)) {
            return -ENOTSUP;
        }
        ret = vmdk_lookup(e, off, grain, &host, &n);
        if (ret < 0) {
            return ret;
        }
        if (e->compressed && ret == VMDK_GRAIN_DATA) {
            return -EIO; /* streamOptimized grains are never rewritten */
        }
        if (!dry_run && ret != VMDK_GRAIN_ZERO) {
            ret = vmdk_set_gte(e, off, VMDK_GTE_ZEROED);
            if (ret < 0) {
                return ret;
            }
        }
        n = MIN(grain, bytes);
        voff += n;
        bytes -= n;
    }
    return 0;
}
