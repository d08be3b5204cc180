/* The vhd format (Virtual PC / Hyper-V VHD; QEMU calls it "vpc"): fixed
 * images (the disk followed by a 512-byte footer), dynamic images (a
 * footer copy, a dynamic disk header, a block allocation table and data
 * blocks each led by a sector bitmap) and differencing images (dynamic
 * images over a parent found through the header's parent locators; see
 * vhd-parent.c).
 *
 * The virtual size follows QEMU 7.2: the CHS geometry unless the creator
 * is one that sizes disks by current_size (Hyper-V "win ", disk2vhd
 * "d2v ", QEMU with force_size "qem2", XenServer "tap\0", XenConverter
 * "CTXS") or the geometry is the maximum one; force_size_calc=chs|
 * current_size overrides.  As QEMU, data of dynamic images is read
 * without looking at the sector bitmaps; differencing images honour them
 * (a clear bit reads from the parent). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drivers.h"
#include "fmt-util.h"
#include "util.h"
#include "vhd.h"

/* The footer and header checksum of the VHD specification. */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t cksum_off)
{
    uint32_t sum = 0;

    for (size_t i = 0; i < len; i++) {
        if (i < cksum_off || i >= cksum_off + 4) {
            sum += buf[i];
        }
    }
    return ~sum;
}

/* A footer copy in the first sector (fixed images probe as raw, as in
 * QEMU). */
static int vhd_probe(const uint8_t *buf, size_t len, const char *filename)
{
    return len >= 8 && memcmp(buf, "conectix", 8) == 0 ? 100 : 0;
}

/* The virtual size in sectors, by QEMU's rules (see the top). */
static uint64_t footer_sectors(const uint8_t *f, const char *size_calc)
{
    uint64_t chs = (uint64_t)vhd_ld16(f + VHD_F_CYLS) * f[VHD_F_HEADS] *
                   f[VHD_F_SECS];
    const char *app = (const char *)f + VHD_F_CREATOR_APP;
    bool use_chs = (memcmp(app, "win ", 4) && memcmp(app, "qem2", 4) &&
                    memcmp(app, "d2v ", 4) && memcmp(app, "CTXS", 4) &&
                    memcmp(app, "tap", 4)) ||
                   (size_calc && strcmp(size_calc, "chs") == 0);

    if (!use_chs || chs == VHD_MAX_GEOMETRY ||
        (size_calc && strcmp(size_calc, "current_size") == 0)) {
        return vhd_ld64(f + VHD_F_CURRENT_SIZE) / BLK_SECTOR_SIZE;
    }
    return chs;
}

/* Read the footer: a copy at offset 0 (dynamic images), else the last
 * sector; its checksum must match. */
static int read_footer(struct blk_node *bs, struct strata_error **errp)
{
    struct vhd_state *s = bs->opaque;
    uint64_t fsize = bs->file->size;
    uint32_t want, got;
    int ret;

    ret = blk_pread(bs->file, 0, VHD_FOOTER_SIZE, s->footer, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Unable to read VHD header");
    }
    if (memcmp(s->footer, "conectix", 8) != 0) {
        if (fsize < VHD_FOOTER_SIZE) {
            return error_setg(errp, -EINVAL, "File too small for a VHD "
                              "header");
        }
        ret = blk_pread(bs->file, fsize - VHD_FOOTER_SIZE, VHD_FOOTER_SIZE,
                        s->footer, 0);
        if (ret < 0) {
            return error_setg_errno(errp, ret, "Unable to read VHD footer");
        }
        if (memcmp(s->footer, "conectix", 8) != 0) {
            return error_setg(errp, -EINVAL, "invalid VPC image");
        }
    }
    want = vhd_ld32(s->footer + VHD_F_CHECKSUM);
    got = vhd_checksum(s->footer, VHD_FOOTER_SIZE, VHD_F_CHECKSUM);
    if (want != got) {
        return error_setg(errp, -EINVAL, "Incorrect header checksum (the VHD "
                          "footer records 0x%08x, its bytes sum to 0x%08x)",
                          want, got);
    }
    s->type = vhd_ld32(s->footer + VHD_F_TYPE);
    if (s->type != VHD_FIXED && s->type != VHD_DYNAMIC &&
        s->type != VHD_DIFFERENCING) {
        return error_setg(errp, -ENOTSUP, "Unsupported VHD disk type %u",
                          s->type);
    }
    return 0;
}

