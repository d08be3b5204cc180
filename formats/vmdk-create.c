/* Creating vmdk images with qemu-img's options and layout: the same
 * header, grain directories, extent names (name-flat.vmdk, name-s001.vmdk,
 * name-f001.vmdk) and descriptor text, so files are byte-identical to
 * `qemu-img create -f vmdk` apart from the random CID. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "drivers.h"
#include "util.h"
#include "vmdk.h"

#define SPLIT_SIZE 0x80000000ull /* twoGbMaxExtent*: 2 GiB per extent */

const struct blk_opt_desc vmdk_create_opts[] = {
    {"size", OPT_SIZE, "Virtual disk size", NULL},
    {"adapter_type", OPT_STRING, "Virtual adapter type, can be one of ide "
     "(default), lsilogic, buslogic or legacyESX", NULL},
    {"backing_file", OPT_STRING, "File name of a base image", NULL},
    {"backing_fmt", OPT_STRING, "Must be 'vmdk' if present", NULL},
    {"compat6", OPT_BOOL, "VMDK version 6 image", "off"},
    {"hwversion", OPT_STRING, "VMDK hardware version", "undefined"},
    {"toolsversion", OPT_STRING, "VMware guest tools version", NULL},
    {"subformat", OPT_STRING, "VMDK flat extent format, can be one of "
     "{monolithicSparse (default) | monolithicFlat | twoGbMaxExtentSparse | "
     "twoGbMaxExtentFlat | streamOptimized} ", NULL},
    {"zeroed_grain", OPT_BOOL, "Enable efficient zero writes using the "
     "zeroed-grain GTE feature", NULL},
    {NULL, 0, NULL, NULL},
};

static const char *const subformats[] = {
    "monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat", "streamOptimized", NULL,
};
static const char *const adapters[] = {
    "ide", "buslogic", "lsilogic", "legacyESX", NULL,
};

static int lookup(const char *const *list, const char *v)
{
    for (int i = 0; list[i]; i++) {
        if (strcmp(list[i], v) == 0) {
            return i;
        }
    }
    return -1;
}

struct vmdk_create {
    bool flat, split, compress, zeroed_grain;
};

/* Write the sparse header and both grain directories (as QEMU's
 * vmdk_init_extent: 64 KiB grains, 512-entry tables, all tables
 * preallocated after each directory). */
static int init_sparse(struct blk_node *f, uint64_t size,
                       const struct vmdk_create *c)
{
    uint8_t h[79];
    uint64_t grains = DIV_ROUND_UP(size / 512, 128);
    uint64_t gt_size = DIV_ROUND_UP(512 * 4, 512);
    uint64_t gt_count = DIV_ROUND_UP(grains, 512);
    uint64_t gd_sectors = DIV_ROUND_UP(gt_count * 4, 512);
    uint64_t rgd = 1 + 20, gd = rgd + gd_sectors + gt_size * gt_count;
    uint64_t grain_off = ROUND_UP(gd + gd_sectors + gt_size * gt_count, 128);
    uint32_t flags = VMDK4_FLAG_RGD | VMDK4_FLAG_NL_DETECT;
    int ret;

    if (gt_count > UINT32_MAX / 4 || grain_off > UINT32_MAX) {
        return -EFBIG;
    }
    flags |= c->compress ? VMDK4_FLAG_COMPRESS | VMDK4_FLAG_MARKER : 0;
    flags |= c->zeroed_grain ? VMDK4_FLAG_ZERO_GRAIN : 0;
    memset(h, 0, sizeof(h));
    memcpy(h, "KDMV", 4);
    vmdk_st32(h + 4, c->compress ? 3 : c->zeroed_grain ? 2 : 1);
    vmdk_st32(h + 8, flags);
    vmdk_st64(h + 12, size / 512);
    vmdk_st64(h + 20, 128);
    vmdk_st64(h + 28, 1);
    vmdk_st64(h + 36, 20);
    vmdk_st32(h + 44, 512);
    vmdk_st64(h + 48, rgd);
    vmdk_st64(h + 56, gd);
    vmdk_st64(h + 64, grain_off);
    memcpy(h + 73, "\n \r\n", 4);
    vmdk_st16(h + 77, c->compress ? VMDK4_COMPRESSION_DEFLATE : 0);
    ret = blk_pwrite(f, 0, sizeof(h), h, 0);
    if (ret >= 0) {
        ret = blk_truncate(f, grain_off * 512, false, BLK_PREALLOC_OFF, NULL);
    }
    size_t len = gd_sectors * 512;
    uint8_t *buf = xzalloc(len);
    for (uint64_t i = 0; i < gt_count && ret >= 0; i++) {
        vmdk_st32(buf + 4 * i, (uint32_t)(rgd + gd_sectors + i * gt_size));
    }
    if (ret >= 0 && len) {
        ret = blk_pwrite(f, rgd * 512, len, buf, 0);
    }
    for (uint64_t i = 0; i < gt_count && ret >= 0; i++) {
        vmdk_st32(buf + 4 * i, (uint32_t)(gd + gd_sectors + i * gt_size));
    }
    if (ret >= 0 && len) {
        ret = blk_pwrite(f, gd * 512, len, buf, 0);
    }
    free(buf);
    return ret;
}

