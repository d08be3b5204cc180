/* Creating vdi images as qemu-img does (the same bytes but for the random
 * UUIDs): header, block map, and for static images the file grown to hold
 * every block.  With a backing file, a differencing image linked to its
 * vdi parent by UUID, as VirtualBox makes for a snapshot. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "drivers.h"
#include "util.h"
#include "vdi.h"

#define VDI_TEXT "<<< QEMU VM Virtual Disk Image >>>\n"

const struct blk_opt_desc vdi_create_opts[] = {
    {"size", OPT_SIZE, "Virtual disk size", NULL},
    {"static", OPT_BOOL, "VDI static (pre-allocated) image", "off"},
    {"backing_file", OPT_STRING, "File name of the parent image (makes a "
     "differencing image)", NULL},
    {"backing_fmt", OPT_STRING, "Image format of the parent (vdi)", NULL},
    {NULL, 0, NULL, NULL},
};

/* A version-4 UUID, stored as VirtualBox stores UUIDs. */
void vdi_uuid_generate(uint8_t out[16])
{
    uint8_t u[16];
    size_t got = 0;

    while (got < sizeof(u)) {
        ssize_t n = getrandom(u + got, sizeof(u) - got, 0);
        if (n <= 0) {
            abort(); /* no randomness at all: nothing sensible to do */
        }
        got += (size_t)n;
    }
    u[6] = (u[6] & 0x0f) | 0x40; /* version 4, RFC 4122 variant */
    u[8] = (u[8] & 0x3f) | 0x80;
    /* VirtualBox stores the first three fields little endian */
    out[0] = u[3], out[1] = u[2], out[2] = u[1], out[3] = u[0];
    out[4] = u[5], out[5] = u[4], out[6] = u[7], out[7] = u[6];
    memcpy(out + 8, u + 8, 8);
}

/* The parent's UUIDs (image and last modification) and size. */
static int read_parent(const char *filename, const char *backing,
                       const char *backing_fmt, uint8_t link[16],
                       uint8_t parent_mod[16], struct strata_error **errp)
{
    char *name = blk_resolve_backing_name(filename, backing);
    struct blk_opts *o = opts_new();
    struct blk_node *bs;
    int ret;

    if (backing_fmt && strcmp(backing_fmt, "vdi") != 0) {
        free(name);
        opts_free(o);
        return error_setg(errp, -ENOTSUP, "The parent of a differencing vdi "
                          "image must be a vdi image, not %s", backing_fmt);
    }
    opts_set(o, "driver", "vdi");
    ret = blk_open(&bs, name, o, BLK_O_FORCE_SHARE | BLK_O_NO_BACKING, errp);
    opts_free(o);
    if (ret < 0) {
        error_prepend(errp, "Could not open the parent '%s': ", name);
        free(name);
        return ret;
    }
    struct vdi_state *ps = bs->opaque;
    memcpy(link, ps->header + VDI_OFF_UUID_IMAGE, 16);
    memcpy(parent_mod, ps->header + VDI_OFF_UUID_LAST_SNAP, 16);
    blk_close(bs);
    free(name);
    return 0;
}

/* The header and map; then a static image's file grown (sparse) to hold
 * every block, as qemu-img's blk_truncate. */
static int write_image(const char *filename, uint64_t bytes, bool is_static,
                       const uint8_t *link, const uint8_t *parent_mod,
                       struct strata_error **errp)
{
    uint32_t bsz = VDI_DEFAULT_BLOCK_SIZE;
    uint32_t blocks = (uint32_t)DIV_ROUND_UP(bytes, bsz);
    uint64_t bmap_size = ROUND_UP((uint64_t)blocks * 4, BLK_SECTOR_SIZE);
    uint8_t *buf = xzalloc(VDI_HEADER_SIZE + bmap_size);
    uint8_t *h = buf;
    struct blk_node *file;
    int ret;