/* The dynamic disk header and the BAT, with QEMU's checks and bounds
 * against the file's size. */
static int read_dynamic(struct blk_node *bs, uint64_t sectors,
                        struct strata_error **errp)
{
    struct vhd_state *s = bs->opaque;
    uint64_t fsize = bs->file->size;
    uint64_t off = vhd_ld64(s->footer + VHD_F_DATA_OFFSET), bat_bytes;
    int ret;

    if (off > fsize || fsize - off < VHD_DYN_HEADER_SIZE) {
        return error_setg(errp, -EINVAL, "Error reading dynamic VHD header: "
                          "offset 0x%llx is past the end of the file",
                          (unsigned long long)off);
    }
    ret = blk_pread(bs->file, off, VHD_DYN_HEADER_SIZE, s->dyn, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Error reading dynamic VHD "
                                "header");
    }
    if (memcmp(s->dyn, "cxsparse", 8) != 0) {
        return error_setg(errp, -EINVAL, "Invalid header magic");
    }
    s->block_size = vhd_ld32(s->dyn + VHD_D_BLOCK_SIZE);
    if (s->block_size < BLK_SECTOR_SIZE || s->block_size > (1u << 28) ||
        (s->block_size & (s->block_size - 1))) {
        return error_setg(errp, -EINVAL, "Invalid block size %u",
                          s->block_size);
    }
    s->bitmap_size = ROUND_UP(s->block_size / (8 * BLK_SECTOR_SIZE),
                              BLK_SECTOR_SIZE);
    s->max_table_entries = vhd_ld32(s->dyn + VHD_D_MAX_ENTRIES);
    if (sectors * BLK_SECTOR_SIZE / s->block_size > 0xffffffffu) {
        return error_setg(errp, -EINVAL, "Too many blocks");
    }
    if ((uint64_t)s->max_table_entries * s->block_size <
        sectors * BLK_SECTOR_SIZE) {
        return error_setg(errp, -EINVAL, "Page table too small");
    }
    if (s->max_table_entries > 0x7fffffff / 4) {
        return error_setg(errp, -EINVAL, "Max Table Entries too large (%u)",
                          s->max_table_entries);
    }
    s->bat_offset = vhd_ld64(s->dyn + VHD_D_TABLE_OFFSET);
    bat_bytes = (uint64_t)s->max_table_entries * 4;
    if (s->bat_offset > fsize || fsize - s->bat_offset < bat_bytes) {
        return error_setg(errp, -EINVAL, "Error reading pagetable: the block "
                          "allocation table (%llu bytes at 0x%llx) is cut "
                          "short by the end of the file",
                          (unsigned long long)bat_bytes,
                          (unsigned long long)s->bat_offset);
    }
    s->bat = xmalloc(MAX(bat_bytes, 4));
    ret = blk_pread(bs->file, s->bat_offset, bat_bytes, s->bat, 0);
    if (ret < 0) {
        return error_setg_errno(errp, ret, "Error reading pagetable");
    }
    s->free_data_block_offset = ROUND_UP(s->bat_offset + bat_bytes,
                                         BLK_SECTOR_SIZE);
    s->meta_end = MAX(s->free_data_block_offset, off + VHD_DYN_HEADER_SIZE);
    for (uint32_t i = 0; i < s->max_table_entries; i++) {
        s->bat[i] = vhd_ld32((uint8_t *)&s->bat[i]);
        if (s->bat[i] != VHD_BAT_UNUSED) {
            uint64_t next = (uint64_t)s->bat[i] * BLK_SECTOR_SIZE +
                            s->bitmap_size + s->block_size;
            s->free_data_block_offset = MAX(s->free_data_block_offset, next);
        }
    }
    /* locator data of differencing images must not be overwritten */
    for (int i = 0; i < VHD_NUM_LOCATORS; i++) {
        const uint8_t *l = s->dyn + VHD_D_LOCATORS + i * VHD_LOCATOR_SIZE;
        uint64_t at = vhd_ld64(l + 16), len = vhd_ld32(l + 8);
        if (vhd_ld32(l) && at < fsize && len <= fsize - at) {
            s->free_data_block_offset = MAX(s->free_data_block_offset,
                                            ROUND_UP(at + len,
                                                     BLK_SECTOR_SIZE));
        }
    }
    if (s->free_data_block_offset > fsize) {
        return error_setg(errp, -EINVAL, "block-vpc: free_data_block_offset "
                          "points after the end of file. The image has been "
                          "truncated.");
    }
    s->last_bitmap_offset = UINT64_MAX;
    return 0;
}

