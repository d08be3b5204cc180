/* Creating vhd images as qemu-img 7.2 does (the same bytes but for the
 * timestamp, the UUID and the checksum that covers them): the size
 * rounded up to a CHS geometry unless force_size=on, a "qemu" (or, with
 * force_size, "qem2") creator, fixed images as the disk plus a footer,
 * dynamic ones as footer, header, BAT and footer.  With a backing file,
 * a differencing image with W2ru/W2ku parent locators. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "drivers.h"
#include "util.h"
#include "vhd.h"

const struct blk_opt_desc vhd_create_opts[] = {
    {"size", OPT_SIZE, "Virtual disk size", NULL},
    {"subformat", OPT_STRING, "Type of virtual hard disk format. Supported "
     "formats are {dynamic (default) | fixed} ", NULL},
    {"force_size", OPT_BOOL, "Force disk size calculation to use the actual "
     "size specified, rather than using the nearest CHS-based calculation",
     NULL},
    {"backing_file", OPT_STRING, "File name of the parent image (makes a "
     "differencing image)", NULL},
    {"backing_fmt", OPT_STRING, "Image format of the parent (vpc)", NULL},
    {NULL, 0, NULL, NULL},
};

/* The geometry algorithm of the VHD specification (appendix), as QEMU
 * has it: it may round the size down. */
static void calculate_geometry(uint64_t total, uint16_t *cyls, uint8_t *heads,
                               uint8_t *secs)
{
    uint32_t cth;

    total = MIN(total, VHD_MAX_GEOMETRY);
    if (total >= 65535ull * 16 * 63) {
        *secs = 255;
        *heads = 16;
        cth = (uint32_t)(total / *secs);
    } else {
        *secs = 17;
        cth = (uint32_t)(total / *secs);
        *heads = (uint8_t)MAX(DIV_ROUND_UP(cth, 1024u), 4u);
        if (cth >= *heads * 1024u || *heads > 16) {
            *secs = 31;
            *heads = 16;
            cth = (uint32_t)(total / *secs);
        }
        if (cth >= *heads * 1024u) {
            *secs = 63;
            *heads = 16;
            cth = (uint32_t)(total / *secs);
        }
    }
    *cyls = (uint16_t)(cth / *heads);
}

/* Grow the sector count until a geometry covers it (so convert never
 * truncates); the maximum geometry means "use the size as given". */
static int rounded_size(uint64_t size, bool force, uint16_t *c, uint8_t *h,
                        uint8_t *sp, uint64_t *sectors,
                        struct strata_error **errp)
{
    uint64_t total;

    *c = 0, *h = 0, *sp = 0;
    if (force) {
        *c = VHD_CHS_MAX_C, *h = VHD_CHS_MAX_H, *sp = VHD_CHS_MAX_S;
    } else {
        total = MIN(VHD_MAX_GEOMETRY, size / BLK_SECTOR_SIZE);
        for (uint64_t i = 0; total > (uint64_t)*c * *h * *sp; i++) {
            calculate_geometry(total + i, c, h, sp);
        }
    }
    if ((uint64_t)*c * *h * *sp == VHD_MAX_GEOMETRY) {
        total = size / BLK_SECTOR_SIZE;
        if (total > VHD_MAX_SECTORS) {
            return error_setg(errp, -EFBIG, "Disk size is too large, max "
                              "size is 2040 GiB");
        }
    } else {
        total = (uint64_t)*c * *h * *sp;
    }
    *sectors = total;
    return 0;
}

/* The parent's footer, for a differencing image. */
static int read_parent(const char *filename, const char *backing,
                       const char *fmt, uint8_t *footer,
                       struct strata_error **errp)
{
    char *name = blk_resolve_backing_name(filename, backing);
    struct blk_opts *o = opts_new();
    struct blk_node *bs;
    int ret;

    if (fmt && strcmp(fmt, "vpc") != 0 && strcmp(fmt, "vhd") != 0) {
        free(name);
        opts_free(o);
        return error_setg(errp, -ENOTSUP, "The parent of a differencing vhd "
                          "image must be a vpc (vhd) image, not %s", fmt);
    }
    opts_set(o, "driver", "vpc");
    ret = blk_open(&bs, name, o, BLK_O_FORCE_SHARE | BLK_O_NO_BACKING, errp);
    opts_free(o);
    if (ret < 0) {
        error_prepend(errp, "Could not open the parent '%s': ", name);
    } else {
        memcpy(footer, ((struct vhd_state *)bs->opaque)->footer,
               VHD_FOOTER_SIZE);
        blk_close(bs);
    }
    free(name);
    return ret;
}