/* Create one file: a flat extent of `size` bytes or a sparse extent. */
static int create_extent(const char *name, uint64_t size,
                         const struct vmdk_create *c, struct blk_node **out,
                         struct strata_error **errp)
{
    struct blk_opts *o = opts_new();
    struct blk_node *f;
    int ret;

    ret = blk_create_file(name, o, errp);
    opts_free(o);
    if (ret >= 0) {
        ret = blk_open_created_file(&f, name, 0, errp);
    }
    if (ret < 0) {
        return ret;
    }
    if (c->flat) {
        ret = blk_truncate(f, size, false, BLK_PREALLOC_OFF, errp);
    } else {
        ret = init_sparse(f, size, c);
        if (ret < 0) {
            error_setg_errno(errp, ret, "Could not write '%s'", name);
        }
    }
    if (ret < 0 || !out) {
        blk_close(f);
        return ret;
    }
    *out = f;
    return 0;
}

/* CID of the backing image, which must be a vmdk. */
static int parent_cid(const char *filename, const char *backing,
                      uint32_t *cid, struct strata_error **errp)
{
    char *full = blk_resolve_backing_name(filename, backing);
    struct blk_node *b;
    int ret = blk_open(&b, full, NULL, BLK_O_NO_BACKING, errp);

    free(full);
    if (ret < 0) {
        return ret;
    }
    if (b->drv != &blk_drv_vmdk) {
        ret = error_setg(errp, -EINVAL, "Invalid backing file format: %s. "
                         "Must be vmdk", b->drv->name);
    } else {
        *cid = ((struct vmdk_state *)b->opaque)->cid;
    }
    blk_close(b);
    return ret;
}

static char *basename_of(const char *p)
{
    const char *s = strrchr(p, '/');
    return xstrdup(s ? s + 1 : p);
}

int vmdk_create(const char *filename, struct blk_opts *opts,
                struct strata_error **errp)
{
    const char *bfmt = opts_get(opts, "backing_fmt");
    const char *adapter = opts_get(opts, "adapter_type");
    const char *backing = opts_get(opts, "backing_file");
    const char *hw = opts_get(opts, "hwversion");
    const char *tools = opts_get(opts, "toolsversion");
    const char *fmt = opts_get(opts, "subformat");
    struct vmdk_create c = {0};
    struct blk_node *blk = NULL;
    uint64_t size, created = 0, ext_size;
    uint32_t pcid = 0xffffffff, cid;
    char *lines = xstrdup(""), *parent_line = xstrdup(""), *desc = NULL;
    char *dir, *prefix, *postfix;
    bool compat6;
    int sub, ad, ret;

    if (bfmt && strcmp(bfmt, "vmdk") != 0) {
        ret = error_setg(errp, -EINVAL, "backing_file must be a vmdk image");
        goto out_early;
    }
    if ((ret = opts_get_size(opts, "size", 0, &size, errp)) < 0 ||
        (ret = opts_get_bool(opts, "compat6", false, &compat6, errp)) < 0 ||
        (ret = opts_get_bool(opts, "zeroed_grain", false, &c.zeroed_grain,
                             errp)) < 0) {
        goto out_early;
    }
    size = ROUND_UP(size, 512);
    if (hw && strcmp(hw, "undefined") == 0) {
        hw = NULL;
    }
    ad = adapter ? lookup(adapters, adapter) : 0;
    sub = fmt ? lookup(subformats, fmt) : 0;
    if (ad < 0 || sub < 0) {
        ret = error_setg(errp, -EINVAL, "Parameter '%s' does not accept "
                         "value '%s'", ad < 0 ? "adapter_type" : "subformat",
                         ad < 0 ? adapter : fmt);
        goto out_early;
    }
    if (compat6) {
        if (hw) {
            ret = error_setg(errp, -EINVAL, "compat6 cannot be enabled with "
                             "hwversion set");
            goto out_early;
        }
        hw = "6";
    }
    hw = hw ? hw : "4";
    tools = tools ? tools : "2147483647";
    c.split = sub == 2 || sub == 3;
    c.flat = sub == 1 || sub == 3;
    c.compress = sub == 4;
    if (c.flat && backing) {
        ret = error_setg(errp, -ENOTSUP, "Flat image can't have backing "
                         "file");
        goto out_early;
    }
    if (c.flat && c.zeroed_grain) {
        ret = error_setg(errp, -ENOTSUP, "Flat image can't enable zeroed "
                         "grain");
        goto out_early;
    }
    if (!c.split && !c.flat && size / 512 >= VMDK_MAX_EXTENT_SECTORS) {
        ret = error_setg(errp, -EFBIG, "Image size too large for a single "
                         "sparse extent (at most 2 TiB)");
        goto out_early;
    }