/* Free the BAT. */
static void vhd_close(struct blk_node *bs)
{
    struct vhd_state *s = bs->opaque;

    free(s->bat);
    s->bat = NULL;
}

/* Footer, size rules, dynamic header and BAT, and the parent of a
 * differencing image. */
static int vhd_open(struct blk_node *bs, struct blk_opts *opts,
                    struct strata_error **errp)
{
    struct vhd_state *s = bs->opaque;
    const char *size_calc = opts_get(opts, "force_size_calc");
    uint64_t sectors;
    int ret;

    co_mutex_init(&s->lock);
    if (size_calc && strcmp(size_calc, "chs") != 0 &&
        strcmp(size_calc, "current_size") != 0) {
        return error_setg(errp, -EINVAL, "Invalid size calculation mode: "
                          "'%s'", size_calc);
    }
    ret = read_footer(bs, errp);
    if (ret < 0) {
        return ret;
    }
    sectors = footer_sectors(s->footer, size_calc);
    if (sectors > VHD_MAX_SECTORS) {
        return error_setg(errp, -EFBIG, "Unsupported VHD image size (%llu "
                          "sectors; the maximum is 2040 GiB)",
                          (unsigned long long)sectors);
    }
    if (s->type != VHD_FIXED) {
        ret = read_dynamic(bs, sectors, errp);
    } else {
        /* where the footer sits: data must stay before it */
        s->free_data_block_offset = bs->file->size - VHD_FOOTER_SIZE;
    }
    if (ret >= 0 && s->type == VHD_DIFFERENCING) {
        ret = vhd_open_parent(bs, opts, errp);
    } else if (ret >= 0 && opts_has(opts, "backing")) {
        const char *b = opts_get(opts, "backing");
        if (b[0] && strcmp(b, "null") != 0) {
            ret = error_setg(errp, -EINVAL, "Option 'backing' only applies "
                             "to differencing vhd images");
        }
    }
    if (ret < 0) {
        vhd_close(bs);
        return ret;
    }
    bs->size = sectors * BLK_SECTOR_SIZE;
    bs->limits.request_alignment = BLK_SECTOR_SIZE;
    if (s->type != VHD_FIXED) {
        bs->limits.opt_transfer = s->block_size;
    } else {
        bs->limits.max_transfer = bs->file->limits.max_transfer;
        bs->limits.request_alignment = 1;
    }
    return 0;
}

/* ---- the data path ---- */

/* Host offset of the first data byte of the block of bat entry e, or 0
 * when the entry points into the metadata (a corrupt image). */
static uint64_t block_data(struct vhd_state *s, uint32_t e)
{
    uint64_t bitmap = (uint64_t)e * BLK_SECTOR_SIZE;

    return bitmap < s->meta_end ? 0 : bitmap + s->bitmap_size;
}

/* A differencing block's bitmap; bit i (MSB first) = sector i is here. */
static int coroutine_fn read_bitmap(struct blk_node *bs, uint32_t e,
                                    uint8_t *bitmap)
{
    struct vhd_state *s = bs->opaque;

    return blk_co_pread(bs->file, (uint64_t)e * BLK_SECTOR_SIZE,
                        s->bitmap_size, bitmap, 0);
}

/* Is sector i of the block present (bitmap bit set)? */
static bool bit_set(const uint8_t *bm, uint32_t i)
{
    return bm[i / 8] & (0x80 >> (i % 8));
}