/* Footer copy, dynamic header (and locators), BAT, footer. */
static int write_dynamic(struct blk_node *file, const char *filename,
                         uint8_t *footer, uint64_t sectors,
                         const char *parent, const uint8_t *pfooter)
{
    uint8_t dyn[VHD_DYN_HEADER_SIZE] = {0};
    uint64_t entries = DIV_ROUND_UP(sectors, VHD_DEFAULT_BLOCK_SIZE /
                                    BLK_SECTOR_SIZE);
    uint64_t bat_bytes = ROUND_UP(entries * 4, BLK_SECTOR_SIZE);
    uint64_t loc_len = 0, bat_at;
    uint8_t *loc = NULL, *buf;
    int ret;

    memcpy(dyn, "cxsparse", 8);
    vhd_st64(dyn + VHD_D_DATA_OFFSET, UINT64_MAX);
    vhd_st32(dyn + VHD_D_VERSION, 0x00010000);
    vhd_st32(dyn + VHD_D_BLOCK_SIZE, VHD_DEFAULT_BLOCK_SIZE);
    vhd_st32(dyn + VHD_D_MAX_ENTRIES, (uint32_t)entries);
    if (parent) {
        /* locators before the BAT, where no block allocation reaches */
        loc = vhd_make_locators(filename, parent, pfooter, dyn, 1536,
                                &loc_len);
    }
    bat_at = 1536 + loc_len;
    vhd_st64(dyn + VHD_D_TABLE_OFFSET, bat_at);
    vhd_st32(dyn + VHD_D_CHECKSUM,
             vhd_checksum(dyn, sizeof(dyn), VHD_D_CHECKSUM));

    buf = xmalloc(bat_at + bat_bytes + VHD_FOOTER_SIZE);
    memcpy(buf, footer, VHD_FOOTER_SIZE);
    memcpy(buf + VHD_FOOTER_SIZE, dyn, sizeof(dyn));
    if (loc_len) {
        memcpy(buf + 1536, loc, loc_len);
    }
    memset(buf + bat_at, 0xff, bat_bytes);
    memcpy(buf + bat_at + bat_bytes, footer, VHD_FOOTER_SIZE);
    ret = blk_pwrite(file, 0, bat_at + bat_bytes + VHD_FOOTER_SIZE, buf, 0);
    free(buf);
    free(loc);
    return ret;
}

/* qemu-img's size rounding, footer and layout (see the top). */
int vhd_create(const char *filename, struct blk_opts *opts,
               struct strata_error **errp)
{
    const char *sub = opts_get(opts, "subformat");
    const char *backing = opts_get(opts, "backing_file");
    const char *backing_fmt = opts_get(opts, "backing_fmt");
    uint8_t footer[VHD_FOOTER_SIZE] = {0}, pfooter[VHD_FOOTER_SIZE];
    uint64_t size, sectors = 0;
    uint16_t cyls;
    uint8_t heads, secs;
    bool force;
    uint32_t type;
    struct blk_opts *o;
    struct blk_node *file;
    int ret;