    memcpy(h + VDI_OFF_TEXT, VDI_TEXT, strlen(VDI_TEXT));
    vdi_st32(h + VDI_OFF_SIGNATURE, VDI_SIGNATURE);
    vdi_st32(h + VDI_OFF_VERSION, VDI_VERSION_1_1);
    vdi_st32(h + VDI_OFF_HEADER_SIZE, 0x180);
    vdi_st32(h + VDI_OFF_IMAGE_TYPE, link ? VDI_TYPE_DIFF
                                          : is_static ? VDI_TYPE_STATIC
                                                      : VDI_TYPE_DYNAMIC);
    vdi_st32(h + VDI_OFF_BMAP, VDI_HEADER_SIZE);
    vdi_st32(h + VDI_OFF_DATA, (uint32_t)(VDI_HEADER_SIZE + bmap_size));
    vdi_st32(h + VDI_OFF_SECTOR_SIZE, BLK_SECTOR_SIZE);
    vdi_st64(h + VDI_OFF_DISK_SIZE, bytes);
    vdi_st32(h + VDI_OFF_BLOCK_SIZE, bsz);
    vdi_st32(h + VDI_OFF_BLOCKS_IN_IMAGE, blocks);
    vdi_st32(h + VDI_OFF_BLOCKS_ALLOCATED, is_static ? blocks : 0);
    vdi_uuid_generate(h + VDI_OFF_UUID_IMAGE);
    vdi_uuid_generate(h + VDI_OFF_UUID_LAST_SNAP);
    if (link) {
        memcpy(h + VDI_OFF_UUID_LINK, link, 16);
        memcpy(h + VDI_OFF_UUID_PARENT, parent_mod, 16);
    }
    for (uint32_t i = 0; i < blocks; i++) {
        vdi_st32(buf + VDI_HEADER_SIZE + (uint64_t)i * 4,
                 is_static ? i : VDI_UNALLOCATED);
    }

    ret = blk_open_created_file(&file, filename, 0, errp);
    if (ret < 0) {
        free(buf);
        return ret;
    }
    ret = blk_pwrite(file, 0, VDI_HEADER_SIZE + bmap_size, buf, 0);
    if (ret < 0) {
        error_setg_errno(errp, ret, "Error writing header");
    } else if (is_static) {
        ret = blk_truncate(file, VDI_HEADER_SIZE + bmap_size +
                           (uint64_t)blocks * bsz, false, BLK_PREALLOC_OFF,
                           errp);
        if (ret < 0) {
            error_prepend(errp, "Failed to statically allocate file");
        }
    }
    if (ret >= 0) {
        ret = blk_flush(file);
        if (ret < 0) {
            error_setg_errno(errp, ret, "Could not flush '%s'", filename);
        }
    }
    blk_close(file);
    free(buf);
    return ret;
}

/* qemu-img's checks and messages, then the file and the image. */
int vdi_create(const char *filename, struct blk_opts *opts,
               struct strata_error **errp)
{
    uint64_t max = (uint64_t)VDI_BLOCKS_IN_IMAGE_MAX * VDI_DEFAULT_BLOCK_SIZE;
    const char *backing = opts_get(opts, "backing_file");
    const char *backing_fmt = opts_get(opts, "backing_fmt");
    uint8_t link[16] = {0}, parent_mod[16] = {0};
    struct blk_opts *fopts;
    uint64_t size;
    bool is_static;
    int ret;

    if ((ret = opts_get_size(opts, "size", 0, &size, errp)) < 0 ||
        (ret = opts_get_bool(opts, "static", false, &is_static, errp)) < 0) {
        return ret;
    }
    size = ROUND_UP(size, BLK_SECTOR_SIZE);
    if (size > max) {
        return error_setg(errp, -ENOTSUP, "Unsupported VDI image size (size "
                          "is 0x%llx, max supported is 0x%llx)",
                          (unsigned long long)size, (unsigned long long)max);
    }
    if (backing_fmt && !backing) {
        return error_setg(errp, -EINVAL, "Backing format cannot be used "
                          "without backing file");
    }
    if (backing && is_static) {
        return error_setg(errp, -EINVAL, "A differencing vdi image cannot be "
                          "static");
    }
    if (backing) {
        ret = read_parent(filename, backing, backing_fmt, link, parent_mod,
                          errp);
        if (ret < 0) {
            return ret;
        }
    }
    /* as qemu-img: the file gets the options the format does not take
     * (preallocation=metadata is refused there), and starts empty */
    fopts = opts_new();
    opts_set(fopts, "size", "0");
    static const char *const file_keys[] = {"preallocation", "nocow",
                                            "extent_size_hint"};
    for (size_t i = 0; i < ARRAY_SIZE(file_keys); i++) {
        if (opts_has(opts, file_keys[i])) {
            opts_set(fopts, file_keys[i], opts_get(opts, file_keys[i]));
        }
    }
    ret = blk_create_file(filename, fopts, errp);
    opts_free(fopts);
    if (ret < 0) {
        return ret;
    }
    return write_image(filename, size, is_static, backing ? link : NULL,
                       parent_mod, errp);
}