/* Length of the run of sectors from `first` (of `count`) whose bits
 * equal the first one's. */
static uint32_t bit_run(const uint8_t *bm, uint32_t first, uint32_t count)
{
    bool v = bit_set(bm, first);
    uint32_t n = 1;

    while (n < count && bit_set(bm, first + n) == v) {
        n++;
    }
    return n;
}

/* Fixed: the file.  Otherwise block by block, and for differencing
 * images run by run of equal bitmap bits. */
static int coroutine_fn vhd_preadv(struct blk_node *bs, uint64_t offset,
                                   uint64_t bytes, struct blk_iov *qiov,
                                   unsigned flags)
{
    struct vhd_state *s = bs->opaque;
    struct blk_iov part;
    uint8_t *bm = NULL;
    uint64_t done = 0;
    int ret = 0;

    if (s->type == VHD_FIXED) {
        return blk_co_preadv(bs->file, offset, bytes, qiov, 0);
    }
    blk_iov_init(&part, qiov->niov);
    while (done < bytes && ret >= 0) {
        uint32_t idx = (uint32_t)(offset / s->block_size);
        uint32_t in_block = (uint32_t)(offset % s->block_size);
        uint64_t n = MIN(bytes - done, (uint64_t)s->block_size - in_block);
        uint32_t e = idx < s->max_table_entries ? s->bat[idx]
                                                : VHD_BAT_UNUSED;
        uint64_t data = e == VHD_BAT_UNUSED ? 0 : block_data(s, e);

        if (e != VHD_BAT_UNUSED && !data) {
            ret = -EIO;
            break;
        }
        if (e != VHD_BAT_UNUSED && s->type == VHD_DIFFERENCING) {
            if (!bm) {
                bm = xmalloc(s->bitmap_size);
            }
            ret = read_bitmap(bs, e, bm);
            if (ret < 0) {
                break;
            }
            uint32_t sec = in_block / BLK_SECTOR_SIZE;
            n = MIN(n, (uint64_t)bit_run(bm, sec, (uint32_t)(n /
                    BLK_SECTOR_SIZE)) * BLK_SECTOR_SIZE);
            if (!bit_set(bm, sec)) {
                data = 0;
            }
        }
        blk_iov_reset(&part);
        blk_iov_concat(&part, qiov, done, n);
        ret = fmt_read_run(bs, data != 0, data + in_block,
                           s->type == VHD_DIFFERENCING, offset, n, &part);
        offset += n;
        done += n;
    }
    blk_iov_destroy(&part);
    free(bm);
    return ret;
}

/* Allocate block idx at the end of the file and write [in_block,
 * in_block+n) of it; the rest is zero, or the parent's data in a
 * differencing image.  Crash order: bitmap, data and the moved footer,
 * a flush, then the BAT entry. */
static int coroutine_fn alloc_block(struct blk_node *bs, uint32_t idx,
                                    uint32_t in_block, uint64_t n,
                                    struct blk_iov *qiov, uint64_t done)
{
    struct vhd_state *s = bs->opaque;
    uint64_t at = s->free_data_block_offset;
    uint64_t len = s->bitmap_size + (uint64_t)s->block_size;
    uint8_t *buf = xzalloc(len + VHD_FOOTER_SIZE);
    uint8_t be[4];
    struct blk_iov b;
    int ret = 0;

    memset(buf, 0xff, s->bitmap_size);
    if (s->type == VHD_DIFFERENCING && n < s->block_size) {
        blk_iov_init_buf(&b, buf + s->bitmap_size, s->block_size);
        ret = blk_co_read_backing(bs, (uint64_t)idx * s->block_size,
                                  s->block_size, &b);
    }
    if (ret >= 0) {
        blk_iov_to_buf(qiov, done, buf + s->bitmap_size + in_block, n);
        memcpy(buf + len, s->footer, VHD_FOOTER_SIZE);
        ret = blk_co_pwrite(bs->file, at, len + VHD_FOOTER_SIZE, buf, 0);
    }
    if (ret >= 0) {
        ret = blk_co_flush(bs->file);
    }
    if (ret >= 0) {
        vhd_st32(be, (uint32_t)(at / BLK_SECTOR_SIZE));
        ret = blk_co_pwrite(bs->file, s->bat_offset + (uint64_t)idx * 4, 4,
                            be, 0);
    }
    if (ret >= 0) {
        s->bat[idx] = (uint32_t)(at / BLK_SECTOR_SIZE);
        s->free_data_block_offset = at + len;
        s->last_bitmap_offset = at;
    }
    free(buf);
    return ret;
}