    if ((ret = opts_get_size(opts, "size", 0, &size, errp)) < 0 ||
        (ret = opts_get_bool(opts, "force_size", false, &force, errp)) < 0) {
        return ret;
    }
    if (!sub || strcmp(sub, "dynamic") == 0) {
        type = VHD_DYNAMIC;
    } else if (strcmp(sub, "fixed") == 0) {
        type = VHD_FIXED;
    } else {
        return error_setg(errp, -EINVAL, "Parameter 'subformat' does not "
                          "accept value '%s'", sub);
    }
    if (backing_fmt && !backing) {
        return error_setg(errp, -EINVAL, "Backing format cannot be used "
                          "without backing file");
    }
    if (backing && type == VHD_FIXED) {
        return error_setg(errp, -EINVAL, "A differencing vhd image cannot be "
                          "fixed");
    }
    if (backing) {
        ret = read_parent(filename, backing, backing_fmt, pfooter, errp);
        if (ret < 0) {
            return ret;
        }
        type = VHD_DIFFERENCING;
    }
    /* as qemu-img: silently round up to sectors, then to the geometry */
    if (size > INT64_MAX - BLK_SECTOR_SIZE) {
        return error_setg(errp, -EFBIG, "Disk size is too large, max size "
                          "is 2040 GiB");
    }
    size = ROUND_UP(size, BLK_SECTOR_SIZE);
    ret = rounded_size(size, force, &cyls, &heads, &secs, &sectors, errp);
    if (ret < 0) {
        return ret;
    }
    if (!force) {
        size = sectors * BLK_SECTOR_SIZE;
    }

    memcpy(footer + VHD_F_COOKIE, "conectix", 8);
    memcpy(footer + VHD_F_CREATOR_APP, force ? "qem2" : "qemu", 4);
    memcpy(footer + VHD_F_CREATOR_OS, "Wi2k", 4);
    vhd_st32(footer + VHD_F_FEATURES, 2);
    vhd_st32(footer + VHD_F_VERSION, 0x00010000);
    vhd_st64(footer + VHD_F_DATA_OFFSET, type == VHD_FIXED ? UINT64_MAX
                                                           : 512);
    vhd_st32(footer + VHD_F_TIMESTAMP,
             (uint32_t)(time(NULL) - VHD_TIMESTAMP_BASE));
    vhd_st16(footer + VHD_F_CREATOR_VER, 5); /* Virtual PC 2007: 5.3 */
    vhd_st16(footer + VHD_F_CREATOR_VER + 2, 3);
    vhd_st64(footer + VHD_F_ORIG_SIZE, size);
    vhd_st64(footer + VHD_F_CURRENT_SIZE, size);
    vhd_st16(footer + VHD_F_CYLS, cyls);
    footer[VHD_F_HEADS] = heads;
    footer[VHD_F_SECS] = secs;
    vhd_st32(footer + VHD_F_TYPE, type);
    if (getrandom(footer + VHD_F_UUID, 16, 0) != 16) {
        abort(); /* no randomness: nothing sensible to do */
    }
    footer[VHD_F_UUID + 6] = (footer[VHD_F_UUID + 6] & 0x0f) | 0x40;
    footer[VHD_F_UUID + 8] = (footer[VHD_F_UUID + 8] & 0x3f) | 0x80;
    vhd_st32(footer + VHD_F_CHECKSUM,
             vhd_checksum(footer, VHD_FOOTER_SIZE, VHD_F_CHECKSUM));

    /* the file starts empty, with the protocol's own options */
    o = opts_new();
    opts_set(o, "size", "0");
    static const char *const file_keys[] = {"preallocation", "nocow",
                                            "extent_size_hint"};
    for (size_t i = 0; i < ARRAY_SIZE(file_keys); i++) {
        if (opts_has(opts, file_keys[i])) {
            opts_set(o, file_keys[i], opts_get(opts, file_keys[i]));
        }
    }
    ret = blk_create_file(filename, o, errp);
    opts_free(o);
    if (ret < 0) {
        return ret;
    }
    ret = blk_open_created_file(&file, filename, 0, errp);
    if (ret < 0) {
        return ret;
    }
    if (type == VHD_FIXED) {
        ret = blk_truncate(file, size + VHD_FOOTER_SIZE, false,
                           BLK_PREALLOC_OFF, errp);
        if (ret >= 0) {
            ret = blk_pwrite(file, size, VHD_FOOTER_SIZE, footer, 0);
            if (ret < 0) {
                error_setg_errno(errp, ret, "Unable to write VHD header");
            }
        }
    } else {
        ret = write_dynamic(file, filename, footer, sectors,
                            backing, pfooter);
        if (ret < 0) {
            error_setg_errno(errp, ret, "Unable to create or write VHD "
                             "header");
        }
    }
    if (ret >= 0) {
        ret = blk_flush(file);
        if (ret < 0) {
            error_setg_errno(errp, ret, "Could not flush '%s'", filename);
        }
    }
    blk_close(file);
    return ret;
}