    /* name.ext -> dir/, name, .ext */
    const char *slash = strrchr(filename, '/');
    const char *base = slash ? slash + 1 : filename;
    const char *dot = strrchr(base, '.');
    dir = xasprintf("%.*s", (int)(base - filename), filename);
    prefix = dot ? xasprintf("%.*s", (int)(dot - base), base) : xstrdup(base);
    postfix = xstrdup(dot ? dot : "");

    ext_size = c.split ? SPLIT_SIZE : size;
    if (!c.split && !c.flat) {
        created = size;
    }
    /* the descriptor file (with the sparse extent when monolithic) */
    ret = create_extent(filename, created, &c, &blk, errp);
    if (ret < 0) {
        goto out;
    }
    if (!c.split && !c.flat) {
        char *b = basename_of(filename), *l = lines;
        lines = xasprintf("%sRW %" PRIu64 " SPARSE \"%s\"\n", l,
                          created / 512, b);
        free(l);
        free(b);
    }
    if (backing) {
        ret = parent_cid(filename, backing, &pcid, errp);
        if (ret < 0) {
            if (ret != -EINVAL) {
                error_prepend(errp, "Failed to read parent CID: ");
            }
            goto out;
        }
        free(parent_line);
        parent_line = xasprintf("parentFileNameHint=\"%s\"", backing);
    }
    for (int idx = 1; created < size; idx++) {
        uint64_t cur = MIN(size - created, ext_size);
        char *name, *l = lines;
        if (c.split) {
            name = xasprintf("%s%s-%c%03d%s", dir, prefix, c.flat ? 'f' : 's',
                             idx, postfix);
        } else {
            name = xasprintf("%s%s-flat%s", dir, prefix, postfix);
        }
        ret = create_extent(name, cur, &c, NULL, errp);
        if (ret >= 0) {
            char *b = basename_of(name);
            lines = c.flat ?
                    xasprintf("%sRW %" PRIu64 " FLAT \"%s\" 0\n", l,
                              cur / 512, b) :
                    xasprintf("%sRW %" PRIu64 " SPARSE \"%s\"\n", l,
                              cur / 512, b);
            free(l);
            free(b);
        }
        free(name);
        if (ret < 0) {
            goto out;
        }
        created += cur;
    }

    if (getrandom(&cid, sizeof(cid), 0) != sizeof(cid)) {
        cid = (uint32_t)random();
    }
    desc = xasprintf("# Disk DescriptorFile\n"
                     "version=1\n"
                     "CID=%" PRIx32 "\n"
                     "parentCID=%" PRIx32 "\n"
                     "createType=\"%s\"\n"
                     "%s"
                     "\n"
                     "# Extent description\n"
                     "%s"
                     "\n"
                     "# The Disk Data Base\n"
                     "#DDB\n"
                     "\n"
                     "ddb.virtualHWVersion = \"%s\"\n"
                     "ddb.geometry.cylinders = \"%" PRIu64 "\"\n"
                     "ddb.geometry.heads = \"%d\"\n"
                     "ddb.geometry.sectors = \"63\"\n"
                     "ddb.adapterType = \"%s\"\n"
                     "ddb.toolsVersion = \"%s\"\n",
                     cid, pcid, subformats[sub], parent_line, lines, hw,
                     size / (63 * (ad == 0 ? 16 : 255) * 512),
                     ad == 0 ? 16 : 255, adapters[ad], tools);
    size_t dlen = strlen(desc);
    if (!c.split && !c.flat) {
        if (dlen > VMDK_DESC_SIZE) {
            ret = error_setg(errp, -EINVAL, "The descriptor does not fit in "
                             "the %d bytes reserved for it",
                             VMDK_DESC_SIZE);
            goto out;
        }
        ret = blk_pwrite(blk, 0x200, dlen, desc, 0);
    } else {
        ret = blk_pwrite(blk, 0, dlen, desc, 0);
        if (ret >= 0) {
            ret = blk_truncate(blk, dlen, false, BLK_PREALLOC_OFF, errp);
        }
    }
    if (ret < 0) {
        error_setg_errno(errp, ret, "Could not write description");
    }
out:
    blk_close(blk);
    free(dir);
    free(prefix);
    free(postfix);
out_early:
    free(desc);
    free(lines);
    free(parent_line);
    return ret < 0 ? ret : 0;
}