/* Before writing sectors of an allocated block: make the bitmap say they
 * are here (after the data, for differencing images; all bits at once
 * for dynamic ones, as QEMU). */
static int coroutine_fn mark_present(struct blk_node *bs, uint32_t e,
                                     uint32_t in_block, uint64_t n)
{
    struct vhd_state *s = bs->opaque;
    uint64_t boff = (uint64_t)e * BLK_SECTOR_SIZE;
    uint8_t *bm;
    bool changed = false;
    int ret;

    if (s->last_bitmap_offset == boff) {
        return 0;
    }
    bm = xmalloc(s->bitmap_size);
    if (s->type != VHD_DIFFERENCING) {
        memset(bm, 0xff, s->bitmap_size);
        changed = true;
    } else {
        ret = read_bitmap(bs, e, bm);
        if (ret < 0) {
            free(bm);
            return ret;
        }
        for (uint64_t i = in_block / BLK_SECTOR_SIZE;
             i < (in_block + n) / BLK_SECTOR_SIZE; i++) {
            if (!bit_set(bm, (uint32_t)i)) {
                bm[i / 8] |= 0x80 >> (i % 8);
                changed = true;
            }
        }
    }
    ret = changed ? blk_co_pwrite(bs->file, boff, s->bitmap_size, bm, 0) : 0;
    if (ret >= 0 && s->type != VHD_DIFFERENCING) {
        s->last_bitmap_offset = boff;
    }
    free(bm);
    return ret;
}

/* Fixed: the file.  Otherwise allocate missing blocks, and keep the
 * bitmaps of allocated ones right, under the lock. */
static int coroutine_fn vhd_pwritev(struct blk_node *bs, uint64_t offset,
                                    uint64_t bytes, struct blk_iov *qiov,
                                    unsigned flags)
{
    struct vhd_state *s = bs->opaque;
    struct blk_iov part;
    uint64_t done = 0;
    int ret = 0;

    if (s->type == VHD_FIXED) {
        if (offset + bytes > s->free_data_block_offset) {
            return -EIO; /* a cut file: the write would hit the footer */
        }
        return blk_co_pwritev(bs->file, offset, bytes, qiov, flags);
    }
    blk_iov_init(&part, qiov->niov);
    while (done < bytes && ret >= 0) {
        uint32_t idx = (uint32_t)(offset / s->block_size);
        uint32_t in_block = (uint32_t)(offset % s->block_size);
        uint64_t n = MIN(bytes - done, (uint64_t)s->block_size - in_block);
        uint64_t data;

        co_mutex_lock(&s->lock);
        if (s->bat[idx] == VHD_BAT_UNUSED) {
            ret = alloc_block(bs, idx, in_block, n, qiov, done);
            co_mutex_unlock(&s->lock);
            offset += n;
            done += n;
            continue;
        }
        data = block_data(s, s->bat[idx]);
        if (!data) {
            co_mutex_unlock(&s->lock);
            ret = -EIO;
            break;
        }
        blk_iov_reset(&part);
        blk_iov_concat(&part, qiov, done, n);
        if (s->type == VHD_DIFFERENCING) {
            /* data first: a set bit must never cover stale sectors */
            ret = blk_co_pwritev(bs->file, data + in_block, n, &part, 0);
            if (ret >= 0) {
                ret = mark_present(bs, s->bat[idx], in_block, n);
            }
            co_mutex_unlock(&s->lock);
        } else {
            ret = mark_present(bs, s->bat[idx], in_block, n);
            co_mutex_unlock(&s->lock);
            if (ret >= 0) {
                ret = blk_co_pwritev(bs->file, data + in_block, n, &part, 0);
            }
        }
        offset += n;
        done += n;
    }
    blk_iov_destroy(&part);
    return ret;
}

/* Fixed: the file.  Dynamic: allocated blocks are data, the rest zero
 * (QEMU's answer).  Differencing: by the sector bitmap, unallocated
 * ranges reading from the parent. */
static int coroutine_fn vhd_block_status(struct blk_node *bs, uint64_t offset,
                                         uint64_t bytes, uint64_t *pnum,
                                         uint64_t *map,
                                         struct blk_node **file)
{
    struct vhd_state *s = bs->opaque;
    uint32_t idx, in_block;
    uint64_t n = 0, data;
    int ret;

    if (s->type == VHD_FIXED) {
        /* as QEMU: data, and zero where the file has a hole */
        uint64_t n2;
        ret = blk_co_block_status(bs->file, offset, bytes, &n2, NULL, NULL);
        if (ret < 0) {
            return ret;
        }
        *pnum = n2 ? n2 : bytes;
        *map = offset;
        *file = bs->file;
        return BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID |
               (n2 ? ret & BLK_STATUS_ZERO : BLK_STATUS_ZERO);
    }
    idx = (uint32_t)(offset / s->block_size);
    in_block = (uint32_t)(offset % s->block_size);
    if (s->bat[idx] == VHD_BAT_UNUSED) {
        /* merge the following unallocated blocks */
        do {
            n += MIN(bytes - n, (uint64_t)s->block_size - in_block);
            in_block = 0;
            idx++;
        } while (n < bytes && idx < s->max_table_entries &&
                 s->bat[idx] == VHD_BAT_UNUSED);
        *pnum = n;
        return s->type == VHD_DIFFERENCING ? 0 : BLK_STATUS_ZERO;
    }
    data = block_data(s, s->bat[idx]);
    if (!data) {
        return -EIO;
    }
    n = MIN(bytes, (uint64_t)s->block_size - in_block);
    if (s->type == VHD_DIFFERENCING) {
        uint8_t *bm = xmalloc(s->bitmap_size);
        uint32_t sec = in_block / BLK_SECTOR_SIZE;
        ret = read_bitmap(bs, s->bat[idx], bm);
        if (ret < 0) {
            free(bm);
            return ret;
        }
        n = MIN(n, (uint64_t)bit_run(bm, sec, (uint32_t)DIV_ROUND_UP(n,
                BLK_SECTOR_SIZE)) * BLK_SECTOR_SIZE);
        bool here = bit_set(bm, sec);
        free(bm);
        if (!here) {
            *pnum = n;
            return 0;
        }
    }
    *pnum = n;
    *map = data + in_block;
    *file = bs->file;
    return BLK_STATUS_DATA | BLK_STATUS_OFFSET_VALID;
}

/* cluster_size: the block size of dynamic images, none for fixed. */
static int vhd_get_info(struct blk_node *bs, struct blk_info *info)
{
    struct vhd_state *s = bs->opaque;

    if (s->type != VHD_FIXED) {
        info->cluster_size = s->block_size;
    }
    return 0;
}

/* Dynamic images start as zeroes; fixed ones if their file does. */
static bool vhd_has_zero_init(struct blk_node *bs)
{
    struct vhd_state *s = bs->opaque;

    if (s->type == VHD_DIFFERENCING) {
        return false; /* it starts as its parent's content */
    }
    return s->type == VHD_FIXED ? blk_has_zero_init(bs->file) : true;
}

static const char *const vhd_aliases[] = {"vhd", NULL};

const struct blk_driver blk_drv_vpc = {
    .name = "vpc",
    .aliases = vhd_aliases,
    .kind = BLK_KIND_FORMAT,
    .state_size = sizeof(struct vhd_state),
    .probe = vhd_probe,
    .open = vhd_open,
    .close = vhd_close,
    .create = vhd_create,
    .create_opts = vhd_create_opts,
    .preadv = vhd_preadv,
    .pwritev = vhd_pwritev,
    .block_status = vhd_block_status,
    .has_zero_init = vhd_has_zero_init,
    .get_info = vhd_get_info,
};
